"""What the record says of the infection's course that its treatment start cannot hold
(engine/course.py): a relapse or recurrence recorded on the infection's Condition is never
advised against, its treatment start would be counted from the first course (an outside
clinician's review, 2026-12-07: a relapse whose CRP fell slowly read "improving, -53%"
against the first course's baseline, with a delete suggestion); nor is a new infected
level recorded on treatment that the order does not image."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from msgspec import structs

from cds_service.engine import Assessment, Recommendation
from fhir_mappers.model import ConditionCategory, ConditionFact
from tests.engine.builders import (
    antibiotic,
    complication,
    condition,
    crp,
    improving,
    neuro,
    nvo,
    order,
    pain,
    run,
)
from tests.engine.test_clinician_revision import card

# The first course from day 0; the relapse course from day 200, its CRP 120 -> 70 by its
# day 28: a slow fall, read against the first baseline of 150 as -53%.
VALUES = [crp(0, 150), crp(200, 120), crp(214, 95), crp(228, 70)]
PAIN = [pain(0, 8), pain(200, 7), pain(228, 5)]
COURSES = [antibiotic(0, "cefazolin"), antibiotic(200, "vancomycin")]


def assess_with(status: str) -> Assessment:
    return run([*VALUES, *PAIN], [nvo(clinical=status)], order_day=229, antibiotics=COURSES)


def test_an_active_entry_reads_the_same_values_as_improving() -> None:
    assert assess_with("active").recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize("status", ["relapse", "recurrence"])
def test_a_relapse_or_recurrence_is_not_advised_against(status: str) -> None:
    a = assess_with(status)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "relapse-recorded"]
    assert remark.data["status"] == status
    assert remark.data["laterOrder"]["name"] == "vancomycin"
    shown = card(a)
    assert f"{status} recorded" in shown["summary"]
    assert "the vancomycin order started" in shown["detail"]


def test_a_relapse_whose_record_holds_no_later_course_is_read_as_any_episode() -> None:
    # an outside clinician's re-run: with the only course on record starting at the
    # Condition's date, the record does tell the courses apart; the rule must not fire
    course = [crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(28, 3)]
    a = run(course, [nvo(clinical="relapse")], order_day=29, antibiotics=COURSES[:1])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "relapse-recorded" not in {r.code for r in a.missing}


# --- a new infected level recorded on treatment ---------------------------------------------

IMPROVING = [crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(14, 5), pain(28, 3)]
LUMBAR = nvo(region="lumbar")


def thoracic(onset: int) -> ConditionFact:
    return condition("M46.24", onset=onset, region="thoracic")


def test_a_new_level_the_order_does_not_image_is_not_advised_against() -> None:
    # an outside clinician's review: a thoracic entry on day 22 of a lumbar infection, a
    # lumbar MRI ordered, read "improving, no red flag recorded" with a delete suggestion
    a = run(IMPROVING, [LUMBAR, thoracic(22)], order_day=29)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "new-level-on-treatment"]
    assert (remark.data["region"], remark.data["condition"]["day"]) == ("thoracic", 22)
    shown = card(a)
    assert "new thoracic infection recorded on day 22" in shown["summary"]
    assert "may mean spread or treatment failure" in shown["detail"]


def test_without_the_new_level_the_course_is_advised_against() -> None:
    assert run(IMPROVING, [LUMBAR], order_day=29).recommendation is Recommendation.ADVISE_AGAINST


def test_a_level_known_at_diagnosis_is_no_new_level() -> None:
    a = run(IMPROVING, [LUMBAR, thoracic(2)], order_day=29)
    assert not [r for r in a.missing if r.code == "new-level-on-treatment"]


def test_a_new_level_the_order_images_is_read_from_its_own_start() -> None:
    # a level refined on treatment (thoracolumbar) is seen from a lumbar study; a whole
    # spine study images any level: both are read from each start as before
    refined = condition("M46.25", onset=22, region="thoracolumbar")
    a = run(IMPROVING, [LUMBAR, refined], order_day=29)
    assert not [r for r in a.missing if r.code == "new-level-on-treatment"]
    whole = run(IMPROVING, [LUMBAR, thoracic(22)], orders=[replace(order(29), region="spine")])
    assert not [r for r in whole.missing if r.code == "new-level-on-treatment"]


# --- two entries of one infection: the earliest start among equal answers ----------------


def test_two_entries_that_agree_are_read_from_the_earliest_start() -> None:
    # an outside clinician's review: a readmission's entry on day 20 made the card count
    # "day 9" of a day-29 course, with an early-order note that did not apply
    course = [crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(28, 3)]
    a = run(course, [nvo(), nvo(onset=20)], order_day=29)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.figures.days_since_t0 == 29
    assert "early-order" not in {n.code for n in a.notes}
    (note,) = [n for n in a.notes if n.code == "several-episode-starts"]
    assert len(note.data["starts"]) == 2


# --- bacteraemia recorded on treatment ---------------------------------------------------------


def bacteraemia(onset: int, **kw: Any) -> ConditionFact:
    return condition("R78.81", ConditionCategory.BACTERAEMIA, onset=onset, name="bacteraemia", **kw)


def test_bacteraemia_recorded_on_treatment_is_not_advised_against() -> None:
    # an outside clinician's review: R78.81 on day 25 read "improving, no red flag
    # recorded", beside "persisting fever or bacteraemia" among what would change it
    a = run(improving(), [nvo(), bacteraemia(25)], order_day=29)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "bacteraemia-on-treatment"]
    assert remark.data["condition"]["day"] == 25
    assert "bacteraemia on day 25" in card(a)["summary"].lower()


@pytest.mark.parametrize(
    "entry",
    [bacteraemia(1), bacteraemia(25, verification="refuted")],
    ids=["at-diagnosis", "refuted"],
)
def test_bacteraemia_at_diagnosis_or_no_longer_recorded_leaves_the_advice(
    entry: ConditionFact,
) -> None:
    a = run(improving(), [nvo(), entry], order_day=29)
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_bacteraemia_at_diagnosis_still_active_is_named_on_the_advice() -> None:
    # an outside clinician's review: a bacteraemia of day 0 still active on day 29 went
    # unmentioned on an advice against imaging that listed "persisting fever or
    # bacteraemia" among what would change it
    a = run(improving(), [nvo(), bacteraemia(0)], order_day=29)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    (note,) = [n for n in a.notes if n.code == "bacteraemia-still-recorded"]
    assert note.data["condition"]["day"] == 0
    assert (
        "Bacteraemia recorded at diagnosis (day 0) is still recorded active: confirm that "
        "blood cultures have cleared; persisting bacteraemia is a reason to image."
        in card(a)["detail"]
    )


@pytest.mark.parametrize(
    "entry",
    [bacteraemia(0, clinical="resolved", abatement=10), bacteraemia(0, verification="refuted")],
    ids=["resolved", "refuted"],
)
def test_bacteraemia_at_diagnosis_no_longer_recorded_is_not_named(entry: ConditionFact) -> None:
    a = run(improving(), [nvo(), entry], order_day=29)
    assert "bacteraemia-still-recorded" not in {n.code for n in a.notes}


def test_bacteraemia_on_treatment_resolved_since_still_blocks_and_says_when() -> None:
    # an outside clinician's re-run: bacteraemia on day 25, resolved on day 27, read
    # "improving, no red flag recorded": clearing it does not make the course favourable
    a = run(improving(), [nvo(), bacteraemia(25, clinical="resolved", abatement=27)], order_day=29)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "Bacteraemia recorded on day 25, resolved day 27" in card(a)["detail"]


def test_bacteraemia_on_treatment_recorded_inactive_is_not_called_resolved() -> None:
    # as a deficit (an outside clinician's review, h94): inactive is not resolved
    found = bacteraemia(25, clinical="inactive", abatement=27)
    a = run(improving(), [nvo(), found], order_day=29)
    detail = card(a)["detail"]
    assert "Bacteraemia recorded on day 25, now inactive, ended day 27, after treat" in detail
    assert "resolved" not in detail


def test_the_shipped_code_list_reads_r78_81_as_bacteraemia() -> None:
    from tests.engine.test_imaging_codes import coded

    fact = coded("R78.81", 25)
    assert (fact.category, fact.name) == (ConditionCategory.BACTERAEMIA, "bacteraemia")


# --- new diagnoses the service does not read ----------------------------------------------


def other(code: str, onset: int, display: str) -> ConditionFact:
    return condition(code, ConditionCategory.OTHER, onset=onset, display=display)


def test_new_diagnoses_not_read_are_named_and_no_red_flag_is_qualified() -> None:
    # an outside clinician's re-run: a neurogenic bladder and a foot drop on day 24 of a
    # lumbar infection read "Improving, no red flag recorded"
    found = [
        other("N31.9", 24, "Neuromuscular dysfunction of bladder, unspecified"),
        other("M21.372", 24, "Foot drop, left foot"),
    ]
    a = run(improving(), [nvo(), *found], order_day=29)
    (note,) = [n for n in a.notes if n.code == "new-diagnoses-not-read"]
    assert note.data["count"] == 2
    detail = card(a)["detail"]
    assert "no red flag recorded among the diagnoses read" in detail
    assert "foot drop, left foot (day 24)" in detail


def test_diagnoses_at_diagnosis_or_resolved_are_not_named() -> None:
    found = [
        other("I10", 1, "Essential hypertension"),
        condition("E87.6", ConditionCategory.OTHER, onset=20, clinical="resolved"),
    ]
    a = run(improving(), [nvo(), *found], order_day=29)
    assert "new-diagnoses-not-read" not in {n.code for n in a.notes}
    assert "Improving, no red flag recorded." in card(a)["detail"]


# --- a treatment start the record does not hold to a day of treatment -----------------------

# An outside clinician's review: the infection's onset is the symptom date, 6 weeks before
# the diagnosis; the first antibiotic starts 43 days later, outside the window in which it
# would be read as T0; a CRP of 250 from the emergency visit on the onset day became the
# baseline, and a slow fall on treatment (160 -> 120 mg/L by its day 29) read "improving,
# CRP 250->120 mg/L, -52%" with a delete suggestion.
SYMPTOM_DATED = [crp(0, 250), crp(44, 160), crp(58, 140), crp(72, 120), pain(0, 8), pain(72, 5)]


def test_an_antibiotic_started_after_the_window_blocks_advise_against() -> None:
    a = run(SYMPTOM_DATED, [nvo()], order_day=73, antibiotics=[antibiotic(43, "cefazolin")])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "treatment-start-unclear"]
    assert remark.data["laterOrder"]["name"] == "cefazolin"
    assert remark.data["windowDays"] == 28
    shown = card(a)
    assert "treatment start unclear (cefazolin started" in shown["summary"]
    assert "may be when treatment began" in shown["detail"]


def test_without_a_later_order_the_infections_date_is_the_treatment_start() -> None:
    # the same values, no antibiotic order on record: T0 is the episode date, as the rules
    # say, and the course is read as recorded (here: improving)
    a = run(SYMPTOM_DATED, [nvo()], order_day=73)
    assert "treatment-start-unclear" not in {r.code for r in a.missing}
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_an_antibiotic_in_the_window_is_t0_and_a_later_one_changes_nothing() -> None:
    later = [antibiotic(10, "cefazolin"), antibiotic(60, "linezolid")]
    a = run(IMPROVING, [nvo()], order_day=29, antibiotics=later)
    assert a.recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize("partial", ["month", "year"])
def test_an_infection_dated_only_to_the_month_or_year_is_not_advised_against(
    partial: str,
) -> None:
    entry = nvo()
    assert entry.onset is not None
    dated = structs.replace(entry, onset=structs.replace(entry.onset, partial=partial))
    a = run(IMPROVING, [dated], order_day=29)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "treatment-start-unclear"]
    assert remark.data["partial"] == partial
    span = "a month" if partial == "month" else "a year"
    assert f"{span} without a day" in card(a)["detail"]


def test_a_red_flag_still_fires_when_the_treatment_start_is_unclear() -> None:
    cauda = neuro(60)
    a = run(SYMPTOM_DATED, [nvo(), cauda], order_day=73, antibiotics=[antibiotic(43)])
    assert a.recommendation is Recommendation.SUPPORT_URGENT


# --- a deficit or complication recorded as a recurrence or relapse ---------------------------


@pytest.mark.parametrize("status", ["recurrence", "relapse"])
def test_a_deficit_recorded_as_recurred_is_a_new_red_flag_not_known_at_diagnosis(
    status: str,
) -> None:
    # an outside clinician's review: a cauda equina syndrome found at diagnosis, then
    # recorded as a recurrence on the same entry, read "known since diagnosis: compare the
    # neurologic exam"; it came back, and when the record does not say
    a = run(IMPROVING, [nvo(), neuro(-1, clinical=status)], order_day=29)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert a.known == ()
    shown = card(a)
    assert f"New cauda equina syndrome ({status}, first present" not in shown["summary"]
    assert f"New cauda equina syndrome ({status}, first day -1)" in shown["summary"]
    assert "known" not in shown["summary"].lower()
    assert "days before this order" not in shown["detail"]


def test_an_abscess_recorded_as_relapsed_is_not_advised_against() -> None:
    # the same review: an epidural abscess so recorded gave advice against imaging with
    # "no new red flag recorded"
    a = run(IMPROVING, [nvo(), complication(0, clinical="relapse")], order_day=29)
    assert a.recommendation is Recommendation.SUPPORT
    shown = card(a)
    assert "(relapse, first day 0)" in shown["summary"]
    assert "no new red flag" not in shown["detail"].lower()


def test_the_same_deficit_still_active_is_known_at_diagnosis() -> None:
    a = run(IMPROVING, [nvo(), neuro(-1)], order_day=29)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [c.reference for c in a.known]


def test_a_year_dated_infection_with_a_later_order_names_the_order_not_a_window() -> None:
    # an outside clinician's review: onset "2026" with the cefazolin order in October; the
    # card must not say the order began "more than 28 days later" than a year
    entry = nvo()
    assert entry.onset is not None
    dated = structs.replace(entry, onset=structs.replace(entry.onset, partial="year"))
    a = run(SYMPTOM_DATED, [dated], order_day=73, antibiotics=[antibiotic(43, "cefazolin")])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "treatment-start-unclear"]
    assert remark.data["partial"] == "year" and remark.data["laterOrder"]["name"] == "cefazolin"
    shown = card(a)
    assert "a year without a day; the cefazolin order started" in shown["detail"]
    assert "days later" not in shown["detail"]
    assert "treatment start unclear (infection dated 2024)" in shown["summary"]


def test_no_plateau_or_rise_is_judged_from_a_treatment_start_that_is_not_a_day_of_treatment() -> (
    None
):
    # the clinician's re-run: the only antibiotic on day 35 of a symptom-dated infection,
    # and "CRP fell less than 25%: 160->150 mg/L by day 40; repeat spine MRI reasonable"
    # five days into treatment, with repeat-biopsy advice
    values = [crp(0, 160), crp(38, 155), crp(40, 150), pain(0, 7), pain(40, 6)]
    a = run(values, [nvo()], order_day=41, antibiotics=[antibiotic(35, "cefazolin")])
    assert "markers-not-responding" not in {f.rule_id for f in a.rules_fired}
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "treatment-start-unclear" in {r.code for r in a.missing}
    # the same course with cefazolin in the infection's window: a plateau by day 40
    a = run(values, [nvo()], order_day=41, antibiotics=[antibiotic(2, "cefazolin")])
    assert "markers-not-responding" in {f.rule_id for f in a.rules_fired}


@pytest.mark.parametrize(("start_day", "unclear"), [(28, False), (29, True)])
def test_the_window_edge_decides_whether_the_treatment_start_is_unclear(
    start_day: int, unclear: bool
) -> None:
    # the last day an order is read as T0 (episode date + 28 days) against the day after
    a = run(IMPROVING, [nvo()], order_day=60, antibiotics=[antibiotic(start_day, "cefazolin")])
    assert ("treatment-start-unclear" in {r.code for r in a.missing}) is unclear
    if not unclear:
        assert a.episode is not None and a.episode.t0_source == "antibiotic-order"
