"""The PAMA appropriateness rating of each order (Argonaut's extensions): what a card
says of the study ordered, as system actions, and the rated copy of a draft that a
suggestion changes. Split from ``actions.py`` along the data flow: this module rates the
orders; ``actions.py`` builds the suggestions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds_service.cards import text
from cds_service.cards.context import CardContext
from cds_service.cards.result import prune
from cds_service.engine.assessment import Assessment, Recommendation
from fhir_mappers.model import ImagingOrder

PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_QCDSM = "http://fhir.org/argonaut/Extension/pama-rating-qcdsm-consulted"
PAMA_CONSULT_ID = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
PAMA_URLS = frozenset({PAMA_RATING, PAMA_QCDSM, PAMA_CONSULT_ID})
RATINGS = {
    Recommendation.ADVISE_AGAINST: "not-appropriate",
    Recommendation.SUPPORT: "appropriate",
    Recommendation.SUPPORT_URGENT: "appropriate",
}


def rating_actions(a: Assessment, ctx: CardContext, card_id: str) -> list[dict[str, Any]]:
    """`update` actions carrying the Argonaut PAMA rating on each draft ServiceRequest."""
    rating = RATINGS.get(a.recommendation)
    if rating is None:
        return []
    return [
        {
            "type": "update",
            "description": text.rating_description(r, ctx.service_label),
            "resource": rated_resource(o, r, ctx.qcdsm_name, card_id),
        }
        for o in a.orders
        # an order read in part (not valid R4) is never written back: its rating would
        # echo what could not be validated
        # nor is one without an id: no update can name it
        if o.valid and o.identified and (rating != "not-appropriate" or o.reference in a.covering)
        for r in (_order_rating(a, o, rating),)
        if r is not None
    ]


def _order_rating(a: Assessment, order: ImagingOrder, rating: str) -> str | None:
    """On a support or urgent card the rating goes by whether the study can answer the
    card's question (engine/study.py): one that cannot is not-appropriate; one the engine
    leaves unrated (``NextSteps.unrated_orders``) gets none."""
    if rating == "not-appropriate":
        return rating
    if order.reference in a.next_steps.unrated_orders:
        return None
    return "not-appropriate" if order.reference in a.study_gaps else rating


def rated_resource(order: ImagingOrder, rating: str, qcdsm: str, card_id: str) -> dict[str, Any]:
    """The whole draft with the PAMA extensions replaced (other extensions kept)."""
    # prune copies as it goes (new dicts and lists all through): no deep copy first
    resource = prune(order.resource)
    if not isinstance(resource, dict):
        resource = {}
    resource.setdefault("resourceType", "ServiceRequest")
    present = resource.get("extension")
    kept = [
        e
        for e in (present if isinstance(present, list) else [])  # a malformed one is not kept
        if not (isinstance(e, Mapping) and e.get("url") in PAMA_URLS)
    ]
    resource["extension"] = [
        *kept,
        {
            "url": PAMA_RATING,
            "valueCodeableConcept": {"coding": [{"system": PAMA_SYSTEM, "code": rating}]},
        },
        {"url": PAMA_QCDSM, "valueString": qcdsm},
        {"url": PAMA_CONSULT_ID, "valueUri": f"urn:uuid:{card_id}"},
    ]
    return resource
