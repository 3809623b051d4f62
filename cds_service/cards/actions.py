"""Suggestions on the card and the appropriateness rating on each draft order."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from cds_service.cards.context import CardContext
from cds_service.cards.identity import _sub_uuid
from cds_service.cards.result import prune
from cds_service.cards.summary import _modality, _needs_markers, mechanical_only
from cds_service.engine.assessment import Assessment, Recommendation
from fhir_mappers.model import ImagingOrder, Modality

LOINC = "http://loinc.org"
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
# Lab orders suggested instead of imaging: (LOINC code, text), codes from clinical-rules.md.
MARKER_ORDERS = (
    ("1988-5", "C-reactive protein (CRP), serum or plasma"),
    ("4537-7", "Erythrocyte sedimentation rate (ESR), Westergren"),
)


def _marker_orders(a: Assessment, ctx: CardContext) -> list[dict[str, Any]]:
    actions = []
    for code, label in MARKER_ORDERS:
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "code": {"coding": [{"system": LOINC, "code": code}], "text": label},
            "subject": {"reference": f"Patient/{ctx.patient_id}"},
        }
        if ctx.encounter_id:
            resource["encounter"] = {"reference": f"Encounter/{ctx.encounter_id}"}
        if a.episode is not None and "#" not in a.episode.condition.reference:
            resource["reasonReference"] = [{"reference": a.episode.condition.reference}]
        actions.append({"type": "create", "description": f"Order {label}", "resource": resource})
    return actions


def _covering(a: Assessment) -> list[ImagingOrder]:
    """The orders advise-against is about: those imaging the infected level."""
    return [o for o in a.orders if o.reference in a.covering]


def _delete_orders(a: Assessment) -> list[dict[str, Any]]:
    return [
        {
            "type": "delete",
            "description": f"Remove the draft spine {o.modality.value} order",
            "resourceId": o.reference,
        }
        for o in _covering(a)
    ]


def build_suggestions(a: Assessment, ctx: CardContext, card_id: str) -> list[dict[str, Any]]:
    """Remove the order when advising against it; order markers only when the CRP is stale.

    An advise-against card always rests on a recent CRP, so it offers removal alone;
    an insufficient-data card asks for CRP/ESR only when the latest CRP is missing or
    older than the recency limit (never for a CRP drawn today).
    """
    rec = a.recommendation
    mod = _modality(_covering(a))
    if rec is Recommendation.ADVISE_AGAINST:
        return [
            {
                "label": f"Remove the spine {mod} order",
                "uuid": _sub_uuid(card_id, "remove-imaging"),
                "isRecommended": True,
                "actions": _delete_orders(a),
            }
        ]
    if _needs_markers(a):
        return [
            {
                "label": "Order CRP and ESR",
                "uuid": _sub_uuid(card_id, "order-markers"),
                "isRecommended": True,
                "actions": _marker_orders(a, ctx),
            }
        ]
    return []


def rating_actions(a: Assessment, ctx: CardContext, card_id: str) -> list[dict[str, Any]]:
    """`update` actions carrying the Argonaut PAMA rating on each draft ServiceRequest."""
    rating = RATINGS.get(a.recommendation)
    if rating is None:
        return []
    return [
        {
            "type": "update",
            "description": f"Appropriateness rating: {r} ({ctx.service_label})",
            "resource": rated_resource(o, r, ctx.qcdsm_name, card_id),
        }
        for o in a.orders
        if rating != "not-appropriate" or o.reference in a.covering
        for r in (_order_rating(a, o, rating),)
        if r is not None
    ]


def _order_rating(a: Assessment, order: ImagingOrder, rating: str) -> str | None:
    """A CT for a new neurologic deficit is rated not-appropriate: MRI is the study of
    choice (IDSA 2015), CT only when MRI cannot be done, which the clinician records
    with the override reason the card offers. For a mechanical flag alone the question
    is alignment and stability: a CT answers it; an MRI gets no rating (None)."""
    if mechanical_only(a) and order.reference in a.covering:
        return "appropriate" if order.modality is Modality.CT else None
    if a.recommendation is Recommendation.SUPPORT_URGENT and order.modality is Modality.CT:
        return "not-appropriate"
    if order.reference not in a.covering:
        return "not-appropriate"  # it cannot show the infected level (clinical-rules.md)
    return rating


def rated_resource(order: ImagingOrder, rating: str, qcdsm: str, card_id: str) -> dict[str, Any]:
    """The whole draft with the PAMA extensions replaced (other extensions kept)."""
    resource = prune(copy.deepcopy(dict(order.resource)))
    if not isinstance(resource, dict):
        resource = {}
    resource.setdefault("resourceType", "ServiceRequest")
    if "id" not in resource and "/" in order.reference:
        resource["id"] = order.reference.split("/", 1)[1]
    kept = [
        e
        for e in resource.get("extension", [])
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
