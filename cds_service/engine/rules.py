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
    Remark,
    RuleFinding,
    condition_to_dict,
    figure,
)
from .episode import UNCERTAIN_VERIFICATION, counts_now
from .settings import RuleSettings


def pct_change(start: float, end: float) -> float | None:
    """Signed percent change from ``start`` to ``end``; None when start is not positive."""
    if start <= 0:
        return None
    return round((end - start) / start * 100.0, 6)


def fmt(value: float) -> str:
    """A value as a clinician reads it: no trailing zeros, at most one decimal."""
    return f"{round(value, 1):g}"


def sort_key(m: Measurement) -> tuple[Any, ...]:
    return (m.when.instant, m.reference)


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


def _conditions_since(
    conditions: Sequence[ConditionFact], category: ConditionCategory, t0_day: date | None
) -> list[ConditionFact]:
    """Active, valid Conditions of a category with an onset or a recorded date on or after T0.

    "After T0" is inclusive (a deficit recorded on the day treatment starts cannot be
    shown to predate it), either date counts (clinical-rules.md says "recorded after
    T0"; an abscess with an earlier onset first recorded during treatment is still a
    finding of this episode) and an undated Condition counts: missing a red flag is the
    worse error. Without a T0 every active one counts, for the same reason.
    """
    found = []
    for c in conditions:
        if c.category is not category or not counts_now(c):
            continue
        dates = [when.day for when in (c.onset, c.recorded) if when is not None]
        if t0_day is None or not dates or max(dates) >= t0_day:
            found.append(c)
    return sorted(found, key=lambda c: c.reference)


def neuro_rule(conditions: Sequence[ConditionFact], t0_day: date | None) -> RuleFinding | None:
    found = _conditions_since(conditions, ConditionCategory.NEURO_DEFICIT, t0_day)
    if not found:
        return None
    names = ", ".join(_name(c) for c in found)
    return RuleFinding(
        rule_id=RULE_NEURO,
        recommendation=Recommendation.SUPPORT_URGENT,
        message=f"New neurologic deficit since treatment start: {names}.",
        data={"conditions": [condition_to_dict(c) for c in found]},
    )


def complication_rule(
    conditions: Sequence[ConditionFact], t0_day: date | None
) -> RuleFinding | None:
    found = _conditions_since(conditions, ConditionCategory.COMPLICATION, t0_day)
    if not found:
        return None
    names = ", ".join(_name(c) for c in found)
    return RuleFinding(
        rule_id=RULE_COMPLICATION,
        recommendation=Recommendation.SUPPORT,
        message=f"Complication recorded since treatment start: {names}.",
        data={"conditions": [condition_to_dict(c) for c in found]},
    )


def uncertain_dx_rule(episode: Episode, conditions: Sequence[ConditionFact]) -> RuleFinding | None:
    """Provisional/differential/unconfirmed NVO, unconfirmed M46.4x, or an active mimic."""
    c = episode.condition
    reasons: list[str] = []
    if c.verification_status in UNCERTAIN_VERIFICATION:
        reasons.append(f"the NVO diagnosis is {c.verification_status}")
    elif c.category is ConditionCategory.NVO_UNSPECIFIED and c.verification_status != "confirmed":
        reasons.append("discitis, unspecified (M46.4x) is not confirmed")
    mimics = sorted(
        (m for m in conditions if m.category is ConditionCategory.MIMIC and counts_now(m)),
        key=lambda m: m.reference,
    )
    if mimics:
        reasons.append("an active mimic coexists: " + ", ".join(_name(m) for m in mimics))
    if not reasons:
        return None
    data: dict[str, Any] = {"episode": condition_to_dict(c), "reasons": reasons}
    if mimics:
        data["mimics"] = [condition_to_dict(m) for m in mimics]
    return RuleFinding(
        rule_id=RULE_UNCERTAIN_DX,
        recommendation=Recommendation.SUPPORT,
        message="Diagnosis uncertain: " + "; ".join(reasons) + ".",
        data=data,
    )


def markers_rule(trend: CrpTrend, t0_day: date, settings: RuleSettings) -> RuleFinding | None:
    """CRP plateau at >= 28 days, or a > 20 % rise after day 14 over the lowest earlier value."""
    if not trend.usable or trend.baseline is None or trend.latest is None:
        return None
    latest, baseline, lowest = trend.latest, trend.baseline, trend.lowest_earlier
    day = (latest.when.day - t0_day).days
    parts: list[str] = []
    data: dict[str, Any] = {
        "baseline": figure(baseline, t0_day),
        "latest": figure(latest, t0_day),
        "latestDay": day,
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
        parts.append(
            f"CRP {fmt(baseline.value)} -> {fmt(latest.value)} mg/L on day {day} fell "
            f"{fmt(fall or 0.0)}% (< {fmt(settings.plateau_min_fall_pct)}%): plateau"
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
        parts.append(
            f"CRP rose from {fmt(lowest.value)} to {fmt(latest.value)} mg/L by day {day} "
            f"(> {fmt(settings.rise_pct)}% above the lowest earlier value)"
        )
    if not parts:
        return None
    return RuleFinding(
        rule_id=RULE_MARKERS,
        recommendation=Recommendation.SUPPORT,
        message="Markers not responding: " + "; ".join(parts) + ".",
        data=data,
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
    return RuleFinding(
        rule_id=RULE_PAIN,
        recommendation=Recommendation.SUPPORT,
        message=(
            f"Pain worse: latest {fmt(latest.value)}/10 is {fmt(rise)} points above the "
            f"lowest since treatment start ({fmt(lowest.value)}/10)."
        ),
        data={
            "lowest": figure(lowest, t0_day),
            "latest": figure(latest, t0_day),
            "risePoints": rise,
            "thresholdPoints": settings.pain_worse_points,
        },
    )


def favourable_response_gaps(
    trend: CrpTrend,
    pain: Sequence[Measurement],
    t0_day: date,
    crp_count: int,
    settings: RuleSettings,
) -> tuple[list[Remark], list[Remark]]:
    """What is missing, and which criterion is unmet, for advise-against.

    Beyond the letter of clinical-rules.md, the latest CRP must be on or after T0: a fall
    seen only in pre-treatment values says nothing about the response to treatment.
    """
    since = f"since {(t0_day).isoformat()} (treatment start)"
    lookback = t0_day.toordinal() - settings.data_lookback_days
    window_start = date.fromordinal(lookback).isoformat()
    missing: list[Remark] = []
    unmet: list[Remark] = []
    latest, baseline = trend.latest, trend.baseline
    if crp_count == 0 or latest is None:
        missing.append(
            Remark(
                "crp-none", f"No CRP result from {window_start} on.", "no CRP since treatment start"
            )
        )
    elif crp_count == 1:
        missing.append(
            Remark(
                "crp-single",
                f"Only one CRP result ({fmt(latest.value)} mg/L on "
                f"{latest.when.day.isoformat()}): no trend.",
                "only one CRP result",
            )
        )
    elif latest.when.day < t0_day:
        missing.append(
            Remark(
                "crp-pre-treatment-only",
                f"Only pre-treatment CRP results (before {t0_day.isoformat()}).",
                "only pre-treatment CRP",
            )
        )
    elif not trend.usable:
        base = baseline.when.day.isoformat() if baseline is not None else "none"
        missing.append(
            Remark(
                "crp-none-after-baseline",
                f"No CRP result taken after the baseline value ({base}).",
                "no CRP after the baseline",
            )
        )
    if not pain:
        missing.append(
            Remark(
                "pain-none", f"No pain score (0-10) {since}.", "no pain score since treatment start"
            )
        )
    if trend.usable and latest is not None and latest.when.day >= t0_day:
        fall = trend.fall_pct
        fell_enough = fall is not None and fall >= settings.plateau_min_fall_pct
        normal = latest.value < settings.crp_normal_mg_l
        if not (fell_enough or normal):
            fell = "not computable" if fall is None else f"{fmt(fall)}%"
            unmet.append(
                Remark(
                    "crp-not-falling",
                    f"CRP has not fallen {fmt(settings.plateau_min_fall_pct)}% from baseline "
                    f"(fall: {fell}) and is not below {fmt(settings.crp_normal_mg_l)} mg/L "
                    f"(latest {fmt(latest.value)} mg/L).",
                    f"CRP not yet down {fmt(settings.plateau_min_fall_pct)}%",
                )
            )
    if pain:
        series = sorted(pain, key=sort_key)
        first, last = series[0], series[-1]
        if last.value > first.value:
            unmet.append(
                Remark(
                    "pain-not-improving",
                    f"Pain is not decreasing: latest {fmt(last.value)}/10 is above the first score "
                    f"{since} ({fmt(first.value)}/10).",
                    "pain not improving",
                )
            )
    return missing, unmet


def _name(c: ConditionFact) -> str:
    for code in c.codes:
        if code.display:
            return f"{code.display} ({code.code})"
    return c.codes[0].code if c.codes else c.reference
