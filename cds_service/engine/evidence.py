"""Which statements of the evidence a card cites, judged once from the Assessment (the
cards hold their words and sources: ``cards/text.py``, ``STATEMENTS``).

Each red flag cites the statement of its rule, with two exceptions (clinical-rules.md,
"What a card should say", 2026-12-06): a rise before the plateau day
(``plateau_after_days``, day 28) "cites what fits (a rise after an initial fall suggests a
complication or another source), not the 4-week recommendation"; an uncertain diagnosis
raised by a mimic beside a confirmed infection is cited for the other condition, not as an
unconfirmed infection. A card without a red flag cites its
recommendation's statement, unless what it waits for is a known deficit or a pending
rise, which the favourable-response statement does not fit. A rising ESR adds its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from .assessment import FACTS, Assessment, RuleFinding
from .thresholds import RuleSettings

MARKERS_RISE_EARLY = "markers-rise-early"
UNCERTAIN_DX_MIMIC = "uncertain-dx-mimic"
KNOWN_DEFICIT = "known-deficit"
ESR_RISING = "esr-rising"


def evidence_cited(a: Assessment) -> tuple[str, ...]:
    """The statement keys, in the order the card lists them, each once."""
    keys = [_flag_evidence(f, a.settings) for f in a.red_flags] or _gap_evidence(a)
    if any(n.code == ESR_RISING for n in a.notes):
        keys.append(ESR_RISING)
    return tuple(dict.fromkeys(keys))


def _flag_evidence(flag: RuleFinding, settings: RuleSettings) -> str:
    data = flag.data
    if flag.rule_id == "markers-not-responding" and "rise" in data and "plateau" not in data:
        if int(data.get("latestDay", 0)) < settings.plateau_after_days:
            return MARKERS_RISE_EARLY
    if flag.rule_id == "uncertain-dx":
        facts = data[FACTS]
        if "unconfirmedAs" not in facts and not facts.get("causeUnconfirmed"):
            return UNCERTAIN_DX_MIMIC
    return flag.rule_id


def _gap_evidence(a: Assessment) -> list[str]:
    codes: Sequence[str] = [r.code for r in a.missing]
    keys = []
    if KNOWN_DEFICIT in codes:
        keys.append(KNOWN_DEFICIT)
    if "crp-pending-rise" in codes:
        keys.append(MARKERS_RISE_EARLY)
    return keys or [a.recommendation.value]
