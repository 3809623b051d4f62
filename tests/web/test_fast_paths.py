"""Fast paths taken for speed (bench/README.md) give the answers of the plain ones.

- jsonbody.max_depth reads the nesting depth from the raw bytes, which is only right if
  it treats strings, escapes and brackets inside strings exactly as JSON does: checked
  against a walk of the parsed value on generated JSON and on hand-picked traps.
- timeutil reads the usual full dateTime with the C parser: checked against the
  general path on generated date/time strings, valid and invalid.
- the audit serialises a decision's detail first and looks for credentials only when
  the text may hold one: checked to store what the full walk stores.
- a request body that the compiled schema validator (jsonschema-rs) passes is never
  one that jsonschema refuses: checked on requests broken at random, field by field.
- a fetched page of an Observation search is read by the typed path
  (``fhir.bundles.read_search_page``): checked to give what orjson's reading gives, the
  Bundle's shape, links and each entry's resource, on pages changed at random.

(The Observation mapper's typed reader is checked against its careful path in
tests/fhir_mappers/test_observations_usual.py and test_wire.py.)
"""

from __future__ import annotations

import copy
import json
import time
from datetime import date
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service import schemas
from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
from cds_service.errors import ApiError
from cds_service.examples import benchmark_bundle, example_keys, load_example
from cds_service.fhir.bundles import (
    QueryShape,
    _link,
    next_link,
    read_search_page,
    shape_mismatch,
    unwrap_bundle,
)
from cds_service.fhir.client import FhirClient
from cds_service.hook_declarations import HOOKS
from cds_service.jsonbody import max_depth, parse_json_object
from cds_service.settings import load_settings
from cds_service.stores.audit_records import TOKEN_KEYS, detail_json, to_json, without_tokens
from cds_service.validation import validate
from fhir_mappers import timeutil
from fhir_mappers.wire import ObservationBytes
from tests.support.faulty_fhir_server import FaultyFhirServer


def walked_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((walked_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((walked_depth(v) for v in value), default=0)
    return 0


# Strings rich in the characters that could confuse a byte-level reader.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\/:,ab \u00e9\u20ac\n\t\x00'), max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_depth_matches_a_walk_of_the_parsed_value(value: Any) -> None:
    for raw in (
        orjson.dumps(value),
        json.dumps(value).encode(),
        json.dumps(value, indent=1).encode(),
    ):
        depth = walked_depth(orjson.loads(raw))
        assert max_depth(raw) == depth
        for limit in (0, 1, 2, 5):  # exact up to the limit, above it past the limit
            capped = max_depth(raw, limit)
            assert capped == depth if depth <= limit else capped > limit


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "]]]]"}',
        '{"a": "[[[[["}',
        '["\\\\", [[]]]',
        '["\\\\\\"[[", {"k]\\"": [[]]}]',
        '{"k[": "v", "x": [{"y": "}"}]}',
        '"{{{{"',
        "123",
        "[]",
        '["\\u005c", [1]]',
    ],
)
def test_depth_of_traps(text: str) -> None:
    assert max_depth(text.encode()) == walked_depth(json.loads(text))


@pytest.mark.parametrize("size", [100, 5_000, 20_000])  # passes, and the running sum
def test_depth_of_long_bracket_runs(size: int) -> None:
    deep = b"[" * size + b"]" * size
    wide = (b'{"a":' + b"[" * 40 + b'"x"' + b"]" * 40 + b"},") * (size // 80 + 1)
    wide = b"[" + wide[:-1] + b"]"
    assert max_depth(deep) == size
    assert max_depth(deep, 64) > 64
    assert max_depth(wide) == max_depth(wide, 64) == 42


def test_a_body_one_level_too_deep_is_refused_and_one_at_the_limit_is_not() -> None:
    def nested(levels: int) -> bytes:  # the object counts as one level
        return b'{"a": ' + b"[" * (levels - 1) + b'"]["' + b"]" * (levels - 1) + b"}"

    assert parse_json_object(nested(8), 8) == json.loads(nested(8))
    with pytest.raises(ApiError) as refused:
        parse_json_object(nested(9), 8)
    assert refused.value.status == 400


digits = st.integers(0, 99)
fhir_times = st.builds(
    lambda y, mo, d, h, mi, sec, frac, zone: (
        f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}{frac}{zone}"
    ),
    st.integers(1, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,9}", fullmatch=True)),
    st.one_of(
        st.just(""),
        st.just("Z"),
        st.builds(lambda s, h, m: f"{s}{h:02d}:{m:02d}", st.sampled_from("+-"), digits, digits),
    ),
)


@settings(max_examples=1000, deadline=None)
@given(fhir_times)
def test_fast_time_path_agrees_with_the_general_path(text: str) -> None:
    match = timeutil._FHIR_TIME.fullmatch(text)
    assert match is not None
    fast = timeutil.usual_time(text)
    try:
        general = timeutil._general_path(text, match)
    except ValueError:
        assert fast is None  # the fast path never accepts what the general one refuses
        return
    if fast is not None:
        assert fast == general
        assert fast.instant.utcoffset() == general.instant.utcoffset()


@pytest.mark.parametrize(
    "text",
    ["2024-03-01T07:00:00Z", "2024-03-01T23:30:00-05:00", "2024-03-01T07:00:00.123456789+01:00"],
)
def test_usual_date_times_take_the_fast_path(text: str) -> None:
    fast = timeutil.usual_time(text)
    assert fast is not None and fast == timeutil.parse_fhir_time(text)


token_like_keys = st.sampled_from(
    ["access_token", "Authorization", "fhirAuthorization", "JWT", "password", "x", "value"]
)
details = st.recursive(
    st.none() | st.integers(-1000, 1000) | st.text(max_size=8) | token_like_keys,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=6) | token_like_keys, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6) | token_like_keys, details, max_size=4))
def test_audit_detail_json_never_keeps_a_token_key(detail: dict[str, Any]) -> None:
    stored = json.loads(detail_json(detail))
    assert stored == json.loads(to_json(without_tokens(detail)))

    def keys(value: Any) -> set[str]:
        if isinstance(value, dict):
            return {k.lower() for k in value} | set().union(*map(keys, value.values()))
        if isinstance(value, list):
            return set().union(*map(keys, value))
        return set()

    assert not keys(stored) & TOKEN_KEYS


def _valid_request(hook: str) -> dict[str, Any]:
    example = load_example(example_keys()[0], date(2026, 1, 1))
    request = build_request(
        hook,
        "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        example.patient_id,
        example.draft_order,
        fhir_server="https://ehr.example.org/fhir",
    )
    templates = {"conditions": "Condition?patient={{context.patientId}}"}
    request["prefetch"] = local_prefetch(
        templates, request["context"], bundle_resources(example.bundle)
    )
    request["fhirAuthorization"] = {
        "access_token": "t",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    return request


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value`` (keys and list indexes), outside the prefetch resources."""
    found = [prefix]
    if prefix[:1] == ("prefetch",) and len(prefix) > 1:
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


# What a field may be broken into: other JSON values, and strings that test the patterns
# (anchors, line ends, Unicode digits and spaces, near-UUIDs and near-references).
schema_probes = st.one_of(
    json_values,
    st.sampled_from(
        [
            "",
            "\n",
            "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea\n",
            "d1577c69-dfbe-44ad-ba6d-3e05e953b2e",
            "Practitioner/1\n",
            "Practitioner/\u0661",
            "ServiceRequest/a b",
            "https://ehr.example.org/fhir\n",
            "https://ehr.example.org/\u00a0fhir",
            "http:/x",
            "Bearer",
            -1,
            2**40,
            1.5,
        ]
    ),
)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["order-select", "order-sign"]),
    st.data(),
    st.sampled_from(["replace", "delete"]),
)
def test_the_compiled_schema_check_never_passes_what_jsonschema_refuses(
    hook: str, data: st.DataObject, how: str
) -> None:
    request = _valid_request(hook)
    check = schemas.check(HOOKS[hook].schema)
    assert check.fast.is_valid(request) and check.problems(request) == []
    path = data.draw(st.sampled_from(_paths(request)[1:]))
    parent = request
    for part in path[:-1]:
        parent = parent[part]
    if how == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(schema_probes)
    precise = validate(check.precise, request)
    if check.fast.is_valid(request):
        assert precise == [], f"passed by jsonschema-rs, refused by jsonschema: {precise}"
        assert check.problems(request) == []
    elif precise:
        assert check.problems(request) == precise  # jsonschema's words
    else:  # only a pattern's end differs (Python's "$"): refused all the same
        problems = check.problems(request)
        assert problems and all("expected a string matching" in p.message for p in problems)


def test_a_refused_request_gets_jsonschemas_messages() -> None:
    request = _valid_request("order-select")
    request["hookInstance"] = "not-a-uuid"
    del request["context"]["selections"]
    problems = schemas.check("order-select.request.schema.json").problems(request)
    assert [(p.path, p.message) for p in problems] == [
        ("$.context.selections", "required field is missing"),
        ("$.hookInstance", "expected a UUID (8-4-4-4-12 hexadecimal digits)"),
    ]


# --- fetched search pages read by the typed path ------------------------------------------

_OBSERVATIONS = [
    e["resource"]
    for e in benchmark_bundle("bench-patient")["entry"]
    if e["resource"]["resourceType"] == "Observation"
][:12]
_SEARCH = QueryShape("Observation", is_search=True)
# Changes to a page: (where, element, value); None removes. "entry" changes one entry.
_PAGE_CHANGES: list[tuple[str, str, Any]] = [
    ("page", "type", "history"),
    ("page", "type", None),
    ("page", "type", 3),
    ("page", "resourceType", "OperationOutcome"),
    ("page", "entry", {"resource": {}}),
    ("page", "entry", None),
    ("page", "link", [{"relation": "next", "url": "https://ehr.example.org/fhir/p2"}]),
    ("page", "link", [{"relation": "self", "url": "p1"}, "x"]),
    ("page", "total", 12),
    ("entry", "resource", None),
    ("entry", "resource", "Observation/1"),
    ("entry", "resource", {"resourceType": "Condition", "id": "c1"}),
    ("entry", "resource", {"resourceType": "OperationOutcome", "issue": []}),
    ("entry", "resource", {"resourceType": "Observation", "status": None}),
    ("entry", "resource", {"resourceType": "Observation", "id": "x", "status": "preliminary"}),
    ("entry", "search", {"mode": "outcome"}),
    ("entry", "search", {"mode": "include"}),
    ("entry", "search", None),
    ("entry", "fullUrl", "urn:uuid:1"),
    ("entry", "", "not an entry"),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PAGE_CHANGES), st.integers(0, 11)), max_size=4))
def test_a_fetched_page_read_typed_reads_as_orjson_reads_it(
    changes: list[tuple[tuple[str, str, Any], int]],
) -> None:
    page: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": copy.deepcopy(r), "search": {"mode": "match"}} for r in _OBSERVATIONS
        ],
    }
    for (where, name, value), index in changes:
        entries = page.get("entry")
        target: Any = page
        if where == "entry":
            if not isinstance(entries, list) or not entries:
                continue
            if name == "":  # the entry itself
                entries[index % len(entries)] = value
                continue
            target = entries[index % len(entries)]
            if not isinstance(target, dict):
                continue
        if value is None:
            target.pop(name, None)
        else:
            target[name] = copy.deepcopy(value)
    body = json.dumps(page).encode()
    plain = orjson.loads(body)
    typed = read_search_page(body, _SEARCH)
    if typed is None:
        return  # read by orjson, as before
    assert shape_mismatch(typed, _SEARCH, "FHIR server sent") == shape_mismatch(
        plain, _SEARCH, "FHIR server sent"
    )
    assert next_link(typed) == next_link(plain)
    assert _link(typed, "self") == _link(plain, "self")
    found, notes = unwrap_bundle("crp", typed, "Observation")
    assert (found, notes) == unwrap_bundle("crp", plain, "Observation")
    plain_resources = [e.get("resource") for e in plain.get("entry") or []]
    for entry, resource in zip(typed["entry"], plain_resources, strict=True):
        read = entry.get("resource")
        if type(read) is ObservationBytes:
            assert read.as_dict() == resource and read == resource
        else:
            assert read == resource


def test_only_observation_searches_are_read_typed() -> None:
    body = json.dumps(
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": _OBSERVATIONS[0]}]}
    ).encode()
    page = read_search_page(body, _SEARCH)
    assert page is not None and type(page["entry"][0]["resource"]) is ObservationBytes
    assert read_search_page(body, QueryShape("Condition", is_search=True)) is None
    assert read_search_page(body, QueryShape("Observation", is_search=False)) is None
    assert read_search_page(b"[1, 2]", _SEARCH) is None
    assert read_search_page(b'{"resourceType": "Bundle", "entry": [', _SEARCH) is None


def test_the_client_hands_on_fetched_observations_typed() -> None:
    settings = load_settings(environ={}, overrides={"fhir_read_timeout_seconds": 1.0})
    client = FhirClient(settings.fhir)
    try:
        with FaultyFhirServer() as server:
            queries = {
                "crp": "Observation?patient=p1",
                "conditions": "Condition?patient=p1",
                "esr+pain": "Observation?patient=p1&code=a|1,b|2",
            }
            result = client.fetch_all(server.url("ok"), None, queries, time.monotonic() + 2.0)
            paged = client.fetch_all(
                server.url("endless"),
                None,
                {"crp": "Observation?patient=p1"},
                time.monotonic() + 2.0,
            )
    finally:
        client.close()
    assert result.errors == {} and paged.errors == {}
    (observation,) = result.resources["crp"]
    assert type(observation) is ObservationBytes
    assert observation["resourceType"] == "Observation"
    assert [isinstance(r, dict) for r in result.resources["conditions"]] == [True]
    # a combined search (combine.py) is read typed too: split reads the typed codes
    assert [type(r) for r in result.resources["esr+pain"]] == [ObservationBytes]
    assert {type(r) for r in paged.resources["crp"]} == {ObservationBytes}
