"""The card's words the trend app shows beside the chart, as plain text.

The app keeps no wording of its own for a decision: the card's link (``trend_link``)
carries these, made by the cards' own phrase functions, so that the app and the card
say the same thing.
"""

from __future__ import annotations

from typing import Any

from cds_service.cards.detail import advise_against_line
from cds_service.cards.episode_line import t0_phrase
from cds_service.cards.phrasebook import phrase
from cds_service.cards.safe_text import unquote
from cds_service.engine.assessment import Assessment


def card_words(a: Assessment, summary: str) -> dict[str, Any]:
    """``reason``: the card's summary as plain text (the card's markdown escapes record
    text; the app shows text, never markup); ``ruleShorts``: each fired rule's short
    phrase (``phrasebook.phrase``), in the order of ``rulesFired``; ``t0Text``: where T0
    came from (``episode_line.t0_phrase``: "treatment started 2026-11-05 (first
    antibiotic order: cefazolin)"), when there is a T0."""
    # an advise-against card's rule line is its detail's opening state: its short phrase
    # says "improving", which the card withholds at the Yoon levels or over a normal CRP
    words: dict[str, Any] = {
        "reason": unquote(summary),
        "ruleShorts": [
            unquote(
                advise_against_line(a).removesuffix(".")
                if f.rule_id == "advise-against"
                else phrase(f).short
            )
            for f in a.rules_fired
        ],
    }
    if a.episode is not None and a.episode.t0 is not None:
        words["t0Text"] = unquote(t0_phrase(a))
    return words
