"""The order's day is counted in the same zone as every value's day.

clinical-rules.md, "The decision": evaluated at the order's date; comparisons with T0 are
by day, in T0's time zone. "Reading the data": compare instants with their time zones.
Values were dated in T0's zone while the order kept the day as written: a CRP drawn hours
before an order written late in the evening at -05:00 fell on the next day in UTC, a day
"after the order", and was left out; an order written at +14:00 made a 6-day-old CRP
"8 days old". Now the order's day is taken in the same zone (T0's; the order's own when
T0 is a date alone), so a result drawn before the order is never on a later day.

Day 0 is 2024-03-04 (builders.T0).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from msgspec.structs import replace as replace_record

from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from cds_service.engine.assessment import Remark
from fhir_mappers.model import (
    ConditionFact,
    DataIssue,
    ImagingOrder,
    Measurement,
    Modality,
    PatientData,
    PriorStudy,
    When,
)
from fhir_mappers.timeutil import parse_fhir_time
from tests.engine.builders import T0, crp, nvo, order, pain


def at(day: int, hour: int, zone: str = "Z", minute: int = 0) -> When:
    """Day ``day`` at ``hour``:``minute`` as written in the offset ``zone``."""
    return parse_fhir_time(
        f"{(T0 + timedelta(days=day)).isoformat()}T{hour:02d}:{minute:02d}:00{zone}"
    )


def timed(m: Measurement, when: When) -> Measurement:
    return replace_record(m, when=when)


def episode(onset: When | None = None) -> ConditionFact:
    """The NVO episode; by default its onset is 07:00 UTC on day 0 (T0's zone: UTC)."""
    return replace_record(nvo(), onset=onset or at(0, 7))


def written(when: When) -> ImagingOrder:
    return replace(order(0), authored_on=when)


def decide(
    values: list[Measurement],
    the_order: ImagingOrder,
    conditions: tuple[ConditionFact, ...] | None = None,
    issues: tuple[DataIssue, ...] = (),
    prior_studies: tuple[PriorStudy, ...] = (),
) -> Assessment:
    data = PatientData(
        conditions=conditions or (episode(),),
        measurements=tuple(values),
        issues=issues,
        prior_studies=prior_studies,
    )
    return assess((the_order,), data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


def codes(remarks: tuple[Remark, ...]) -> list[str]:
    return [r.code for r in remarks]


# --- an order written late in the evening west of T0's zone -------------------------------


def test_a_crp_drawn_hours_before_an_evening_order_at_minus_5_counts() -> None:
    # Every value and the order at -05:00, only the infection's onset in UTC (the
    # tester's z09). The CRP of 60 at 20:00 on day 20 (01:00 UTC, day 21) was drawn 3.5 h
    # before the order at 23:30 (04:30 UTC, day 21): a rise from 20 after day 14.
    values = [
        timed(crp(0, 120), at(0, 8, "-05:00")),
        timed(crp(14, 20), at(14, 8, "-05:00")),
        timed(crp(20, 60), at(20, 20, "-05:00")),
        timed(pain(0, 7), at(0, 8, "-05:00")),
        timed(pain(14, 3), at(14, 8, "-05:00")),
        timed(pain(20, 3), at(20, 20, "-05:00")),
    ]
    a = decide(values, written(at(20, 23, "-05:00", minute=30)))
    assert a.counts["afterEvaluation"] == 0
    assert a.figures.crp_latest is not None and a.figures.crp_latest.value == 60
    assert [f.rule_id for f in a.red_flags] == ["markers-not-responding"]
    # the order's day in T0's zone, as the values' days are
    assert a.evaluation_day == T0 + timedelta(days=21)
    assert a.figures.days_since_t0 == 21


def test_at_minus_12_a_crp_before_the_order_counts_and_one_after_its_day_does_not() -> None:
    # Order at 20:00 on day 28 at -12:00 = 08:00 UTC on day 29. A CRP at 06:00 UTC on
    # day 29 (two hours before) is on the order's day in T0's zone; one at 01:00 UTC on
    # day 30 is after it.
    values = [crp(0, 142, hour=8), crp(14, 61, hour=8), pain(0, 8), pain(14, 5), pain(28, 3)]
    before, later = timed(crp(29, 18), at(29, 6)), timed(crp(30, 90), at(30, 1))
    a = decide([*values, before, later], written(at(28, 20, "-12:00")))
    assert a.figures.crp_latest is not None and a.figures.crp_latest.value == 18
    assert a.counts["afterEvaluation"] == 1
    # the CRP of 90 after the order is named, and it blocks advice against imaging: the
    # order's date hides it, the signer's chart does not
    (after,) = [n for n in a.missing if n.code == "after-evaluation"]
    assert after.data["evaluationDay"] == (T0 + timedelta(days=29)).isoformat()
    assert [(v["kind"], v["value"], v["day"]) for v in after.data["values"]] == [("crp", 90, 30)]
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA


# --- the age of the latest CRP ---------------------------------------------------------------


def improving_until(latest: When) -> list[Measurement]:
    return [
        crp(0, 120, hour=8),
        crp(14, 50, hour=8),
        timed(crp(21, 15), latest),
        pain(0, 7),
        pain(14, 4),
        pain(21, 2),
    ]


def test_a_crp_six_days_and_23_hours_before_an_order_at_plus_14_is_recent() -> None:
    # Latest CRP 12:00 UTC on day 21; order 01:00 on day 29 at +14:00 = 11:00 UTC on
    # day 28: 7 days apart in T0's zone (was "8 days old" from the order's written day).
    a = decide(improving_until(at(21, 12)), written(at(29, 1, "+14:00")))
    assert a.figures.crp_recent
    assert "crp-not-recent" not in codes(a.missing)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.figures.days_since_t0 == 28


def test_the_age_at_plus_14_is_counted_in_t0_s_zone_past_the_limit_too() -> None:
    # Latest CRP 12:00 UTC on day 20; the same order: 8 days in T0's zone, not 9.
    a = decide(improving_until(at(20, 12)), written(at(29, 1, "+14:00")))
    (old,) = [r for r in a.missing if r.code == "crp-not-recent"]
    assert old.data["ageDays"] == 8


# --- a treatment start without a time: the order's zone ------------------------------------


def test_with_a_date_only_t0_days_are_counted_in_the_order_s_zone() -> None:
    # Onset "2024-03-04" (no time); a lab in UTC, the order at -05:00 (the tester's z01).
    # The CRP at 03:00 UTC on day 21 is 22:00 on day 20 at -05:00, 1.5 hours before the
    # order at 23:30: counted, on day 20, the order's day.
    values = [
        crp(0, 120, hour=8),
        crp(14, 20, hour=8),
        timed(crp(21, 60), at(21, 3)),
        pain(0, 7),
        pain(14, 3),
    ]
    a = decide(values, written(at(20, 23, "-05:00", minute=30)), (nvo(),))
    assert a.figures.crp_latest is not None and a.figures.crp_latest.value == 60
    assert a.figures.crp_latest.when.day == T0 + timedelta(days=20)
    assert a.figures.days_since_t0 == 20
    assert [f.rule_id for f in a.red_flags] == ["markers-not-responding"]


def test_with_no_time_on_t0_nor_on_the_order_the_dates_stay_as_written() -> None:
    # Onset "2024-03-04" and an order dated "2024-03-24" (day 20), both without a time:
    # no zone is given, and a date alone is that day. The CRP written 03:00 UTC on day 21
    # is after the order's date; with the order written with its time at -05:00 (23:30
    # on day 20) the same CRP is 22:00 on day 20 in the order's zone, and counts.
    values = [crp(0, 120, hour=8), crp(14, 20, hour=8), timed(crp(21, 60), at(21, 3))]
    values += [pain(0, 7), pain(14, 3)]
    dated = written(parse_fhir_time((T0 + timedelta(days=20)).isoformat()))
    a = decide(values, dated, (nvo(),))
    assert a.counts["afterEvaluation"] == 1 and a.evaluation_day == T0 + timedelta(days=20)
    assert a.figures.crp_latest is not None and a.figures.crp_latest.value == 20
    b = decide(values, written(at(20, 23, "-05:00", minute=30)), (nvo(),))
    assert b.counts["afterEvaluation"] == 0 and b.evaluation_day == T0 + timedelta(days=20)
    assert b.figures.crp_latest is not None and b.figures.crp_latest.value == 60


# --- what else is dated against the order -----------------------------------------------------


def test_a_pending_result_written_east_of_t0_s_zone_before_the_order_blocks_advise_against() -> (
    None
):
    # T0 and the order in UTC (order 23:00 on day 29). A preliminary CRP of 95 written
    # 01:00 on day 30 at +05:00 (20:00 UTC on day 29), after the latest counted one: it
    # is on the order's day, not after it, and would change the answer if confirmed.
    values = [crp(0, 142, hour=8), crp(28, 20, hour=8), pain(0, 8), pain(14, 5), pain(28, 3)]
    pending = DataIssue(
        reference="Observation/pending",
        reason="status preliminary: not used",
        kind="crp",
        plain="not yet final",
        value=95.0,
        unit="mg/L",
        when=at(30, 1, "+05:00"),
        status="preliminary",
    )
    a = decide(values, written(at(29, 23)), issues=(pending,))
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (rise,) = [r for r in a.missing if r.code == "crp-pending-rise"]
    assert rise.data["day"] == 29


def test_a_study_done_on_the_order_s_day_in_t0_s_zone_is_said_to_be_from_today() -> None:
    # A lumbar MRI at 23:00 on day 27 at -05:00 = 04:00 UTC on day 28, the order's day.
    study = PriorStudy(
        reference="ImagingStudy/s1",
        modality=Modality.MRI,
        region="lumbar",
        when=at(27, 23, "-05:00"),
    )
    values = [crp(0, 142, hour=8), crp(28, 18, hour=2), pain(0, 8), pain(28, 3)]
    a = decide(values, written(at(28, 10)), prior_studies=(study,))
    (last,) = [n for n in a.notes if n.code == "last-spine-study"]
    assert (last.data["day"], last.data["daysAgo"]) == (28, 0)
