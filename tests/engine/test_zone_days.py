"""Condition dates read in T0's time zone, when T0 has a time and an offset.

clinical-rules.md: "Compare instants with their time zones; a date-only value is that day".
With a timed T0, the day of every dated value is counted in T0's zone, so a Condition
written in another offset keeps every one of its dates (onset, recordedDate, abatement)
with the day it falls on in T0's zone. A complication counts when it is "recorded after
T0" (on or after the T0 day); one that was there when treatment started is shown as
present at diagnosis. A Condition without a clinicalStatus counts only when it has no
abatement.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from cds_service.cards.phrasebook import phrase
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from fhir_mappers.model import Coding, ConditionCategory, ConditionFact, PatientData, When
from tests.engine.builders import ICD10, T0, crp, order, pain, run

MINUS5 = timezone(timedelta(hours=-5))
PLUS9 = timezone(timedelta(hours=9))
PLUS14 = timezone(timedelta(hours=14))
ABSCESS = "Intraspinal abscess and granuloma"


def timed(year: int, month: int, day_: int, hour: int, zone: timezone) -> When:
    """A dateTime as written in ``zone``: its day is the calendar day in that offset."""
    instant = datetime(year, month, day_, hour, tzinfo=zone)
    return When(instant=instant, day=instant.date(), date_only=False)


def dated(d: date) -> When:
    return When(instant=datetime(d.year, d.month, d.day, tzinfo=UTC), day=d, date_only=True)


# T0: 10:00 at -05:00 on 4 March 2024 (15:00 UTC).
T0_TIMED = timed(2024, 3, 4, 10, MINUS5)


def abscess(
    *,
    onset: When | None,
    recorded: When | None = None,
    abatement: When | None = None,
    clinical: str | None = "active",
) -> ConditionFact:
    return ConditionFact(
        reference="Condition/abscess",
        category=ConditionCategory.COMPLICATION,
        codes=(Coding(ICD10, "G06.1", ABSCESS),),
        clinical_status=clinical,
        verification_status="confirmed",
        onset=onset,
        recorded=recorded,
        abatement=abatement,
    )


def improving_from_timed_t0(*flags: ConditionFact) -> Assessment:
    """E1's improving data (advise-against on its own), the episode starting at T0_TIMED."""
    assert T0_TIMED.day == T0
    episode = ConditionFact(
        reference="Condition/nvo",
        category=ConditionCategory.NVO,
        codes=(Coding(ICD10, "M46.26", None),),
        clinical_status="active",
        verification_status="confirmed",
        onset=T0_TIMED,
        recorded=None,
        abatement=None,
    )
    values = [crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(14, 5), pain(28, 3)]
    data = PatientData(conditions=(episode, *flags), measurements=tuple(values))
    return assess((order(29),), data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


def rule_ids(a: Assessment) -> list[str]:
    return [f.rule_id for f in a.rules_fired]


def test_the_improving_patient_alone_is_advised_against() -> None:
    assert improving_from_timed_t0().recommendation is Recommendation.ADVISE_AGAINST


def test_a_complication_dated_only_by_an_onset_the_day_before_t0_in_t0s_zone_is_not_new() -> None:
    # Onset 01:00 on 4 March at +09:00 = 11:00 on 3 March at -05:00: the day before T0 in
    # T0's zone (though the T0 date as written), and no recordedDate. The abscess predates
    # treatment and was never recorded after T0: not a complication of this episode. Its
    # onset is a date all the same: it must not be read as an undated Condition.
    onset = timed(2024, 3, 4, 1, PLUS9)
    assert onset.instant < T0_TIMED.instant
    assert onset.instant.astimezone(MINUS5).date() == T0 - timedelta(days=1)
    a = improving_from_timed_t0(abscess(onset=onset))
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert rule_ids(a) == ["advise-against"]


def test_a_complication_present_at_diagnosis_and_recorded_after_t0_reads_as_such() -> None:
    # Onset 03:00 on 5 March at +14:00 = 08:00 on 4 March at -05:00: two hours before
    # treatment started, on the T0 day in T0's zone (the next day as written). First
    # recorded on day 6. By its onset it was there at diagnosis: known, named with the
    # date in T0's zone, not a new red flag (clinical-rules.md, 2026-12-06).
    onset = timed(2024, 3, 5, 3, PLUS14)
    assert onset.instant < T0_TIMED.instant
    assert onset.day == T0 + timedelta(days=1)
    recorded = timed(2024, 3, 10, 8, MINUS5)
    a = improving_from_timed_t0(abscess(onset=onset, recorded=recorded))
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "complication" not in rule_ids(a)
    (shown,) = a.to_dict()["knownAtDiagnosis"]
    assert shown["start"] == "2024-03-04"
    note = next(n for n in a.notes if n.code == "known-at-diagnosis")
    assert "2024-03-04, the day treatment started" in phrase(note).message


def test_a_complication_without_clinical_status_but_with_an_abatement_does_not_count() -> None:
    # No clinicalStatus and an abatement: not active (clinical-rules.md, "When the service
    # applies"), whatever its dates. Recorded 01:00 on 10 March at +09:00 = 11:00 on
    # 9 March at -05:00 (day 5 in T0's zone), resolved on 20 March.
    recorded = timed(2024, 3, 10, 1, PLUS9)
    assert recorded.instant.astimezone(MINUS5).date() != recorded.day
    flag = abscess(onset=None, recorded=recorded, abatement=dated(date(2024, 3, 20)), clinical=None)
    a = improving_from_timed_t0(flag)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "complication" not in rule_ids(a)


def test_an_abatement_is_dated_in_t0s_zone_like_the_other_dates() -> None:
    # A recurrence whose earlier occurrence abated at 01:00 on 25 March at +09:00 = 11:00
    # on 24 March at -05:00. (Recorded as a recurrence, it came back after it abated: a
    # new red flag, not a finding known at diagnosis, whatever its first onset.)
    abatement = timed(2024, 3, 25, 1, PLUS9)
    flag = abscess(
        onset=dated(date(2024, 2, 20)),
        recorded=timed(2024, 3, 10, 8, MINUS5),
        abatement=abatement,
        clinical="recurrence",
    )
    a = improving_from_timed_t0(flag)
    (finding,) = a.to_dict()["rulesFired"]
    (shown,) = finding["data"]["conditions"]
    assert shown["abatement"] == "2024-03-24"


def test_each_value_left_out_for_its_status_is_counted() -> None:
    a = run(
        [
            crp(0, 142),
            crp(7, 90, status="entered-in-error"),
            crp(14, 61),
            crp(21, 50, status="cancelled"),
            crp(28, 18),
            pain(0, 8),
            pain(28, 3),
        ]
    )
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.counts["ignoredStatus"] == 2
    assert a.counts["crpUsed"] == 3
