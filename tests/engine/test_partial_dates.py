"""A finding dated by a month or a year is known at diagnosis only if all of it is.

clinical-rules.md, "Known at diagnosis": a deficit or complication whose onset (or
recorded date without onset) is no later than 3 days after the later of T0 and the
episode date is known at diagnosis; a finding the rules cannot place is new ("missing a
red flag is the worse error"). An onset of "2024-03" says the finding began some day in
March: it is known at diagnosis only when the whole month lies in the window, or when a
full recordedDate inside that month places it there. The card shows the date as recorded
("2024-03"), never a day the record does not hold.

The dates go through the FHIR time parser, as the mapper reads them. Days are counted
from T0 = 2024-03-04 (builders.T0); the diagnosis window's last day is then 2024-03-07.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cds_service.cards.phrasebook import phrase
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from fhir_mappers.model import (
    Coding,
    ConditionCategory,
    ConditionFact,
    Modality,
    PatientData,
    PriorStudy,
    When,
)
from fhir_mappers.timeutil import parse_fhir_time
from tests.engine.builders import ICD10, T0, improving, nvo, order, run


def on(day: int) -> When:
    """Day ``day`` of treatment at 09:00 UTC, as a recordedDate is usually written."""
    return parse_fhir_time((T0 + timedelta(days=day)).isoformat() + "T09:00:00Z")


def finding(
    category: ConditionCategory,
    onset: str | None,
    recorded: When | None = None,
    ref: str = "Condition/finding",
) -> ConditionFact:
    code, name = {
        ConditionCategory.NEURO_DEFICIT: ("G83.4", "cauda equina syndrome"),
        ConditionCategory.COMPLICATION: ("G06.2", "epidural abscess"),
        ConditionCategory.MECHANICAL: ("M48.56XA", "vertebral collapse"),
    }[category]
    return ConditionFact(
        reference=ref,
        category=category,
        codes=(Coding(ICD10, code),),
        clinical_status="active",
        verification_status="confirmed",
        onset=None if onset is None else parse_fhir_time(onset),
        recorded=recorded,
        abatement=None,
        name=name,
    )


def deficit(onset: str | None, recorded: When | None = None) -> ConditionFact:
    return finding(ConditionCategory.NEURO_DEFICIT, onset, recorded)


def abscess(onset: str | None, recorded: When | None = None) -> ConditionFact:
    return finding(ConditionCategory.COMPLICATION, onset, recorded)


def rules(a: Assessment) -> list[str]:
    return [f.rule_id for f in a.rules_fired]


def known_refs(a: Assessment) -> list[str]:
    return [c.reference for c in a.known]


# --- a month ----------------------------------------------------------------------------


def test_a_month_that_lies_wholly_before_the_window_end_is_known_and_shown_as_a_month() -> None:
    a = run(improving(), [nvo(), deficit("2024-02")])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA  # the known-deficit answer
    assert known_refs(a) == ["Condition/finding"]
    (said,) = [phrase(r).message for r in a.missing if r.code == "known-deficit"]
    assert "(2024-02)" in said and "2024-02-01" not in said
    assert a.to_dict()["knownAtDiagnosis"][0]["start"] == "2024-02"


def test_a_month_that_lies_partly_in_the_window_is_a_new_deficit() -> None:
    # "2024-03": from 1 March (before T0) to 31 March (day 27): not all of it is at diagnosis
    a = run(improving(), [nvo(), deficit("2024-03")])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert rules(a) == ["neuro"] and known_refs(a) == []
    short = phrase(a.rules_fired[0]).short
    assert short == "New cauda equina syndrome (2024-03)"


def test_a_month_that_lies_wholly_after_the_window_is_new_without_an_invented_day() -> None:
    a = run(improving(), [nvo(), abscess("2024-04")], order_day=60)
    assert rules(a) == ["complication"]
    short = phrase(a.rules_fired[0]).short
    assert short == "Epidural abscess recorded 2024-04"  # not "day 28", the month's 1st


def test_a_month_ending_on_the_window_s_last_day_is_known_and_one_day_later_it_is_not() -> None:
    # Episode from 2024-02-26: the window ends on 2024-02-29, the last day of February.
    values = [m for m in improving() if m.kind.value != "crp"]
    ending = run(values, [nvo(onset=-7), abscess("2024-02")], order_day=20)
    assert known_refs(ending) == ["Condition/finding"]
    assert "complication" not in rules(ending)
    # Episode from 2024-02-25: the window ends on 2024-02-28, a day before February does.
    short_of = run(values, [nvo(onset=-8), abscess("2024-02")], order_day=20)
    assert known_refs(short_of) == [] and "complication" in rules(short_of)


# --- a year -------------------------------------------------------------------------------


def test_a_year_that_includes_days_after_the_window_is_new() -> None:
    a = run(improving(), [nvo(), deficit("2024")])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert phrase(a.rules_fired[0]).short == "New cauda equina syndrome (2024)"


def test_a_year_wholly_before_the_window_is_known_and_shown_as_a_year() -> None:
    a = run(improving(), [nvo(), abscess("2023")])
    assert a.recommendation is Recommendation.ADVISE_AGAINST  # a known abscess may keep it
    (note,) = [n for n in a.notes if n.code == "known-at-diagnosis"]
    said = phrase(note).message
    assert "epidural abscess (2023)" in said and "2023-01-01" not in said


# --- the recordedDate ------------------------------------------------------------------------


def test_a_recorded_date_inside_the_month_and_the_window_places_the_finding_at_diagnosis() -> None:
    # Onset "2024-03", recorded on day 2 (6 March): on record within the window, so it
    # was there at diagnosis, whatever day of March it began.
    a = run(improving(), [nvo(), abscess("2024-03", recorded=on(2))])
    assert known_refs(a) == ["Condition/finding"]
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.to_dict()["knownAtDiagnosis"][0]["start"] == "2024-03"


def test_a_finding_first_recorded_during_treatment_with_a_month_onset_is_new() -> None:
    # The tester's k19: onset "2024-03", recorded on treatment day 15.
    a = run(improving(), [nvo(), abscess("2024-03", recorded=on(15))])
    assert a.recommendation is Recommendation.SUPPORT
    assert rules(a) == ["complication"]
    finding_ = a.rules_fired[0]
    assert phrase(finding_).short == "Epidural abscess recorded day 15, onset 2024-03"
    assert "(day 15, onset 2024-03)" in phrase(finding_).message


def test_a_recorded_date_outside_the_onset_s_month_does_not_place_it() -> None:
    # Onset "2024-04" but recorded on day 1 (5 March): the two disagree; the onset's month
    # is read, and April is after the window: new.
    a = run(improving(), [nvo(), deficit("2024-04", recorded=on(1))], order_day=60)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert known_refs(a) == []
    # shown as the record holds it, never as 1 April
    short = phrase(a.rules_fired[0]).short
    assert short == "New cauda equina syndrome (day 1, onset 2024-04)"


def test_a_recorded_date_of_a_month_without_an_onset_is_the_whole_month() -> None:
    flag = finding(ConditionCategory.MECHANICAL, None, recorded=parse_fhir_time("2024-03"))
    a = run(improving(), [nvo(), flag])
    assert rules(a) == ["mechanical"]
    assert phrase(a.rules_fired[0]).short == "New vertebral collapse (2024-03)"


# --- a study done since ---------------------------------------------------------------------


def test_a_month_onset_recorded_before_a_recent_study_was_seen_on_it() -> None:
    # New abscess (onset "2024-03", recorded day 15); a whole-spine MRI on day 16; the order on
    # day 17: the card says the finding predates that study (its latest day is day 15).
    done = PriorStudy(
        reference="ImagingStudy/s16",
        modality=Modality.MRI,
        region="spine",  # an abscess is seen only on a whole-spine study
        when=parse_fhir_time((T0 + timedelta(days=16)).isoformat() + "T20:00:00Z"),
        contrast="without-and-with",  # a study that can show an abscess
    )
    data = PatientData(
        conditions=(nvo(), abscess("2024-03", recorded=on(15))),
        measurements=tuple(improving()),
        prior_studies=(done,),
    )
    a = assess((order(17),), data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert rules(a) == ["complication"]
    (seen,) = [n for n in a.notes if n.code == "flag-seen-on-study"]
    assert [c["date"] for c in seen.data["conditions"]] == ["2024-03"]


def test_a_month_onset_is_not_seen_on_a_study_done_inside_that_month() -> None:
    # New abscess with onset "2024-03" only (T0 is 2024-03-04): an MRI with gadolinium on
    # day 16 (2024-03-20) cannot show a finding that may have begun on 31 March: not
    # "seen on" it, whatever the month's first day says.
    done = PriorStudy(
        reference="ImagingStudy/s16",
        modality=Modality.MRI,
        region="lumbar",
        when=parse_fhir_time((T0 + timedelta(days=16)).isoformat() + "T20:00:00Z"),
        contrast="without-and-with",
    )
    data = PatientData(
        conditions=(nvo(), abscess("2024-03")),
        measurements=tuple(improving()),
        prior_studies=(done,),
    )
    a = assess((order(27),), data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert rules(a) == ["complication"]
    assert [n for n in a.notes if n.code == "flag-seen-on-study"] == []
