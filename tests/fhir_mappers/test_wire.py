"""Observations read by the typed path (``fhir_mappers.wire``) map as the careful path maps them.

The request decoder and the FHIR client hand the mapper ``ObservationBytes`` for
Observations the typed decode accepts, and the mapper reads a dict typed too when it
can. These tests hold the typed path to the careful one: the same Observation, given as
bytes read by ``read_resource``, gives the same measurements and the same skipped-data
issues (with what each holds), with the same subject check, as the dict ``orjson.loads``
makes of the same bytes read by the careful path alone; on usual Observations changed
in up to three places into near misses, odd types and nulls, and with each option.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import Raw

from cds_service.examples import benchmark_bundle
from cds_service.patient_reads import own_resources
from cds_service.valuesets import load_value_sets
from fhir_mappers import observations
from fhir_mappers.model import DataIssue
from fhir_mappers.observations import MappingOptions, map_observations
from fhir_mappers.observations_careful import select_code
from fhir_mappers.wire import ObservationBytes, codings, read_resource

_VALUE_SETS = load_value_sets()
_UNITS = {
    "1988-5": ["mg/L", "mg/dL", "MG/L", "g/L", "mg/L{CRP}", "mg{CRP}/L"],
    "30522-7": ["mg/L", "mg/L{hsCRP}"],
    "76485-2": ["nmol/L", "nmol/L{CRP}"],
    "4537-7": ["mm/h", "mm/hr", "mm/h{Westergren}"],
    "72514-3": ["{score}", "1"],
    "2345-7": ["mg/dL"],  # glucose: not read by the rules
}
# (where, element, new value); None as the value removes the element.
_CHANGES: list[tuple[str, str, Any]] = [
    ("resource", "status", "preliminary"),
    ("resource", "status", "entered-in-error"),
    ("resource", "status", 1),
    ("resource", "status", None),
    ("resource", "resourceType", "Condition"),
    ("resource", "resourceType", None),
    ("resource", "id", ""),
    ("resource", "id", 5),
    ("resource", "id", None),
    ("resource", "effectiveDateTime", "2026-02-10"),
    ("resource", "effectiveDateTime", "2026-02-10T21:09Z"),
    ("resource", "effectiveDateTime", "2026-02-30T21:09:00Z"),
    ("resource", "effectiveDateTime", 7),
    ("resource", "effectiveDateTime", None),
    ("resource", "effectivePeriod", {"start": "2026-02-11T08:00:00Z"}),
    ("resource", "issued", "2026-02-12T08:00:00Z"),
    ("resource", "valueInteger", 4),
    ("resource", "valueInteger", 11),
    ("resource", "valueInteger", True),
    ("resource", "valueInteger", 2**70),
    ("resource", "valueString", "high"),
    ("resource", "dataAbsentReason", {"text": "not done"}),
    ("resource", "valueQuantity", "12"),
    ("resource", "valueQuantity", None),
    ("resource", "subject", {"reference": "Patient/p2"}),
    ("resource", "subject", {"reference": "https://ehr.example.org/fhir/Patient/p1"}),
    ("resource", "subject", {"display": "someone"}),
    ("resource", "subject", {"reference": 3}),
    ("resource", "subject", "Patient/p1"),
    ("resource", "patient", {"reference": "Patient/p1"}),
    ("resource", "note", [{"text": "haemolysed"}]),
    ("resource", "extension", [[[[{"deep": [1, 2, {"a": None}]}]]]]),
    ("quantity", "value", -0.5),
    ("quantity", "value", 0),
    ("quantity", "value", 10.5),
    ("quantity", "value", 1e300),
    ("quantity", "value", 2**70),
    ("quantity", "value", 10**400),  # beyond a float: orjson refuses it, JSON allows it
    ("quantity", "value", True),
    ("quantity", "value", "12"),
    ("quantity", "value", None),
    ("quantity", "code", " mg/L"),
    ("quantity", "code", ""),
    ("quantity", "code", "mm/h"),
    ("quantity", "code", "mg/L{CRP}"),
    ("quantity", "code", "mg/L{CRP"),
    ("quantity", "code", "{CRP}"),
    ("quantity", "code", 3),
    ("quantity", "code", None),
    ("quantity", "unit", "mg/L"),
    ("quantity", "unit", "mg/dL"),
    ("quantity", "unit", "mg/dL{CRP}"),
    ("quantity", "unit", "nmol/L"),
    ("quantity", "unit", 3),
    ("quantity", "unit", None),
    ("quantity", "comparator", "<"),
    ("quantity", "comparator", "~"),
    ("coding", "display", "C reactive protein"),
    ("coding", "display", 4),
    ("coding", "system", None),
    ("coding", "code", 1988),
    ("code", "text", "CRP"),
    ("code", "coding", "1988-5"),
]


@st.composite
def _observations(draw: st.DrawFn) -> dict[str, Any]:
    code = draw(st.sampled_from(sorted(_UNITS)))
    unit = draw(st.sampled_from(_UNITS[code]))
    value = draw(st.one_of(st.integers(0, 10), st.floats(0, 300, allow_nan=False)))
    coding: dict[str, Any] = {"system": "http://loinc.org", "code": code}
    codings: list[Any] = [coding]
    if draw(st.booleans()):
        codings.insert(0, {"system": "http://loinc.org", "code": "11039-8"})  # qualitative
    if draw(st.booleans()):
        codings.append("not an object")
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": draw(st.sampled_from(["o1", "o2"])),
        "status": draw(st.sampled_from(["final", "amended", "corrected"])),
        "code": {"coding": codings},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": draw(
            st.sampled_from(["2026-02-10T21:09:00Z", "2026-02-10T21:09:00.5+05:30"])
        ),
        "valueQuantity": {"value": value, "unit": unit, "code": unit},
    }
    for where, key, changed in draw(st.lists(st.sampled_from(_CHANGES), max_size=3)):
        target = {
            "resource": resource,
            "quantity": resource.get("valueQuantity"),
            "coding": coding,
            "code": resource.get("code"),
        }[where]
        if not isinstance(target, dict):
            continue
        if changed is None:
            target.pop(key, None)
        else:
            target[key] = changed
    return resource


@contextmanager
def _careful_only() -> Iterator[None]:
    """The mapper with its typed reading of dicts turned off: every dict is read by the
    careful path alone."""
    with mock.patch.object(observations, "typed_observation", lambda resource: None):
        yield


def _mapped(items: list[Any], options: MappingOptions) -> tuple[Any, ...]:
    foreign: list[DataIssue] = []
    kept = own_resources(items, "p1", foreign)
    measurements, issues = map_observations(kept, _VALUE_SETS, options)
    return measurements, tuple(foreign) + issues


def _both_ways(
    resources: list[dict[str, Any]], options: MappingOptions
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(measurements, issues) from the typed reads of the bytes, and from the dicts of
    the same bytes read by the careful path alone."""
    texts = [json.dumps(r).encode() for r in resources]  # orjson refuses ints over 64 bits
    typed = _mapped([read_resource(Raw(t)) for t in texts], options)
    with _careful_only():
        careful = _mapped([_loads(t) for t in texts], options)
    return typed, careful


def _loads(text: bytes) -> Any:
    """orjson, or the standard library for numbers orjson refuses (as the wire reads them)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


_OPTIONS = st.sampled_from(
    [
        MappingOptions(),
        MappingOptions(crp_molar_factor_nmol_per_mg=9.524),
        MappingOptions(accept_preliminary=True),
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_observations(), min_size=1, max_size=4), _OPTIONS)
def test_typed_observations_map_as_their_dicts_do(
    resources: list[dict[str, Any]], options: MappingOptions
) -> None:
    typed, careful = _both_ways(resources, options)
    assert typed == careful
    # and dicts read typed where they can, as the careful parse's dicts are
    dicts = _mapped([_loads(json.dumps(r).encode()) for r in resources], options)
    assert dicts == careful


def test_a_changed_observation_is_read_the_careful_way_with_the_same_reason() -> None:
    usual = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-02-10T21:09:00Z",
        "valueQuantity": {"value": 12, "unit": "mg/L", "code": "mg/L"},
    }
    cancelled = {**usual, "id": "o2", "status": "cancelled"}
    strange_value = {**usual, "id": "o3", "valueQuantity": {"value": "12", "code": "mg/L"}}
    foreign = {**usual, "id": "o4", "subject": {"reference": "Patient/p2"}}
    (measurements, issues), plain = _both_ways(
        [usual, cancelled, strange_value, foreign], MappingOptions()
    )
    assert (measurements, issues) == plain
    assert [m.reference for m in measurements] == ["Observation/o1"]
    assert [i.reference for i in issues] == ["Observation/o4", "Observation/o2", "Observation/o3"]
    assert "status cancelled" in issues[1].reason
    assert "valueQuantity.value" in issues[2].reason


def test_a_typed_read_keeps_only_what_it_can_type_and_the_rest_reads_as_json() -> None:
    observation = read_resource(Raw(b'{"resourceType":"Observation","id":"o1","status":"final"}'))
    assert type(observation) is ObservationBytes
    assert observation.typed.id == "o1"
    assert observation.as_dict() == {"resourceType": "Observation", "id": "o1", "status": "final"}
    assert read_resource(Raw(b'{"resourceType":"Condition","id":"c1"}')) == {
        "resourceType": "Condition",
        "id": "c1",
    }
    assert read_resource(Raw(b'{"resourceType":"Observation","status":null}')) == {
        "resourceType": "Observation",
        "status": None,
    }
    assert read_resource(Raw(b"null")) is None


def test_the_benchmarks_observations_all_take_the_typed_path() -> None:
    bundle = benchmark_bundle("bench-patient")
    texts = [
        orjson.dumps(e["resource"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    ]
    assert len(texts) >= 100
    for text in texts:
        read = read_resource(Raw(text))
        assert type(read) is ObservationBytes, text
        found = select_code(read.typed, _VALUE_SETS.observations)
        assert found is not None
        coding, entry = found
        typed = observations._usual(
            "Observation/x", read.typed, coding, entry.kind, MappingOptions()
        )
        assert typed is not None, text


@pytest.mark.parametrize(
    "code",
    [
        {"coding": [{"system": "http://loinc.org", "code": "1988-5", "display": "CRP"}]},
        {"coding": [{"code": "1988-5"}, {"system": "lab"}, {}]},
        {"coding": []},
        {"text": "no codings"},
        None,
    ],
)
def test_the_codings_read_the_same_typed_or_as_a_dict(code: Any) -> None:
    resource: dict[str, Any] = {"resourceType": "Observation", "status": "final"}
    if code is not None:
        resource["code"] = code
    read = read_resource(Raw(orjson.dumps(resource)))
    assert type(read) is ObservationBytes
    assert codings(read) == codings(read.typed) == codings(resource)
