"""An early order with no spine study on record may be the infection's first imaging.

A clinician reader: day 2 of treatment, CRP 150 -> 100, no spine MRI or CT on record; the
card advised against "routine repeat" imaging while the order was probably the diagnostic
or pre-biopsy scan. The advice stands (clinical-rules.md: before 4 weeks still
advise-against), and the early-order line now says when it does not apply.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import PatientData
from fhir_mappers.prior_imaging import map_prior_imaging
from tests.engine.builders import CPT, T0, crp, nvo, order, pain

CAVEAT = "No spine MRI or CT of this infection is on record: if this is its first imaging"
EARLY = [crp(-1, 150), crp(1, 100), pain(1, 6)]


def day_two(**data: object) -> Assessment:
    base = PatientData(conditions=(nvo(),), measurements=tuple(EARLY))
    return assess(
        [order(2)], replace(base, **data), RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC)
    )


def detail(a: Assessment) -> str:
    return str(render_response(a, CardContext(patient_id="p1"))["cards"][0]["detail"])


def test_an_early_advice_with_no_study_on_record_says_when_it_does_not_apply() -> None:
    a = day_two()
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    # in the bold first lines, beside what would change the advice (a clinician reader:
    # said last, among the notes, it was missed), and said once
    first_lines = detail(a).split("\n\n", 1)[0]
    assert f"**{CAVEAT}" in first_lines
    assert detail(a).count(CAVEAT) == 1


def test_not_when_a_study_of_the_infection_is_on_record() -> None:
    when = (T0 - timedelta(days=1)).isoformat() + "T20:00:00Z"
    mri = {
        "resourceType": "ImagingStudy",
        "id": "s1",
        "status": "available",
        "started": when,
        "procedureCode": [{"coding": [{"system": CPT, "code": "72158"}]}],
    }
    studies, _ = map_prior_imaging([mri], load_value_sets())
    a = day_two(prior_studies=studies)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert CAVEAT not in detail(a) and "Last spine study" in detail(a)


def test_not_as_no_study_when_the_imaging_records_could_not_be_read() -> None:
    a = day_two(unavailable=frozenset({"imaging_reports"}))
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert CAVEAT not in detail(a)  # not "none on record": they were not read


def test_an_early_card_with_too_little_data_says_it_too() -> None:
    # an outside clinician's review: a day-3 order with one CRP and no study on record,
    # probably the diagnostic MRI, read only "not enough data ... repeat it"
    base = PatientData(conditions=(nvo(),), measurements=(crp(-1, 150), pain(1, 6)))
    a = assess([order(2)], base, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    first_lines = detail(a).split("\n\n", 1)[0]
    assert f"**{CAVEAT}" in first_lines and "this card does not apply" in first_lines
    assert "early imaging can falsely suggest" not in detail(a)  # no advice to temper
    unread = replace(base, unavailable=frozenset({"imaging_studies"}))
    a = assess([order(2)], unread, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert CAVEAT not in detail(a)  # the imaging records were not read: said as such
    assert "The spine imaging records could not be read" in detail(a)


def test_with_the_imaging_records_unread_it_says_they_were_not_read() -> None:
    # an outside clinician's re-run: the EHR sent no imaging records and no fhirServer,
    # and a day-2 order got "Remove the spine MRI order" with no word of first imaging
    unread = day_two(unavailable=frozenset({"imaging_studies"}))
    assert unread.recommendation is Recommendation.ADVISE_AGAINST
    first_lines = detail(unread).split("\n\n", 1)[0]
    assert "**The spine imaging records could not be read: if this is its first imaging" in (
        first_lines
    )
    assert "this advice does not apply" in first_lines
