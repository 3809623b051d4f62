"""The typed usual shape (``fhir_mappers.usual_r4``) accepts only what the R4B model does.

The mappers skip ``Condition.model_validate`` / ``ServiceRequest.model_validate`` for a
resource ``usual_r4`` accepts, so it must never accept one the model refuses: on usual
resources changed in up to four places into near misses (odd whitespace, controls, a
trailing newline, nulls, wrong types, dates that do not exist, offsets past 14:00, leap
seconds, unknown elements) and arbitrary text in every string, ``usual_r4`` implies the
model. The mapped answers (facts, orders and issues, with their words) are the same
with and without the shortcut, and the benchmark's resources all take it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.servicerequest import ServiceRequest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cds_service.examples import benchmark_bundle
from cds_service.valuesets import load_value_sets
from fhir_mappers import conditions, orders
from fhir_mappers.conditions import map_conditions
from fhir_mappers.orders import map_orders
from fhir_mappers.usual_r4 import usual_r4

VS = load_value_sets()
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"


def _condition() -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "c1",
        "meta": {"versionId": "ee0efb8b-b438", "lastUpdated": "2026-12-06T11:44:39.357Z"},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "category": [{"coding": [{"system": "urn:x", "code": "problem-list-item"}]}],
        "code": {
            "coding": [{"system": ICD10CM, "code": "M46.26", "display": "Osteomyelitis"}],
            "text": "Vertebral osteomyelitis",
        },
        "subject": {"reference": "Patient/p1", "display": "A patient"},
        "onsetDateTime": "2026-01-01T07:00:00Z",
        "recordedDate": "2026-01-01",
    }


def _order() -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "o1",
        "status": "draft",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": CPT, "code": "72158", "display": "MRI"}], "text": "MRI"},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-02-12T10:00:00+01:00",
        "reasonCode": [{"coding": [{"system": ICD10CM, "code": "M46.26"}]}],
        "reasonReference": [{"reference": "Condition/c1"}],
    }


# Values that sit just inside or just outside what either side accepts.
_ODD_TEXT = [
    "",
    " ",
    "a  b",
    " a",
    "a ",
    "a\n",
    "\n",
    "\t",
    "\x0b",
    "a\x0bb",
    "\x1c",
    "\u00a0",
    "a\u00a0b",
    "\u2028",
    "\u200b",
    "\u202e",
    "é",
    "x" * 65,
    "x" * 300,
    "a/b",
    "Patient/p1",
    None,
    5,
    True,
    [],
    {},
]
_ODD_TIMES = [
    "2026",
    "2026-02",
    "2026-02-30",
    "2026-02-28",
    "0999-01-01",
    "0000-01-01",
    "2026-01-01T07:00:00",
    "2026-01-01T07:00Z",
    "2026-01-01T24:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-01-01T07:00:00+14:00",
    "2026-01-01T07:00:00+14:30",
    "2026-01-01T07:00:00-13:59",
    "2026-01-01T07:00:00.1234567Z",
    "2026-01-01T07:00:00.123456Z",
    "2026-02-30T07:00:00Z",
    "2026-01-01T07:00:00Z\n",
    "2026-01-01 07:00:00Z",
    "20260101",
    None,
    20260101,
]
_CONDITION_PATHS = [
    ("id",),
    ("meta", "versionId"),
    ("meta", "lastUpdated"),
    ("code", "text"),
    ("code", "coding", 0, "system"),
    ("code", "coding", 0, "code"),
    ("code", "coding", 0, "display"),
    ("code", "coding", 0, "userSelected"),
    ("clinicalStatus", "coding", 0, "code"),
    ("category", 0, "coding", 0, "code"),
    ("subject", "reference"),
    ("subject", "display"),
    ("onsetDateTime",),
    ("abatementDateTime",),
    ("recordedDate",),
    ("onsetString",),
    ("onsetPeriod",),
    ("note",),
    ("extension",),
    ("_onsetDateTime",),
    ("code",),
    ("subject",),
    ("category",),
    ("resourceType",),
]
_ORDER_PATHS = [
    ("id",),
    ("status",),
    ("intent",),
    ("priority",),
    ("authoredOn",),
    ("code", "coding", 0, "code"),
    ("code", "coding", 0, "display"),
    ("code", "text"),
    ("subject", "reference"),
    ("reasonCode", 0, "text"),
    ("reasonReference", 0, "reference"),
    ("requester",),
    ("occurrenceDateTime",),
    ("extension",),
    ("subject",),
    ("status",),
]
_REMOVE = object()


_TIME_ELEMENTS = {"lastUpdated", "onsetDateTime", "abatementDateTime", "recordedDate", "authoredOn"}


def _values(path: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    if path[-1] in _TIME_ELEMENTS:
        return st.one_of(st.sampled_from([*_ODD_TIMES, _REMOVE]), st.text(max_size=30))
    return st.one_of(
        st.sampled_from([*_ODD_TEXT, *_ODD_TIMES, _REMOVE]),
        st.text(max_size=8),
        st.text(alphabet=st.characters(codec="utf-8", categories=["Z", "C"]), max_size=3),
    )


def _changed(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = resource
    for step in path[:-1]:
        try:
            target = target[step]
        except (KeyError, IndexError, TypeError):
            return
    if not isinstance(target, dict | list):
        return
    last = path[-1]
    if value is _REMOVE:
        if isinstance(target, dict):
            target.pop(last, None)
        return
    if isinstance(target, dict) or (isinstance(last, int) and last < len(target)):
        target[last] = value


@st.composite
def _resources(draw: st.DrawFn) -> dict[str, Any]:
    is_condition = draw(st.booleans())
    resource = _condition() if is_condition else _order()
    paths = _CONDITION_PATHS if is_condition else _ORDER_PATHS
    for path in draw(st.lists(st.sampled_from(paths), max_size=4)):
        _changed(resource, path, draw(_values(path)))
    # and most often one of its times, where the two sides' rules are the most detailed
    times = [p for p in paths if p[-1] in _TIME_ELEMENTS]
    if draw(st.integers(0, 3)):
        path = draw(st.sampled_from(times))
        _changed(resource, path, draw(_values(path)))
    return resource


def _model_accepts(resource: dict[str, Any]) -> bool:
    model = Condition if resource.get("resourceType") == "Condition" else ServiceRequest
    try:
        model.model_validate(copy.deepcopy(resource))
    except (ValidationError, ValueError, TypeError):
        return False
    return True


@settings(max_examples=1500, deadline=None)
@given(_resources())
def test_what_the_usual_shape_accepts_the_model_accepts(resource: dict[str, Any]) -> None:
    if usual_r4(resource):
        assert _model_accepts(resource), resource


def test_the_usual_resources_take_the_typed_path() -> None:
    assert usual_r4(_condition()) and usual_r4(_order())
    bundle = benchmark_bundle("p1")
    found = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] in ("Condition", "ServiceRequest")
    ]
    assert found and all(usual_r4(r) for r in found)


def test_near_misses_are_left_to_the_model() -> None:
    for path, value in [
        (("onsetDateTime",), "2026-02-30T07:00:00Z"),
        (("onsetDateTime",), "2026-01-01T07:00:00+14:30"),
        (("abatementDateTime",), "2026-12-31T23:59:60Z"),
        (("recordedDate",), "2026-02-30"),
        (("meta", "lastUpdated"), "2026-12-06"),
        (("code", "coding", 0, "code"), "M46.26\n"),
        (("code", "coding", 0, "display"), "\u00a0"),
        (("note",), [{"text": "x"}]),
        (("subject",), _REMOVE),
    ]:
        resource = _condition()
        _changed(resource, path, value)
        assert not usual_r4(resource), (path, value)
    assert not usual_r4({"resourceType": "Patient"}) and not usual_r4([])


@contextmanager
def _model_only() -> Iterator[None]:
    with (
        mock.patch.object(conditions, "usual_r4", lambda resource: False),
        mock.patch.object(orders, "usual_r4", lambda resource: False),
    ):
        yield


@settings(max_examples=300, deadline=None)
@given(st.lists(_resources(), min_size=1, max_size=4))
def test_the_mappers_answer_as_with_the_model_alone(resources: list[dict[str, Any]]) -> None:
    for i, resource in enumerate(resources):
        if isinstance(resource.get("id"), str):
            resource["id"] = f"{resource['id']}{i}"
    draft = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    typed = (map_conditions(resources, VS), map_orders(draft, None, VS))
    with _model_only():
        model = (map_conditions(resources, VS), map_orders(draft, None, VS))
    assert typed == model
