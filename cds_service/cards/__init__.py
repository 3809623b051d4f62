"""Cards: what a clinician reads, and what an EHR or an auditor processes.

``render_response`` turns an Assessment into the CDS Hooks response; ``CardContext``
carries what it needs besides (the patient, the override reasons the runtime read at
startup). The modules follow the card: ``summary``, ``detail`` (with ``trend_lines``),
``result`` (the machine-readable extension), ``actions`` (suggestions), ``ratings`` (the
PAMA rating of each order), ``identity`` (the uuid), ``overrides.json`` (data). The
engine returns codes and numbers, its judgements included; these modules compose a card
from them and hold no words of their own (``tests/test_layering.py``). The words are the
phrase modules': ``phrasebook`` turns findings and remarks into sentences (the remarks'
words in ``remark_phrases``, ``imaging_phrases``, ``level_phrases`` and
``completeness_phrases``), ``summary_phrases`` and ``trend_phrases`` word the summary and
the trend lines, ``text`` holds evidence statements, fixed lines and the suggestions'
labels, ``left_out`` and ``episode_line`` their lines, ``words`` the helpers for numbers,
names and days: docs/architecture.md lists where each kind lives.
"""

from __future__ import annotations

from cds_service.cards.context import CardContext, OverrideReason, load_override_reasons
from cds_service.cards.identity import card_uuid
from cds_service.cards.render import ASSESSMENT_KEY, render_card, render_response

__all__ = [
    "ASSESSMENT_KEY",
    "CardContext",
    "OverrideReason",
    "card_uuid",
    "load_override_reasons",
    "render_card",
    "render_response",
]
