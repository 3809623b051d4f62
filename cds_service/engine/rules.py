"""The rules of clinical-rules.md as small pure functions.

Each red-flag rule returns a RuleFinding (it fired, with the data it used) or None.
Percentages are rounded to 6 decimals before comparison so that float noise never
turns an exact 25 % fall into 24.999999 %; displayed figures are rounded separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_mappers.model import ConditionCategory, ConditionFact, Measurement

from .assessment import (
    RULE_COMPLICATION,
    RULE_MARKERS,
    RULE_NEURO,
    RULE_PAIN,
    RULE_UNCERTAIN_DX,
    Episode,
    Recommendation,
    RuleFinding,
    condition_to_dict,
    figure,
)
from .episode import UNCERTAIN_VERIFICATION, counts_now
from .thresholds import RuleSettings
from .wording import (
    ARROW,
    condition_name,
    fmt,
    lower_first,
    shown,
    signed_pct,
    upper_first,
    when_found,
)


def pct_change(start: float, end: float) -> float | None:
    """Signed percent change from ``start`` to ``end``; None when start is not positive."""
    if start <= 0:
        return None
    return round((end - start) / start * 100.0, 6)


def sort_key(m: Measurement) -> tuple[Any, ...]:
    return (m.when.instant, m.reference)


def day_of(m: Measurement, t0_day: date) -> int:
    return (m.when.day - t0_day).days


@dataclass(frozen=True)
class CrpTrend:
    """Baseline, latest and lowest-earlier CRP (mg/L) of the series used."""

    baseline: Measurement | None
    latest: Measurement | None
    lowest_earlier: Measurement | None
    change_pct: float | None  # latest vs baseline, signed (a fall is negative)
    rise_pct: float | None  # latest vs lowest earlier since T0

    @property
    def usable(self) -> bool:
        """Two values or more with the latest taken after the baseline."""
        return (
            self.baseline is not None
            and self.latest is not None
            and self.latest.when.instant > self.baseline.when.instant
        )

    @property
    def fall_pct(self) -> float | None:
        return None if self.change_pct is None else -self.change_pct


def crp_trend(crp: Sequence[Measurement], t0_day: date, settings: RuleSettings) -> CrpTrend:
    """Baseline: the highest value in [T0 - w, T0 + w], else the first value after T0."""
    series = sorted(crp, key=sort_key)
    if not series:
        return CrpTrend(None, None, None, None, None)
    w = settings.baseline_window_days
    window = [m for m in series if -w <= (m.when.day - t0_day).days <= w]
    baseline: Measurement | None
    if window:
        top = max(m.value for m in window)
        baseline = next(m for m in window if m.value == top)  # earliest of equal highs
    else:
        baseline = next((m for m in series if m.when.day > t0_day), None)
    latest = series[-1]
    earlier = [m for m in series if m.when.day >= t0_day and m.when.instant < latest.when.instant]
    lowest = min(earlier, key=lambda m: (m.value, sort_key(m))) if earlier else None
    change = pct_change(baseline.value, latest.value) if baseline is not None else None
    rise = pct_change(lowest.value, latest.value) if lowest is not None else None
    return CrpTrend(baseline, latest, lowest, change, rise)


def _findings(
    conditions: Sequence[ConditionFact], category: ConditionCategory
) -> list[ConditionFact]:
    """Active, valid Conditions of a category, in reference order."""
    found = [c for c in conditions if c.category is category and counts_now(c)]
    return sorted(found, key=lambda c: c.reference)


def is_known_at_diagnosis(c: ConditionFact, cutoff: date | None) -> bool:
    """Dated (onset, else recordedDate) no later than the diagnosis window's last day.

    An undated finding is treated as new, and so is every finding when no window can be
    drawn: missing a red flag is the worse error. A finding first recorded later whose
    onset falls in the window was there at diagnosis (clinical-rules.md, 2026-12-06).
    """
    start = c.start
    return cutoff is not None and start is not None and start.day <= cutoff


def known_findings(
    conditions: Sequence[ConditionFact], cutoff: date | None
) -> tuple[ConditionFact, ...]:
    """Deficits and complications found with the infection: named, never "new"."""
    return tuple(
        c
        for category in (ConditionCategory.NEURO_DEFICIT, ConditionCategory.COMPLICATION)
        for c in _findings(conditions, category)
        if is_known_at_diagnosis(c, cutoff)
    )


def _conditions_since(
    conditions: Sequence[ConditionFact], category: ConditionCategory, cutoff: date | None
) -> list[ConditionFact]:
    """The findings of a category that are new: dated after the diagnosis window."""
    return [c for c in _findings(conditions, category) if not is_known_at_diagnosis(c, cutoff)]


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"


def neuro_rule(
    conditions: Sequence[ConditionFact], t0_day: date | None, cutoff: date | None
) -> RuleFinding | None:
    found = _conditions_since(conditions, ConditionCategory.NEURO_DEFICIT, cutoff)
    if not found:
        return None
    first = found[0]
    when, at_start = when_found(first, t0_day)
    name = lower_first(condition_name(first))
    lead = upper_first(name) if at_start else f"New {name}"
    head = f"{lead} ({when})" if when else lead
    names = [lower_first(condition_name(c)) for c in found]
    return RuleFinding(
        rule_id=RULE_NEURO,
        recommendation=Recommendation.SUPPORT_URGENT,
        message=(
            f"Neurologic deficit recorded: {_dated_names(found, t0_day)}. "
            "Look for an epidural abscess or compression of the cord or cauda equina now."
        ),
        data={"conditions": [condition_to_dict(c) for c in found]},
        short=head if len(found) == 1 else f"{head}, and {_listed(names[1:])}",
    )


def complication_rule(
    conditions: Sequence[ConditionFact], t0_day: date | None, cutoff: date | None
) -> RuleFinding | None:
    found = _conditions_since(conditions, ConditionCategory.COMPLICATION, cutoff)
    if not found:
        return None
    first = found[0]
    when, at_start = when_found(first, t0_day)
    name = upper_first(condition_name(first))
    if at_start:
        short = f"{name} {when}"
    else:
        short = f"{name} recorded {when}" if when else f"{name} recorded"
    if len(found) > 1:
        short += f", and {_listed([lower_first(condition_name(c)) for c in found[1:]])}"
    return RuleFinding(
        rule_id=RULE_COMPLICATION,
        recommendation=Recommendation.SUPPORT,
        message=f"Complication recorded: {_dated_names(found, t0_day)}.",
        data={"conditions": [condition_to_dict(c) for c in found]},
        short=short,
    )


def _dated_names(found: Sequence[ConditionFact], t0_day: date | None) -> str:
    parts = []
    for c in found:
        when, _ = when_found(c, t0_day)
        name = lower_first(condition_name(c))
        parts.append(f"{name} ({when})" if when else name)
    return "; ".join(parts)


def uncertain_dx_rule(episode: Episode, conditions: Sequence[ConditionFact]) -> RuleFinding | None:
    """Provisional/differential/unconfirmed NVO, unconfirmed M46.4x, or an active mimic.

    Said as what the record shows, never "diagnosis unclear" as a fact (clinical-rules.md,
    "What a card should say", 2026-12-06): an unconfirmed diagnosis with the biopsy hint,
    a mimic with why imaging may still be needed.
    """
    c = episode.condition
    reasons: list[str] = []
    shorts: list[str] = []
    name = lower_first(condition_name(c))
    if c.verification_status in UNCERTAIN_VERIFICATION:
        status = (
            "a differential" if c.verification_status == "differential" else (c.verification_status)
        )
        reasons.append(
            f"Diagnosis not confirmed ({name} recorded as {status}): imaging reasonable; if "
            "no organism is known, consider image-guided biopsy"
        )
        shorts.append(f"Diagnosis not confirmed ({name} recorded as {status})")
    elif c.category is ConditionCategory.NVO_UNSPECIFIED and c.verification_status != "confirmed":
        reasons.append(
            f"Diagnosis not confirmed ({name} recorded without a confirmed infectious cause): "
            "imaging reasonable; if no organism is known, consider image-guided biopsy"
        )
        shorts.append(f"Diagnosis not confirmed ({name})")
    mimics = sorted(
        (m for m in conditions if m.category is ConditionCategory.MIMIC and counts_now(m)),
        key=lambda m: m.reference,
    )
    if mimics:
        names = [lower_first(condition_name(m)) for m in mimics]
        listed = ", ".join(names)
        reasons.append(
            f"{upper_first(listed)} also recorded: imaging may be needed for it or to tell "
            "infection from it"
            if not any("metasta" in n or "cancer" in n or "neoplasm" in n for n in names)
            else f"{upper_first(listed)} also recorded: imaging may be needed for the cancer "
            "or to tell infection from tumour"
        )
        shorts.append(f"{upper_first(_listed(names))} also recorded")
    if not reasons:
        return None
    data: dict[str, Any] = {"episode": condition_to_dict(c), "reasons": reasons}
    if mimics:
        data["mimics"] = [condition_to_dict(m) for m in mimics]
    return RuleFinding(
        rule_id=RULE_UNCERTAIN_DX,
        recommendation=Recommendation.SUPPORT,
        message="; ".join(reasons) + ".",
        data=data,
        short="; ".join(shorts),
    )


def markers_rule(trend: CrpTrend, t0_day: date, settings: RuleSettings) -> RuleFinding | None:
    """CRP plateau at >= 28 days, or a > 20 % rise after day 14 over the lowest earlier value.

    Neither counts while the latest CRP is below the normal limit (clinical-rules.md,
    revised 2026-11-28): 3 -> 4 mg/L is not a rise, and a CRP that stays normal is not
    a plateau.
    """
    if not trend.usable or trend.baseline is None or trend.latest is None:
        return None
    latest, baseline, lowest = trend.latest, trend.baseline, trend.lowest_earlier
    if latest.value < settings.crp_normal_mg_l:
        return None
    day = day_of(latest, t0_day)
    parts: list[str] = []
    shorts: list[str] = []
    data: dict[str, Any] = {
        "baseline": figure(baseline, t0_day),
        "latest": figure(latest, t0_day),
        "latestDay": day,
        "normalLimitMgL": settings.crp_normal_mg_l,
    }
    fall = trend.fall_pct
    if fall is not None:
        data["fallPct"] = round(fall, 1)
    plateau = (
        day >= settings.plateau_after_days
        and fall is not None
        and fall < settings.plateau_min_fall_pct
    )
    if plateau:
        data["plateau"] = {
            "afterDays": settings.plateau_after_days,
            "minFallPct": settings.plateau_min_fall_pct,
        }
        change = signed_pct(trend.change_pct or 0.0)
        shorts.append(
            f"CRP not falling: {shown(baseline)}{ARROW}{shown(latest)} mg/L ({change}) by day {day}"
        )
        parts.append(
            f"CRP {shown(baseline)}{ARROW}{shown(latest)} mg/L ({change}) by day {day}: "
            f"less than a {fmt(settings.plateau_min_fall_pct)}% fall by day {day} (judged from "
            f"day {settings.plateau_after_days})"
        )
    rise = False
    if lowest is not None and day > settings.rise_after_days:
        if trend.rise_pct is None:
            rise = latest.value > lowest.value  # from zero: any increase is a rise
        else:
            rise = trend.rise_pct > settings.rise_pct
    if rise and lowest is not None:
        data["rise"] = {
            "lowestEarlier": figure(lowest, t0_day),
            "afterDays": settings.rise_after_days,
            "thresholdPct": settings.rise_pct,
        }
        if trend.rise_pct is not None:
            data["rise"]["risePct"] = round(trend.rise_pct, 1)
        by = f" ({signed_pct(trend.rise_pct)})" if trend.rise_pct is not None else ""
        low_day = day_of(lowest, t0_day)
        shorts.append(
            f"CRP rising again: {shown(lowest)}{ARROW}{shown(latest)} mg/L{by} since day {low_day}"
        )
        parts.append(
            f"CRP rising again: {shown(lowest)} mg/L on day {low_day}, "
            f"{shown(latest)} mg/L on day {day}{by}, more than "
            f"{fmt(settings.rise_pct)}% above its lowest since treatment start"
        )
    if not parts:
        return None
    return RuleFinding(
        rule_id=RULE_MARKERS,
        recommendation=Recommendation.SUPPORT,
        message="; ".join(parts) + ".",
        data=data,
        short="; ".join(shorts),
    )


def pain_rule(
    pain: Sequence[Measurement], t0_day: date, settings: RuleSettings
) -> RuleFinding | None:
    """Latest pain >= 2 points above the lowest since T0."""
    if not pain:
        return None
    series = sorted(pain, key=sort_key)
    latest = series[-1]
    lowest = min(series, key=lambda m: (m.value, sort_key(m)))
    rise = round(latest.value - lowest.value, 6)
    if rise < settings.pain_worse_points:
        return None
    low_day, day = day_of(lowest, t0_day), day_of(latest, t0_day)
    return RuleFinding(
        rule_id=RULE_PAIN,
        recommendation=Recommendation.SUPPORT,
        message=(
            f"Pain worse: {shown(latest)}/10 on day {day}, {fmt(rise)} points above its "
            f"lowest since treatment start ({shown(lowest)}/10 on day {low_day})."
        ),
        data={
            "lowest": figure(lowest, t0_day),
            "latest": figure(latest, t0_day),
            "risePoints": rise,
            "thresholdPoints": settings.pain_worse_points,
        },
        short=f"Pain worse: {shown(lowest)}{ARROW}{shown(latest)}/10 since day {low_day}",
    )
