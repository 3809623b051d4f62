"""Adults only (clinical-rules.md, "Imaging", 2026-12-06): no card under min_age_years
(18) from the Patient's birthDate; an unknown birthDate keeps the decision as for an
adult and the audit says so."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from cds_service.engine import Assessment, NotApplicableReason, Recommendation, RuleSettings, assess
from fhir_mappers.model import PatientData
from fhir_mappers.patients import age_in_years, map_birth_date
from tests.engine.builders import T0, improving, nvo, order

ORDER_DAY = 29
ORDER_DATE = T0 + timedelta(days=ORDER_DAY)


def decide(born: date | None, settings: RuleSettings | None = None) -> Assessment:
    data = PatientData(conditions=(nvo(),), measurements=tuple(improving()), birth_date=born)
    return assess(
        [order(ORDER_DAY)], data, settings or RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC)
    )


def years_before(day: date, years: int) -> date:
    return day.replace(year=day.year - years)


def test_eighteen_on_the_order_day_is_an_adult() -> None:
    a = decide(years_before(ORDER_DATE, 18))
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.to_dict()["ageYears"] == 18


def test_the_day_before_the_eighteenth_birthday_is_a_child() -> None:
    a = decide(years_before(ORDER_DATE, 18) + timedelta(days=1))
    assert a.recommendation is Recommendation.NOT_APPLICABLE
    assert a.not_applicable_reason is NotApplicableReason.UNDER_MIN_AGE
    assert a.to_dict()["ageYears"] == 17


@pytest.mark.parametrize("age", [0, 5, 17])
def test_no_card_for_a_child_even_with_a_red_flag_free_improving_course(age: int) -> None:
    a = decide(years_before(ORDER_DATE, age))
    assert a.not_applicable_reason is NotApplicableReason.UNDER_MIN_AGE


def test_the_age_limit_is_a_setting() -> None:
    a = decide(years_before(ORDER_DATE, 17), replace(RuleSettings(), min_age_years=16))
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_an_unknown_birth_date_decides_as_for_an_adult_and_the_audit_says_so() -> None:
    a = decide(None)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    audit = a.to_dict()
    assert audit["ageUnknown"] is True and "ageYears" not in audit


@pytest.mark.parametrize(
    ("raw", "born"),
    [
        ("1960-05-19", date(1960, 5, 19)),
        ("2008-02", date(2008, 2, 29)),  # a month: its last day (never older than true)
        ("2008", date(2008, 12, 31)),
    ],
)
def test_the_birth_date_is_read_at_its_latest_day(raw: str, born: date) -> None:
    assert map_birth_date([{"resourceType": "Patient", "id": "p1", "birthDate": raw}], "p1") == (
        born,
        (),
    )


def test_another_patient_or_a_bad_date_leaves_the_age_unknown_and_says_why() -> None:
    other, issues = map_birth_date(
        [{"resourceType": "Patient", "id": "p2", "birthDate": "2010-01-01"}], "p1"
    )
    assert other is None and "another patient" in issues[0].reason
    assert issues[0].reference == "Patient"  # the other patient's id is not kept
    bad, issues = map_birth_date(
        [{"resourceType": "Patient", "id": "p1", "birthDate": "2010-13-01"}], "p1"
    )
    assert bad is None and "birthDate not read" in issues[0].reason
    assert map_birth_date([{"resourceType": "Patient", "id": "p1"}], "p1") == (None, ())


def test_age_counts_completed_years() -> None:
    assert age_in_years(date(2000, 2, 29), date(2018, 2, 28)) == 17
    assert age_in_years(date(2000, 2, 29), date(2018, 3, 1)) == 18


@pytest.mark.parametrize("born", [ORDER_DATE + timedelta(days=1), date(9999, 12, 31)])
def test_a_birth_date_after_the_order_is_no_age_not_a_child(born: date) -> None:
    """A placeholder such as 9999-12-31 once read as "under the minimum age": no card."""
    a = decide(born)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    audit = a.to_dict()
    assert audit["ageUnknown"] is True and "ageYears" not in audit
    assert audit["birthDateAfterOrder"] is True
