"""The rules of clinical-rules.md as small pure functions.

Each red-flag rule returns a RuleFinding (it fired, with the data it used) or None.
Percentages are rounded to 6 decimals before comparison so that float noise never
turns an exact 25 % fall into 24.999999 %; displayed figures are rounded separately.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_mappers.model import ConditionCategory, ConditionFact, Measurement, SpineSurgery

from .assessment import (
    FACTS,
    RULE_COMPLICATION,
    RULE_MARKERS,
    RULE_MECHANICAL,
    RULE_NEURO,
    RULE_UNCERTAIN_DX,
    Episode,
    Recommendation,
    Remark,
    RuleFinding,
)
from .episode import (
    RELAPSE_STATUSES,
    UNCERTAIN_VERIFICATION,
    cause_unconfirmed,
    counts_now,
    is_active,
    is_valid,
)
from .findings import (
    FINDING_CATEGORIES,
    clinical_label,
    condition_facts,
    drainage_after,
    ended_facts,
    is_abscess,
    latest_start,
)
from .limits import sort_key, within_normal_range
from .records import condition_to_dict, figure
from .thresholds import PCT_DIGITS, RuleSettings


def pct_change(start: float, end: float) -> float | None:
    """Signed percent change from ``start`` to ``end``; None when start is not positive.
    A change too large for a float (a CRP of 1e308 after 61) is the largest one, so that
    it still compares as a rise and its JSON is a number, never null (an attack suite)."""
    if start <= 0:
        return None
    pct = (end - start) / start * 100.0
    if not math.isfinite(pct):
        pct = math.copysign(sys.float_info.max, pct)
    return round(pct, 6)


def day_of(m: Measurement, t0_day: date) -> int:
    return (m.when.day - t0_day).days


@dataclass(frozen=True)
class CrpTrend:
    """Baseline, latest and lowest-earlier CRP (mg/L) of the series used."""

    baseline: Measurement | None
    latest: Measurement | None
    lowest_earlier: Measurement | None
    change_pct: float | None  # latest vs baseline, signed (a fall is negative)
    rise_pct: float | None  # latest vs the lowest earlier since T0, from the baseline on

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
    # A rise is "after an initial decline" (clinical-rules.md): the lowest earlier value is
    # looked for from the baseline on. CRP often climbs for the first days of treatment; a
    # value from before that peak is no decline, and a fall from the peak is no rise.
    since = baseline.when.instant if baseline is not None else None
    earlier = [
        m
        for m in series
        if m.when.day >= t0_day
        and m.when.instant < latest.when.instant
        and (since is None or m.when.instant >= since)
    ]
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
    A month or a year counts only when all of it lies in the window (``latest_start``).

    A finding recorded as a recurrence or relapse is never known at diagnosis: it
    resolved and came back, and its onset is still the first one's (an outside
    clinician's review: a cauda equina syndrome so recorded read "known since diagnosis:
    compare the neurologic exam", and an epidural abscess so recorded read "no new red
    flag recorded" beside advice against imaging). When it came back the record does not
    say; missing a red flag is the worse error (the service's own reading, to be
    confirmed by the clinical reviewers).
    """
    if c.clinical_status in RELAPSE_STATUSES:
        return False
    latest = latest_start(c)
    return cutoff is not None and latest is not None and latest <= cutoff


def known_findings(
    conditions: Sequence[ConditionFact], cutoff: date | None
) -> tuple[ConditionFact, ...]:
    """Deficits and complications found with the infection: named, never "new"."""
    return tuple(
        c
        for category in FINDING_CATEGORIES
        for c in _findings(conditions, category)
        if is_known_at_diagnosis(c, cutoff)
    )


def resolved_findings(
    conditions: Sequence[ConditionFact], cutoff: date | None, t0_day: date | None
) -> Remark | None:
    """Deficits and complications now recorded resolved, inactive or in remission (each
    by its own status, ``ended_facts``): no red flag (only active Conditions count), but
    named, with when they began and ended, so a card never reads "no red flag recorded"
    over a cauda equina syndrome of day 10 marked resolved on day 20 (an outside clinical
    review), nor drops one known at diagnosis (clinical-rules.md: "a finding known at
    diagnosis is never dropped"; the rules are silent on resolved ones)."""
    found = sorted(
        (
            c
            for c in conditions
            if c.category in FINDING_CATEGORIES and is_valid(c) and not is_active(c)
        ),
        key=lambda c: c.reference,
    )
    if not found:
        return None
    facts = []
    for c in found:
        fact = condition_facts(c, t0_day)
        if c.start is not None and is_known_at_diagnosis(c, cutoff):
            fact["atStart"] = True  # said "present at diagnosis" even when after T0
        facts.append({**fact, **ended_facts(c, t0_day)})
    return Remark("resolved-finding", {"conditions": facts})


def new_deficits(conditions: Sequence[ConditionFact], cutoff: date | None) -> list[ConditionFact]:
    """The neurologic deficits dated after the diagnosis window (the neuro red flag's)."""
    return _conditions_since(conditions, ConditionCategory.NEURO_DEFICIT, cutoff)


def _conditions_since(
    conditions: Sequence[ConditionFact], category: ConditionCategory, cutoff: date | None
) -> list[ConditionFact]:
    """The findings of a category that are new: dated after the diagnosis window."""
    return [c for c in _findings(conditions, category) if not is_known_at_diagnosis(c, cutoff)]


def _found(
    rule_id: str,
    recommendation: Recommendation,
    found: Sequence[ConditionFact],
    t0_day: date | None,
    **facts: Any,
) -> RuleFinding:
    """A finding naming the Conditions found, each with when it was found; ``facts``
    adds what only its words need."""
    return RuleFinding(
        rule_id=rule_id,
        recommendation=recommendation,
        data={
            "conditions": [condition_to_dict(c) for c in found],
            FACTS: {"found": [condition_facts(c, t0_day) for c in found], **facts},
        },
    )


def neuro_rule(
    deficits: Sequence[ConditionFact], t0_day: date | None, eval_day: date
) -> RuleFinding | None:
    """The neuro red flag over the new deficits (``new_deficits``). The order's day goes
    with it, so a card can say how old the deficit is: "new paraplegia (day 4)" read on day
    30 did not tell an untreated emergency from a documented one (an outside review)."""
    if not deficits:
        return None
    facts = {}
    if t0_day is not None:
        facts["orderDay"] = (eval_day - t0_day).days
    return _found(RULE_NEURO, Recommendation.SUPPORT_URGENT, deficits, t0_day, **facts)


def complication_rule(
    conditions: Sequence[ConditionFact],
    t0_day: date | None,
    cutoff: date | None,
    surgeries: Sequence[SpineSurgery] = (),
) -> RuleFinding | None:
    """A new complication. An abscess found on treatment has next steps of its own
    (drainage, Park 2016), unless a drainage is recorded on or after it: then
    ``drainage`` names it, and the card does not advise draining a drained abscess."""
    found = _conditions_since(conditions, ConditionCategory.COMPLICATION, cutoff)
    if not found:
        return None
    abscesses = [c for c in found if is_abscess(c)]
    facts: dict[str, Any] = {"abscess": bool(abscesses)}
    if (drainage := drainage_after(abscesses, surgeries, t0_day)) is not None:
        facts["drainage"] = drainage
    return _found(RULE_COMPLICATION, Recommendation.SUPPORT, found, t0_day, **facts)


def mechanical_rule(
    conditions: Sequence[ConditionFact], t0_day: date | None, cutoff: date | None
) -> RuleFinding | None:
    """A new collapse, fracture, instability or kyphosis: supported, but the question is
    alignment and stability (standing radiographs, CT), not the soft tissue
    (clinical-rules.md, "Imaging", 2026-12-06)."""
    found = _conditions_since(conditions, ConditionCategory.MECHANICAL, cutoff)
    if not found:
        return None
    return _found(RULE_MECHANICAL, Recommendation.SUPPORT, found, t0_day)


TUMOUR_WORDS = ("metasta", "cancer", "neoplasm")


def reads_as_tumour(c: ConditionFact) -> bool:
    """A mimic whose clinical name (its first letter lowered: "Metastasis") names a
    tumour; a condition known only by its code is matched on the code as it is."""
    label = clinical_label(c)
    text = label[:1].lower() + label[1:] if label else (c.codes[0].code if c.codes else "")
    return any(word in text for word in TUMOUR_WORDS)


def uncertain_dx_rule(episode: Episode, conditions: Sequence[ConditionFact]) -> RuleFinding | None:
    """Provisional/differential/unconfirmed NVO, unconfirmed M46.4x, or an active mimic.

    Said as what the record shows, never "diagnosis unclear" as a fact (clinical-rules.md,
    "What a card should say", 2026-12-06): an unconfirmed diagnosis with the biopsy hint,
    a mimic with why imaging may still be needed (``tumour``: the cancer itself).
    """
    c = episode.condition
    facts: dict[str, Any] = {"episode": condition_facts(c, None)}
    if c.verification_status in UNCERTAIN_VERIFICATION:
        facts["unconfirmedAs"] = c.verification_status
    elif cause_unconfirmed(c):
        facts["causeUnconfirmed"] = True
    mimics = sorted(
        (m for m in conditions if m.category is ConditionCategory.MIMIC and counts_now(m)),
        key=lambda m: m.reference,
    )
    if mimics:
        facts["mimics"] = [condition_facts(m, None) for m in mimics]
        facts["tumour"] = any(reads_as_tumour(m) for m in mimics)
    if len(facts) == 1:
        return None
    data: dict[str, Any] = {"episode": condition_to_dict(c)}
    if mimics:
        data["mimics"] = [condition_to_dict(m) for m in mimics]
    data[FACTS] = facts
    return RuleFinding(rule_id=RULE_UNCERTAIN_DX, recommendation=Recommendation.SUPPORT, data=data)


def markers_rule(
    trend: CrpTrend, t0_day: date, settings: RuleSettings, baseline_known: bool = True
) -> RuleFinding | None:
    """CRP plateau at >= 28 days, or a > 20 % rise after day 14 over the lowest earlier value.

    No plateau without a known baseline (``baseline_known``: a CRP search cut off before
    the baseline window): a clinician reviewer saw "fell less than 25%: 130→110 mg/L"
    judged from the first value read where the baseline, on a page not read, was 300 (the
    card then lists the cut-off CRP as missing). A rise over the lowest value read stands:
    an unread lower one would make it larger.

    Neither counts while the latest CRP is within the normal range (clinical-rules.md,
    revised 2026-11-28): 3 -> 4 mg/L is not a rise, and a CRP that stays normal is not
    a plateau; nor is 12 -> <10 mg/L, a value reported below the normal limit.
    """
    if not trend.usable or trend.baseline is None or trend.latest is None:
        return None
    latest, baseline, lowest = trend.latest, trend.baseline, trend.lowest_earlier
    if within_normal_range(latest.value, latest.comparator, settings.crp_normal_mg_l):
        return None
    day = day_of(latest, t0_day)
    data: dict[str, Any] = {
        "baseline": figure(baseline, t0_day),
        "latest": figure(latest, t0_day),
        "latestDay": day,
        "normalLimitMgL": settings.crp_normal_mg_l,
    }
    fall = trend.fall_pct
    if fall is not None:
        data["fallPct"] = round(fall, PCT_DIGITS)
    plateau = (
        baseline_known
        and day >= settings.plateau_after_days
        and fall is not None
        and fall < settings.plateau_min_fall_pct
    )
    if plateau:
        data["plateau"] = {
            "afterDays": settings.plateau_after_days,
            "minFallPct": settings.plateau_min_fall_pct,
        }
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
            data["rise"]["risePct"] = round(trend.rise_pct, PCT_DIGITS)
    if not (plateau or rise):
        return None
    return RuleFinding(rule_id=RULE_MARKERS, recommendation=Recommendation.SUPPORT, data=data)
