"""The typed decode of hook bodies (``cds_service/hookbody.py``) answers as the careful
parse does, or leaves the body to it.

For every example patient on both hooks, and for the benchmark patient's body changed
at random (odd Observations, other resources in the search, foreign subjects, outcome
entries, unread elements), the invocation's whole outcome from the typed decode equals
its outcome from ``parse_json_object`` of the same bytes. Each body shape the typed
decode does not take (unknown members, paged or refetched prefetch, invalid UTF-8, too
deep) goes to the careful parse, and through the route gets the careful parse's answer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.scenario import SPINE_MRI, draft_order
from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
from cds_service.examples import benchmark_bundle, example_keys, load_example
from cds_service.fhir.bundles import PrefetchedSearch
from cds_service.hookbody import HookBodyDecoder, schema_view
from cds_service.invocation import Outcome, handle_hook
from cds_service.jsonbody import parse_json_object
from cds_service.runtime import Runtime

SELECT = "spine-imaging-followup-select"
SIGN = "spine-imaging-followup-sign"
HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
DEPTH = 64


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    from cds_service.app import create_app
    from tests.conftest import make_settings

    app: Flask = create_app(make_settings(tmp_path_factory.mktemp("hookbody")))
    built: Runtime = app.extensions["spine_cds"]
    yield built
    built.close()


def _request(
    service_id: str,
    runtime: Runtime,
    patient: str,
    order: dict[str, Any],
    held: list[dict[str, Any]],
) -> dict[str, Any]:
    service = runtime.discovery.services[service_id]
    body = build_request(service.hook, HOOK_INSTANCE, patient, order)
    body["prefetch"] = local_prefetch(service.prefetch, body["context"], held)
    return body


def _comparable(outcome: Outcome) -> dict[str, Any]:
    assessment = outcome.assessment.to_dict() if outcome.assessment else None
    if assessment is not None:
        assessment.pop("evaluatedAt")
    return {
        "response": outcome.response,
        "assessment": assessment,
        "orders": outcome.orders_in_question,
        "sources": dict(outcome.data_sources),
        "notes": outcome.data_notes,
    }


def _both_ways(runtime: Runtime, service_id: str, raw: bytes) -> tuple[Any, Any]:
    """(outcome from the typed decode or None when it declines, outcome from the careful parse)."""
    typed = runtime.hook_decoders[service_id].decode(raw, DEPTH)
    careful = _comparable(handle_hook(runtime, service_id, parse_json_object(raw, DEPTH)))
    if typed is None:
        return None, careful
    return _comparable(handle_hook(runtime, service_id, typed)), careful


@pytest.mark.parametrize("service_id", [SELECT, SIGN])
@pytest.mark.parametrize("key", example_keys())
def test_every_example_is_answered_alike_by_the_typed_decode(
    runtime: Runtime, service_id: str, key: str
) -> None:
    example = load_example(key, datetime.now(UTC).date())
    body = _request(
        service_id,
        runtime,
        example.patient_id,
        example.draft_order,
        bundle_resources(example.bundle),
    )
    raw = json.dumps(body).encode()
    typed, careful = _both_ways(runtime, service_id, raw)
    assert typed is not None, "an EHR's usual prefetch takes the typed decode"
    assert typed == careful


def _benchmark_body(runtime: Runtime) -> dict[str, Any]:
    held = bundle_resources(benchmark_bundle("bench-patient"))
    order = draft_order(SPINE_MRI, "bench-order-spine")
    return _request(SELECT, runtime, "bench-patient", order, held)


# Changes to one search entry: (element path inside the entry, new value); None removes.
_ENTRY_CHANGES: list[tuple[tuple[str, ...], Any]] = [
    (("resource", "status"), "cancelled"),
    (("resource", "status"), None),
    (("resource", "status"), 3),
    (("resource", "effectiveDateTime"), "2026-01-05"),
    (("resource", "effectiveDateTime"), None),
    (("resource", "valueQuantity", "value"), "7"),
    (("resource", "valueQuantity", "value"), -1),
    (("resource", "valueQuantity", "comparator"), "<"),
    (("resource", "valueQuantity", "code"), "mg/dL"),
    (("resource", "valueQuantity", "code"), None),
    (("resource", "valueQuantity"), None),
    (("resource", "valueInteger"), 12),
    (("resource", "subject"), {"reference": "Patient/someone-else"}),
    (("resource", "subject"), {"identifier": {"value": "x"}}),
    (("resource", "id"), None),
    (("resource", "resourceType"), "Condition"),
    (("resource", "resourceType"), "OperationOutcome"),
    (("resource", "text"), {"status": "generated", "div": "<div>\u00e9</div>"}),
    (("resource",), None),
    (("resource",), "not a resource"),
    (("search",), {"mode": "outcome"}),
    (("search",), {"mode": "include"}),
    (("search",), "match"),
    (("fullUrl",), "urn:uuid:1"),
]


def _change(entry: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target: Any = entry
    for name in path[:-1]:
        target = target.get(name) if isinstance(target, dict) else None
    if not isinstance(target, dict):
        return
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = copy.deepcopy(value)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["crp", "esr", "pain"]),
            st.integers(0, 65),
            st.sampled_from(_ENTRY_CHANGES),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_changed_benchmark_bodies_are_answered_alike(
    runtime: Runtime, changes: list[tuple[str, int, tuple[tuple[str, ...], Any]]]
) -> None:
    body = _benchmark_body(runtime)
    for key, index, (path, value) in changes:
        entries = body["prefetch"][key]["entry"]
        _change(entries[index % len(entries)], path, value)
    typed, careful = _both_ways(runtime, SELECT, json.dumps(body).encode())
    assert typed is not None
    assert typed == careful


def _declined(runtime: Runtime, body: Any) -> bool:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return runtime.hook_decoders[SELECT].decode(raw, DEPTH) is None


def test_shapes_it_does_not_know_go_to_the_careful_parse(runtime: Runtime) -> None:
    usual = _benchmark_body(runtime)
    assert not _declined(runtime, usual)

    def changed(fn: Any) -> dict[str, Any]:
        body = copy.deepcopy(usual)
        fn(body)
        return body

    declined = {
        "unknown member": changed(lambda b: b.update({"x-extra": 1})),
        "unknown prefetch key": changed(lambda b: b["prefetch"].update({"other": None})),
        "prefetch null": changed(lambda b: b.update({"prefetch": None})),
        "next link": changed(
            lambda b: b["prefetch"]["crp"].update(
                {"link": [{"relation": "next", "url": "https://ehr.example.org/fhir/p2"}]}
            )
        ),
        "batch bundle": changed(lambda b: b["prefetch"]["crp"].update({"type": "batch"})),
        "type null": changed(lambda b: b["prefetch"]["crp"].update({"type": None})),
        "OperationOutcome": changed(
            lambda b: b["prefetch"].update({"crp": {"resourceType": "OperationOutcome"}})
        ),
        "entry null": changed(lambda b: b["prefetch"]["crp"].update({"entry": None})),
        "entry not an object": changed(lambda b: b["prefetch"]["crp"]["entry"].append(3)),
        "not an object": [usual],
    }
    for name, body in declined.items():
        assert _declined(runtime, body), name
    raw = json.dumps(usual).encode()
    invalid_utf8 = raw.replace(b'"final"', b'"fin\xffal"', 1)
    assert _declined(runtime, invalid_utf8)
    too_deep = raw[:-1] + b',"x-deep":' + b"[" * 70 + b"]" * 70 + b"}"
    assert _declined(runtime, too_deep)


def test_a_declined_body_gets_the_answer_the_typed_one_gets(client: Any, runtime: Runtime) -> None:
    body = _benchmark_body(runtime)
    url = f"/cds-services/{SELECT}"
    typed = client.post(url, json=body)
    body["extension"] = {"x-note": "kept"}  # still typed
    body["x-extra"] = "an unknown member"  # declined: read the careful way
    careful = client.post(url, json=body)
    assert typed.status_code == careful.status_code == 200
    assert typed.get_json() == careful.get_json()
    assert typed.get_json()["cards"][0]["summary"].startswith("Routine repeat spine MRI")


@pytest.mark.parametrize(
    ("mangle", "status", "words"),
    [
        (lambda raw: raw.replace(b'"final"', b'"fin\xffal"', 1), 400, "not valid UTF-8 (byte"),
        (lambda raw: raw[:-1] + b',"x":' + b"[" * 70 + b"]" * 70 + b"}", 400, "nested deeper"),
        # past orjson's own limit (1024): the service's limit is still the one named
        (lambda raw: raw[:-1] + b',"x":' + b"[" * 2000 + b"]" * 2000 + b"}", 400, "than 64 levels"),
        (lambda raw: raw[:-1] + b',"x": tru}', 400, "not valid JSON"),
    ],
)
def test_bodies_the_careful_parse_refuses_are_refused(
    client: Any, runtime: Runtime, mangle: Any, status: int, words: str
) -> None:
    raw = mangle(json.dumps(_benchmark_body(runtime)).encode())
    response = client.post(f"/cds-services/{SELECT}", data=raw, content_type="application/json")
    assert response.status_code == status
    assert words in response.get_json()["message"]


def test_the_schema_sees_a_typed_search_as_the_object_it_was(runtime: Runtime) -> None:
    raw = json.dumps(_benchmark_body(runtime)).encode()
    typed = runtime.hook_decoders[SELECT].decode(raw, DEPTH)
    assert typed is not None
    assert type(typed["prefetch"]["crp"]) is PrefetchedSearch
    view = schema_view(typed)
    assert view["prefetch"]["crp"] == {}
    assert view["prefetch"]["conditions"] == typed["prefetch"]["conditions"]
    assert runtime.validators["order-select"].problems(view) == []
    typed["hookInstance"] = "not a uuid"
    problems = runtime.validators["order-select"].problems(schema_view(typed))
    assert [p.path for p in problems] == ["$.hookInstance"]


def test_a_decoder_is_built_for_the_services_own_prefetch_keys(runtime: Runtime) -> None:
    for service_id, service in runtime.discovery.services.items():
        assert isinstance(runtime.hook_decoders[service_id], HookBodyDecoder)
        assert set(service.prefetch) >= {"crp", "esr", "pain", "conditions"}
