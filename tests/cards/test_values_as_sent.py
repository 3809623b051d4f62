"""A value left out is named as the record sent it, never rounded into another number
(clinical-logic.md: a left-out value is named "as the chart shows it"; a number left out
for its unit "as reported, never converted"). An outside clinical review found a CRP of
0.08 g/L named "CRP 0.1 g/L on day 28": a value the chart does not show. A converted
value's "reported" number in the CRP table is written the same way."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from cds_service.cards.left_out import left_out
from cds_service.cards.phrasebook import phrase
from cds_service.cards.words import as_sent
from cds_service.engine.assessment import Remark
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import DataIssue, ReportedValue
from fhir_mappers.observations import MappingOptions, map_observations
from tests.cards.test_review_wording import card
from tests.engine.builders import crp, day, pain, run

T0 = date(2024, 3, 4)
VS = load_value_sets()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.08, "0.08"),
        (15.0, "15"),
        (142.35, "142.35"),
        (0.005, "0.005"),
        (1e-05, "0.00001"),
        (2.75, "2.75"),
        (120, "120"),
    ],
)
def test_a_number_as_sent_keeps_every_digit_and_no_exponent(value: float, text: str) -> None:
    assert as_sent(value) == text


def test_a_number_left_out_for_its_unit_is_named_with_every_digit() -> None:
    issue = DataIssue(
        "Observation/u1",
        "CRP unit 'ug/mL' cannot be converted to mg/L: skipped",
        kind="crp",
        plain="in a unit that could not be converted",
        when=day(28),
        status="final",
        reported=ReportedValue(0.08, "ug/mL"),
    )
    assert left_out([issue], T0) == [
        "Not used, in a unit that could not be converted: CRP 0.08 ug/mL on day 28."
    ]


def test_a_value_left_out_for_its_status_is_named_with_every_digit() -> None:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
        "effectiveDateTime": "2024-04-01T08:00:00+00:00",
        "valueQuantity": {"value": 0.35, "unit": "mg/L", "code": "mg/L"},
    }
    measurements, issues = map_observations([resource], VS, MappingOptions())
    assert measurements == ()
    assert left_out(issues, T0) == [
        "Not used: CRP 0.35 mg/L on day 28, not final (status preliminary)."
    ]


def test_a_pending_rise_names_the_pending_value_with_every_digit() -> None:
    latest = {"value": 10.0, "day": 21}
    said = phrase(
        Remark(
            "crp-pending-rise",
            {
                "reference": "Observation/o1",
                "status": "preliminary",
                "value": 12.35,
                "day": 28,
                "latest": latest,
            },
        )
    )
    assert "A preliminary CRP of 12.35 mg/L on day 28" in said.message
    assert "preliminary CRP 12.35 mg/L on day 28" in said.short


def test_a_converted_crp_shows_the_number_reported_with_every_digit() -> None:
    # u02: 0.08 g/L is 80 mg/L; the table says what the record holds, not "0.1 g/L"
    latest = crp(28, 80.0, original_value=0.08, original_unit="g/L")
    detail = card(run([crp(0, 120), crp(14, 50), latest, pain(0, 7), pain(28, 4)]))["detail"]
    assert "| 2024-04-01 | 28 | 80 (reported 0.08 g/L) | latest |" in detail
