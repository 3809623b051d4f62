"""Assessment -> CDS Hooks response: one card per decision, suggestions, ratings.

One card per decision, not per rule: order-sign with several spine orders gets one
coherent answer. The parts of a card are made beside this module: the summary, the
detail, the machine-readable result, the suggestions and ratings, the identity.
"""

from __future__ import annotations

import copy
from typing import Any

from cds_service.cards import text
from cds_service.cards.actions import build_suggestions
from cds_service.cards.context import CardContext
from cds_service.cards.detail import detail
from cds_service.cards.identity import card_uuid
from cds_service.cards.ratings import rating_actions
from cds_service.cards.result import machine_result
from cds_service.cards.safe_text import clean_card
from cds_service.cards.summary import summary
from cds_service.cards.trend_words import card_words
from cds_service.engine.assessment import Assessment, Recommendation
from cds_service.trend_link import trend_link

ASSESSMENT_KEY = "spine-cds-assessment"
INDICATORS = {
    Recommendation.ADVISE_AGAINST: "warning",
    Recommendation.SUPPORT_URGENT: "critical",
    Recommendation.SUPPORT: "info",
    Recommendation.INSUFFICIENT_DATA: "info",
}


def render_response(assessment: Assessment, ctx: CardContext) -> dict[str, Any]:
    """The CDS Hooks response body; ``{"cards": []}`` when the service does not apply."""
    if not assessment.applicable:
        return {"cards": []}
    card_id = card_uuid(assessment)
    card = render_card(assessment, ctx, card_id)
    response: dict[str, Any] = {"cards": [card]}
    actions = rating_actions(assessment, ctx, card_id) if ctx.rating else []
    if actions:
        response["systemActions"] = actions
        # The CDS Hooks sandbox's PAMA tab reads only this pre-2.0 place.
        response["extension"] = {"systemActions": _copy(actions)}
    return response


def _copy(value: Any) -> Any:
    """A deep copy of JSON (dicts, lists, strings, numbers), as ``copy.deepcopy`` makes
    it without its bookkeeping; anything else is left to ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def render_card(a: Assessment, ctx: CardContext, card_id: str) -> dict[str, Any]:
    """The card, cleaned in one place (``safe_text.clean_card``): no control or bidi
    character in any of its text, whichever phrase put it there."""
    card: dict[str, Any] = {
        "uuid": card_id,
        "summary": summary(a),
        "indicator": INDICATORS[a.recommendation],
        "detail": detail(a),
        "source": {"label": text.SOURCE_LABEL, "url": text.SOURCE_URL},
    }
    suggestions = build_suggestions(a, ctx, card_id)
    if suggestions:
        card["suggestions"] = suggestions
        # several suggestions act on different resources (remove the imaging draft, order
        # CRP and ESR): a card that asks for both lets the clinician take both ("any"; a
        # clinician reviewer found "at-most-one" let an EHR that enforces it take only one)
        card["selectionBehavior"] = "any" if len(suggestions) > 1 else "at-most-one"
    notes = frozenset(r.code for r in (*a.notes, *a.missing, *a.unmet))
    reasons = [
        {"system": r.system, "code": r.code, "display": r.display}
        for r in ctx.override_reasons
        if r.fits(a.recommendation.value, notes)
    ]
    if reasons:
        card["overrideReasons"] = reasons
    card["extension"] = {ASSESSMENT_KEY: machine_result(a)}
    if ctx.trend_base_url:
        words = card_words(a, card["summary"])
        link = trend_link(
            card["extension"][ASSESSMENT_KEY], ctx.patient_id, a.settings, words, ctx.trend_base_url
        )
        card["links"] = [link]
    return clean_card(card)
