"""The measurements the rules read: which values count (their days already in one zone,
``timeline.py``), and the notes about the markers that every card carries.

Split from ``evaluate.py`` along the data flow: this module turns the mapped values into
the CRP, ESR and pain series and key figures; ``evaluate.py`` runs the rules on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from fhir_mappers.model import DataIssue, Measurement, MeasurementKind

from .assessment import KeyFigures, Remark
from .limits import ABOVE, sort_key
from .records import figure
from .response import crp_awaited, is_recent
from .rules import CrpTrend
from .thresholds import PCT_DIGITS, RuleSettings

# The mapper has already dropped entered-in-error/cancelled/registered/unknown values and
# decided on preliminary ones; the engine re-checks so that a hand-built or future mapper
# input can never slip an unusable value into a trend. The mapper's USED_STATUSES and
# preliminary (tests/test_copies_held_equal.py).
USABLE_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})


def yoon_note(
    trend: CrpTrend, esr: Sequence[Measurement], t0_day: date, settings: RuleSettings
) -> Remark | None:
    """Advise-against at week 4 with CRP above 27.5 mg/L and ESR above 55 mm/h: both at
    the levels that predicted failure (Yoon 2010); the card does not reassure.

    Both values must be from week 4 on, as Yoon's were: an ESR drawn before treatment
    says nothing of the response (an outside review found a day-0 ESR quoted "at 4
    weeks")."""
    latest = trend.latest
    week4 = settings.plateau_after_days
    if latest is None or not esr or (latest.when.day - t0_day).days < week4:
        return None
    if (esr[-1].when.day - t0_day).days < week4:
        return None
    if latest.value <= settings.slow_fall_crp_mg_l or esr[-1].value <= settings.yoon_esr_mm_h:
        return None
    return Remark(
        "yoon-high-markers",
        {
            "crp": latest.value,
            "esr": esr[-1].value,
            "crpLimit": settings.slow_fall_crp_mg_l,
            "esrLimit": settings.yoon_esr_mm_h,
            "afterDays": week4,
        },
    )


def series(
    measurements: Sequence[Measurement],
    t0_day: date | None,
    eval_day: date,
    settings: RuleSettings,
    counts: dict[str, int],
    notes: list[Remark],
) -> tuple[tuple[Measurement, ...], tuple[Measurement, ...], tuple[Measurement, ...]]:
    """The CRP, ESR and pain values that count, each sorted by time.

    Counted: usable status, finite value, from T0 - lookback to the evaluation day;
    pain only from T0 on ("since T0"). hs-CRP only when no standard CRP counts.
    Without a T0 nothing can be windowed, so nothing counts.
    """
    ignored_status = before_window = 0
    later: list[Measurement] = []  # dated after the order's day: named, not counted
    kept: list[Measurement] = []
    early_crp: list[Measurement] = []  # before the look-back, or with no T0 at all
    imprecise: list[Measurement] = []  # dated by month or year only: no day to count from
    for m in measurements:
        if m.status not in USABLE_STATUSES or not math.isfinite(m.value):
            ignored_status += 1
            continue
        if m.when.partial is not None:
            imprecise.append(m)
            continue
        if m.when.day > eval_day:
            later.append(m)
            continue
        if t0_day is None or (m.when.day - t0_day).days < -settings.data_lookback_days:
            before_window += 1
            if m.kind is MeasurementKind.CRP:
                early_crp.append(m)
            continue
        kept.append(m)
    kept = _without_duplicates(kept)
    standard = [m for m in kept if m.kind is MeasurementKind.CRP and not m.high_sensitivity]
    crp = standard or [m for m in kept if m.kind is MeasurementKind.CRP and m.high_sensitivity]
    if crp and not standard:
        notes.append(Remark("hs-crp-used"))
    if standard:
        _name_left_out(
            [m for m in kept if m.kind is MeasurementKind.CRP and m.high_sensitivity],
            "hs-crp-beside-crp",
            {},
            t0_day,
            notes,
        )
    if t0_day is not None:
        _name_left_out(
            early_crp,
            "crp-before-look-back",
            {"lookbackDays": settings.data_lookback_days},
            t0_day,
            notes,
        )
    else:  # none can be judged, but the chart shows them: named with their dates
        _name_left_out(early_crp, "crp-start-unknown", {}, None, notes)
    esr = [m for m in kept if m.kind is MeasurementKind.ESR]
    pain = [
        m
        for m in kept
        if m.kind is MeasurementKind.PAIN and t0_day is not None and m.when.day >= t0_day
    ]
    counts.update(
        crpUsed=len(crp),
        esrUsed=len(esr),
        painUsed=len(pain),
        ignoredStatus=ignored_status,
        afterEvaluation=len(later),
        beforeWindow=before_window,
    )
    if later:
        notes.append(_after_evaluation(later, eval_day, t0_day))
    if imprecise:
        # a month or a year is not a day: never pinned to its first day, where it could
        # become the baseline or the latest value (an outside review); named as recorded
        def as_recorded(m: Measurement) -> dict[str, Any]:
            shown = {"kind": m.kind.value, "value": m.value, "date": m.when.shown}
            return shown | ({"comparator": m.comparator} if m.comparator else {})

        notes.append(Remark("date-imprecise", _latest_named(imprecise, as_recorded, NAMED)))
    return tuple(crp), tuple(esr), tuple(pain)


#: How many results dated after the order, or by month or year only, a card names one by
#: one (the latest ones; the rest counted).
NAMED = 6


def _latest_named(
    values: Sequence[Measurement], describe: Callable[[Measurement], dict[str, Any]], most: int
) -> dict[str, Any]:
    """The ``most`` latest of ``values`` as ``describe`` gives each (``values``), and how
    many earlier ones are only counted (``earlier``): how every note naming left-out
    results holds them."""
    ordered = sorted(values, key=sort_key)
    named = [describe(m) for m in ordered[-most:]]
    return {"values": named, "earlier": len(ordered) - len(named)}


def _after_evaluation(later: list[Measurement], eval_day: date, t0_day: date | None) -> Remark:
    """Results dated after the order's day, named with kind, value and day: an order
    written days before it is signed (a pended or re-signed order) is judged as of its
    date, and the results since then are the ones its signer sees in the chart
    (clinical-rules.md, "Pending results": every left-out value is named, not only
    counted). ``evaluate`` makes this a gap that blocks advise-against."""
    named = _latest_named(later, lambda m: {**figure(m, t0_day), "kind": m.kind.value}, NAMED)
    return Remark(
        "after-evaluation",
        {"count": len(later), "evaluationDay": eval_day.isoformat(), **named},
    )


def _name_left_out(
    values: Sequence[Measurement],
    code: str,
    why: dict[str, Any],
    t0_day: date | None,
    notes: list[Remark],
) -> None:
    """A note naming CRP values the chart shows but the rules did not use, each with its
    value and day (the three latest, and how many more), so no card hides them."""
    if not values:
        return
    notes.append(Remark(code, {**why, **_latest_named(values, lambda m: figure(m, t0_day), 3)}))


def _without_duplicates(values: list[Measurement]) -> list[Measurement]:
    """Sorted by time, with equal duplicates shown once: the same kind, value and instant
    (a result sent by two interfaces) is one value (clinical-rules.md, "Discordant pair")."""
    values.sort(key=sort_key)
    kept: list[Measurement] = []
    seen: set[tuple[object, ...]] = set()
    for m in values:
        key = (m.kind, m.high_sensitivity, m.value, m.comparator, m.when.instant)
        if key in seen:
            continue
        seen.add(key)
        kept.append(m)
    return kept


def figures_of(
    trend: CrpTrend,
    pain: Sequence[Measurement],
    esr: Sequence[Measurement],
    t0_day: date | None,
    eval_day: date,
    settings: RuleSettings,
) -> KeyFigures:
    pain_sorted = sorted(pain, key=sort_key)
    latest = trend.latest
    base = trend.baseline
    up = up_from_lowest(trend, t0_day, settings)
    return KeyFigures(
        crp_recent=latest is not None and is_recent(latest.when.day, eval_day, settings),
        esr_recent=bool(esr) and is_recent(esr[-1].when.day, eval_day, settings),
        crp_baseline_in_window=base is not None
        and t0_day is not None
        and abs((base.when.day - t0_day).days) <= settings.baseline_window_days,
        crp_up_from_lowest_pct=up[0] if up is not None else None,
        crp_rise_too_early=up is not None and up[1],
        t0_day=t0_day,
        days_since_t0=(eval_day - t0_day).days if t0_day is not None else None,
        crp_baseline=trend.baseline,
        crp_latest=trend.latest,
        crp_lowest_earlier=trend.lowest_earlier,
        crp_percent_change=trend.change_pct if trend.usable else None,
        crp_rise_pct=trend.rise_pct if trend.usable else None,
        pain_first=pain_sorted[0] if pain_sorted else None,
        pain_lowest=min(pain_sorted, key=lambda m: (m.value, sort_key(m))) if pain_sorted else None,
        pain_latest=pain_sorted[-1] if pain_sorted else None,
        esr_first=esr[0] if esr else None,
        esr_latest=esr[-1] if esr else None,
    )


def up_from_lowest(
    trend: CrpTrend, t0_day: date | None, settings: RuleSettings
) -> tuple[float | None, bool] | None:
    """The latest CRP's rise above the lowest since treatment start in % (None from a
    lowest of 0, which no percentage is above: any rise from it is over the threshold,
    as the rise rule reads it), and whether that rise is over the rise threshold but too
    early to count (by day ``rise_after_days``: then no advise-against either,
    ``early_rise``); None when the latest is not above the lowest, or within the normal
    range (clinical-rules.md: a rise there means nothing), or on the lowest's day, or
    when the rise rule fires."""
    low, latest = trend.lowest_earlier, trend.latest
    if low is None or latest is None or t0_day is None or latest.value <= low.value:
        return None
    if latest.value < settings.crp_normal_mg_l:
        return None
    if latest.when.day == low.when.day:
        return None  # hours apart on one day: assay noise, not a course (an outside review)
    rise = (latest.value - low.value) / low.value * 100 if low.value > 0 else None
    if rise is not None and rise <= settings.rise_pct:
        return rise, False
    if (latest.when.day - t0_day).days <= settings.rise_after_days:
        return rise, True
    return None  # the rise rule fires


def early_rise(trend: CrpTrend, t0_day: date, settings: RuleSettings) -> Remark | None:
    """A rise over ``rise_pct`` above the lowest earlier CRP, taken by day
    ``rise_after_days`` (``up_from_lowest``): too early for the rise rule
    (clinical-rules.md), but no favourable response either; advise-against waits for a
    repeat CRP (an outside clinician's review: 150 -> 60 -> 110 mg/L by day 12 read "not
    recommended, remove the MRI")."""
    up = up_from_lowest(trend, t0_day, settings)
    if up is None or not up[1] or trend.latest is None or trend.lowest_earlier is None:
        return None
    data: dict[str, Any] = {
        "lowest": figure(trend.lowest_earlier, t0_day),
        "latest": figure(trend.latest, t0_day),
        "afterDays": settings.rise_after_days,
    }
    if up[0] is not None:
        data["risePct"] = round(up[0], PCT_DIGITS)
    return Remark("crp-early-rise", data)


def never_raised(crp: Sequence[Measurement], settings: RuleSettings) -> float | None:
    """The highest counted CRP when none rose above the normal limit (clinical-rules.md,
    "What a card should say": such a CRP "cannot show the response"), else None.

    A value reported above a limit (">10", ">=10") may lie anywhere above it: it is not
    shown to be at most the normal limit, so the CRP may have risen ("never raised"
    would claim what the result does not say)."""
    if not crp:
        return None
    limit = settings.crp_normal_mg_l
    if any(m.value > limit or m.comparator in ABOVE for m in crp):
        return None
    return max(m.value for m in crp)


def marker_notes(
    crp: Sequence[Measurement],
    esr: Sequence[Measurement],
    trend: CrpTrend,
    notes: list[Remark],
    settings: RuleSettings,
    issues: Sequence[DataIssue] = (),
    days: tuple[date | None, date] | None = None,
) -> None:
    """The notes on the markers, whatever the decision; ``issues`` (the data left out)
    and ``days`` (T0's and the order's) for a CRP drawn whose result is awaited
    (``crp_awaited``)."""
    if days is not None and days[0] is not None:
        awaited = crp_awaited(issues, trend.latest, days[0], days[1], settings)
        if awaited is not None:
            notes.append(awaited)
    top = never_raised(crp, settings)
    if top is not None:
        # a CRP that never rose cannot show the response (decision unchanged)
        notes.append(Remark("crp-never-raised", {"highest": top}))
    limits = [m for m in crp if m.comparator]
    if limits:
        notes.append(
            Remark(
                "crp-at-limit",
                {
                    "values": [figure(m, None) for m in limits],
                    "normalLimitMgL": settings.crp_normal_mg_l,
                },
            )
        )
    if (
        len(esr) >= 2
        and esr[-1].value > esr[0].value
        and trend.change_pct is not None
        and trend.change_pct < 0
    ):
        notes.append(
            Remark("esr-rising", {"first": figure(esr[0], None), "latest": figure(esr[-1], None)})
        )
