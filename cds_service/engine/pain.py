"""The pain rule of clinical-rules.md: worse pain, and whether a falling CRP makes it a
mechanical question. Apart from ``rules`` as it reads the CRP trend's latest value too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from fhir_mappers.model import Measurement

from .assessment import FACTS, RULE_PAIN, Recommendation, RuleFinding
from .limits import sort_key
from .records import figure
from .thresholds import RuleSettings


def pain_rule(
    pain: Sequence[Measurement],
    t0_day: date,
    settings: RuleSettings,
    crp_falls: bool = False,
    latest_crp: Measurement | None = None,
) -> RuleFinding | None:
    """Latest pain >= 2 points above the lowest since T0.

    ``crp_falls``: the CRP keeps falling (``study.crp_keeps_falling``), so worse pain
    reads as a mechanical question ("think mechanical: upright radiographs or CT");
    otherwise it points to failure or an abscess, a question for MRI with gadolinium.

    A CRP that fell, but was last taken before the day the pain rose (``latest_crp``),
    does not show that it "keeps falling" while the pain is worse: an outside clinician
    read "while CRP falls: think mechanical" from a CRP eight days older than the worse
    pain. The mechanical reading is then not made, and ``crpBeforeRise`` holds the CRP's
    day for the card (the service's own reading, to be confirmed by the clinical
    reviewers). The pain rose with the first score of the last run of worse scores: one
    that fell back in between makes a later rise a new one (a re-check found a CRP of day
    20 read as after a rise of day 10 that had settled by day 24, then come again)."""
    if not pain:
        return None
    series = sorted(pain, key=sort_key)
    latest = series[-1]
    lowest = min(series, key=lambda m: (m.value, sort_key(m)))
    rise = round(latest.value - lowest.value, 6)
    if rise < settings.pain_worse_points:
        return None
    facts: dict[str, Any] = {"crpFalls": crp_falls}
    if crp_falls and latest_crp is not None:
        rose = _risen_since(series, lowest, settings.pain_worse_points)
        if latest_crp.when.day < rose.when.day:
            facts = {"crpFalls": False, "crpBeforeRise": figure(latest_crp, t0_day)}
            facts["painRose"] = figure(rose, t0_day)
    return RuleFinding(
        rule_id=RULE_PAIN,
        recommendation=Recommendation.SUPPORT,
        data={
            "lowest": figure(lowest, t0_day),
            "latest": figure(latest, t0_day),
            "risePoints": rise,
            "thresholdPoints": settings.pain_worse_points,
            FACTS: facts,
        },
    )


def _risen_since(series: Sequence[Measurement], lowest: Measurement, points: float) -> Measurement:
    """The first score of the run, up to the latest, of scores ``points`` or more above
    ``lowest``: when the worse pain began this time."""
    rose = series[-1]
    for m in reversed(series[series.index(lowest) + 1 :]):
        if round(m.value - lowest.value, 6) < points:
            break
        rose = m
    return rose
