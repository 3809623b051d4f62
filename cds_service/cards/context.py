"""What the renderer needs besides the Assessment, handed in by the caller.

The override reasons are data (``overrides.json``, which a site may replace); the
runtime reads them once at startup and passes them in, so rendering does no I/O. The
trend link's base URL depends on the request (in development mode): the web layer works
it out and passes it in, so rendering reads no per-request state of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cds_service.cards import text
from fhir_mappers.valuesets import ValueSets


@dataclass(frozen=True)
class OverrideReason:
    system: str
    code: str
    display: str
    applies_to: frozenset[str]
    # offered only when the assessment carries one of these note codes (e.g. a finding
    # known at diagnosis); empty: whenever the recommendation matches
    only_when: frozenset[str] = frozenset()

    def fits(self, recommendation: str, note_codes: frozenset[str]) -> bool:
        """Whether a card of this recommendation, with these notes, offers the reason."""
        if recommendation not in self.applies_to:
            return False
        return not self.only_when or bool(self.only_when & note_codes)


def load_override_reasons() -> tuple[OverrideReason, ...]:
    """The override reasons in overrides.json (package data); read once by the caller."""
    raw = resources.files(__package__).joinpath("overrides.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(raw)
    return tuple(
        OverrideReason(
            data["system"],
            r["code"],
            r["display"],
            frozenset(r["appliesTo"]),
            frozenset(r.get("onlyWhen", ())),
        )
        for r in data["reasons"]
    )


@dataclass(frozen=True)
class CardContext:
    """What the renderer needs besides the Assessment (no web framework, no files)."""

    patient_id: str
    service_label: str = text.SERVICE_NAME
    qcdsm_name: str = text.QCDSM_NAME
    encounter_id: str | None = None
    override_reasons: tuple[OverrideReason, ...] = ()
    # The service's base URL for the trend app's link (trend_link.base_url_for, worked out
    # by the hook route per request); "" puts no link on the card.
    trend_base_url: str = ""
    # The Argonaut PAMA appropriateness rating in systemActions (setting
    # appropriateness_rating): CMS's AUC program it was made for is paused and its
    # regulation rescinded, so a site may turn it off; the sandbox's imaging tab reads it.
    rating: bool = True
    # the imaging codes in force, for the code of the study a card offers instead of one
    # that cannot answer its question (None: no replacement is offered)
    value_sets: ValueSets | None = None
    # the EHR applies delete and create suggestions: a replacement is a delete and a
    # create, not an update (setting replace_with_delete_create)
    replace_with_delete_create: bool = False
