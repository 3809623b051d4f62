"""The order's moment, and the one time zone in which every day is counted.

clinical-rules.md, "The decision": the rules are evaluated at the order's date ("now"),
and comparisons with T0 are by day, in T0's time zone (a date-only value is that day);
"Reading the data": compare instants with their time zones.

Decisions:
- The moment is the order's authoredOn (the latest when several orders are in question),
  else the caller's ``now`` (the request's arrival).
- Days are counted in one zone: T0's when T0 has a time; when T0 is a date alone, the
  order's (its authoredOn's offset, else ``now``'s). Every timed date (values, Conditions,
  results left out, studies, operations) and the order itself take their day in it.
  Date-only values keep their date. With neither T0 nor the order timed, dates stay as
  written.
- So the order's day and a value's day are always compared in the same zone: a result
  drawn before the order is never on a later day than the order (a CRP drawn at 20:00
  at -05:00, 3.5 hours before an order written at 23:30 at -05:00, is the next day in
  T0's zone, UTC, and so is the order), and a CRP's age and the order's day of treatment
  are counted as the values' days are. "After the order" stays a day, the order's date
  (clinical-rules.md): a result drawn later on the order's day still counts, as a pending
  rise or a second CRP hours after the first must.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, tzinfo

from msgspec.structs import replace as replace_record

from fhir_mappers.model import ConditionFact, ImagingOrder, PatientData, When

from .assessment import Episode

__all__ = ["day_zone", "in_zone", "order_day", "order_moment"]


def order_moment(orders: Sequence[ImagingOrder], now: datetime) -> tuple[When, str]:
    """The order's authoredOn (the latest when several), else ``now``; and which it is."""
    authored = [o.authored_on for o in orders if o.authored_on is not None]
    if authored:
        return max(authored, key=lambda w: (w.instant, w.day)), "authoredOn"
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return When(now, now.date()), "now"


def day_zone(t0: When | None, moment: When) -> tzinfo | None:
    """T0's zone when T0 has a time, else the order's when it has one, else none."""
    if t0 is not None and not t0.date_only:
        return t0.instant.tzinfo
    if not moment.date_only:
        return moment.instant.tzinfo
    return None


def order_day(moment: When, zone: tzinfo | None) -> date:
    """The order's day in ``zone`` (as written when it is a date alone)."""
    return _moved(moment, zone).day


def _moved(when: When, zone: tzinfo | None) -> When:
    """The same value with its day in ``zone``; the very same object when that day is the
    one it has (the usual case: one offset throughout), so a request with hundreds of
    values copies only the few that cross midnight. Date-only values keep their date."""
    if zone is None or when.date_only:
        return when
    instant = when.instant
    # astimezone to the zone an instant already has is the instant itself
    day = (instant if instant.tzinfo is zone else instant.astimezone(zone)).date()
    return when if day == when.day else When(instant, day)


def _moved_or_none(when: When | None, zone: tzinfo) -> When | None:
    return None if when is None else _moved(when, zone)


def _condition(c: ConditionFact, zone: tzinfo) -> ConditionFact:
    onset, recorded = _moved_or_none(c.onset, zone), _moved_or_none(c.recorded, zone)
    abatement = _moved_or_none(c.abatement, zone)
    if onset is c.onset and recorded is c.recorded and abatement is c.abatement:
        return c
    return replace_record(c, onset=onset, recorded=recorded, abatement=abatement)


def in_zone(
    episode: Episode, data: PatientData, zone: tzinfo | None
) -> tuple[Episode, PatientData]:
    """The episode and the data with every timed date's day in ``zone``.

    Each value's ``day`` is the calendar date in its own offset; with mixed offsets a value
    near midnight could otherwise fall a day off at a threshold (28 d 5 h counted as day
    27), or on a later day than an order written after it.
    """
    if zone is None:
        return episode, data
    measurements = []
    for m in data.measurements:  # _moved(), inline: hundreds of values
        when = m.when
        if not when.date_only:
            instant = when.instant
            day = (instant if instant.tzinfo is zone else instant.astimezone(zone)).date()
            if day != when.day:
                m = replace_record(m, when=When(instant, day))
        measurements.append(m)
    issues = tuple(
        i if i.when is None else replace_record(i, when=_moved(i.when, zone)) for i in data.issues
    )
    moved = replace(
        data,
        measurements=tuple(measurements),
        conditions=tuple(_condition(c, zone) for c in data.conditions),
        issues=issues,
        prior_studies=tuple(
            replace_record(s, when=_moved(s.when, zone)) for s in data.prior_studies
        ),
        spine_surgery=tuple(
            replace_record(s, when=_moved_or_none(s.when, zone)) for s in data.spine_surgery
        ),
    )
    return replace(episode, condition=_condition(episode.condition, zone)), moved
