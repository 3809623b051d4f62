"""A CRP or ESR left out for its unit carries its number as reported, so that a card can
name it with its value and day (clinical-rules.md, "Reading the data": a unit that cannot
be converted "is skipped and reported"; "Pending results": every left-out value shown in
the chart is named, not only counted). The number is never converted."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.valuesets import load_value_sets
from fhir_mappers.model import DataIssue, ReportedValue
from fhir_mappers.observations import MappingOptions, map_observations

VS = load_value_sets()
LOINC = "http://loinc.org"
OPTIONS = MappingOptions(crp_molar_factor_nmol_per_mg=9.524)
MASS, MOLAR, ESR = "1988-5", "76485-2", "4537-7"


def observation(code: str, quantity: dict[str, Any] | None, **elements: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": "2024-03-04T08:30:00+00:00",
        "valueQuantity": quantity,
    }
    resource.update(elements)
    return {k: v for k, v in resource.items() if v is not None}


def issue_of(resource: dict[str, Any], options: MappingOptions = OPTIONS) -> DataIssue:
    measurements, issues = map_observations([resource], VS, options)
    assert measurements == ()
    (issue,) = issues
    return issue


@pytest.mark.parametrize(
    ("code", "quantity", "reported"),
    [
        (MASS, {"value": 15}, ReportedValue(15.0, None)),
        (MASS, {"value": 15, "unit": "milligram", "code": "mg"}, ReportedValue(15.0, "milligram")),
        (MASS, {"value": 5, "comparator": "<", "code": "mg"}, ReportedValue(5.0, "mg", "<")),
        (MOLAR, {"value": 15, "unit": "mg/L"}, ReportedValue(15.0, "mg/L", None, "crp")),
        (MOLAR, {"value": 1.5, "unit": "mg/dL"}, ReportedValue(1.5, "mg/dL", None, "crp")),
        (
            MASS,
            {"value": 142.9, "unit": "nmol/L"},
            ReportedValue(142.9, "nmol/L", None, "crp-molar"),
        ),
        (ESR, {"value": 30, "unit": "mm"}, ReportedValue(30.0, "mm")),
    ],
    ids=[
        "no-unit",
        "a-mass-not-a-concentration",
        "comparator",
        "molar-in-mg-l",
        "molar-in-mg-dl",
        "mass-in-nmol",
        "esr",
    ],
)
def test_a_value_left_out_for_its_unit_is_carried_as_reported(
    code: str, quantity: dict[str, Any], reported: ReportedValue
) -> None:
    issue = issue_of(observation(code, quantity))
    assert issue.value is None  # never converted: no value in mg/L or mm/h
    assert issue.reported == reported
    assert issue.when is not None and issue.when.day.isoformat() == "2024-03-04"


def test_molar_crp_left_out_when_its_conversion_is_off_is_carried_as_reported() -> None:
    off = MappingOptions(crp_molar_factor_nmol_per_mg=None)
    issue = issue_of(observation(MOLAR, {"value": 1143, "unit": "nmol/L"}), off)
    assert issue.reported == ReportedValue(1143.0, "nmol/L")


def test_a_value_with_a_usable_unit_carries_no_reported_number() -> None:
    entered = issue_of(observation(MASS, {"value": 12, "unit": "mg/dL"}, status="entered-in-error"))
    assert entered.value == 120.0 and entered.reported is None
    no_value = issue_of(observation(MASS, None, valueString="positive"))
    assert no_value.reported is None
    measurements, issues = map_observations(
        [observation(MOLAR, {"value": 1143, "unit": "nmol/L"})], VS, OPTIONS
    )
    assert len(measurements) == 1 and issues == ()
