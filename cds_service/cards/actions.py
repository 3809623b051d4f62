"""Suggestions on the card and the appropriateness rating on each draft order."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import replace
from typing import Any

from cds_service.cards import text, words
from cds_service.cards.context import CardContext
from cds_service.cards.identity import (
    ADD_STUDY,
    MAKE_STAT,
    ORDER_MARKERS,
    REMOVE_IMAGING,
    REPLACE_STUDY,
    suggestion_uuid,
)
from cds_service.cards.ratings import rated_resource
from cds_service.cards.result import prune
from cds_service.cards.words import upper_first
from cds_service.engine.assessment import Assessment, Recommendation, Study
from fhir_mappers.model import Coding, ImagingOrder, MeasurementKind
from fhir_mappers.valuesets import CPT, LOINC, ValueSets, canonical_system

# Lab orders suggested instead of imaging: their LOINC codes, from clinical-rules.md (their
# text: text.LAB_ORDER_NAMES).
MARKER_ORDERS = {MeasurementKind.CRP: "1988-5", MeasurementKind.ESR: "4537-7"}


def _order_markers(a: Assessment, ctx: CardContext, card_id: str) -> dict[str, Any]:
    """The suggestion that orders the lab tests the engine asks for (``marker_orders``)."""
    actions = _marker_orders(a, ctx)
    kinds = [k.value for k in a.next_steps.marker_orders]
    return _suggestion(text.order_markers(kinds), card_id, ORDER_MARKERS, actions)


def _marker_orders(a: Assessment, ctx: CardContext) -> list[dict[str, Any]]:
    actions = []
    for kind in a.next_steps.marker_orders:
        code = MARKER_ORDERS[kind]
        label = text.LAB_ORDER_NAMES[code]
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
        actions.append(
            {"type": "create", "description": text.order_study(label), "resource": resource}
        )
    return actions


def _covering(a: Assessment) -> list[ImagingOrder]:
    """The orders advise-against removes: those imaging the infected level that have an
    id for a delete to name."""
    covering = set(a.covering)
    return [o for o in a.orders if o.reference in covering and o.identified]


def _order_words(a: Assessment, o: ImagingOrder, kinds: Counter[tuple[str, str]]) -> str:
    """ "spine MRI"; with more than one spine order in question, which one: "thoracic
    spine MRI" (and its contrast when that alone tells two apart: ``kinds`` counts the
    orders of each region and modality), so a clinician knows which order a removal
    deletes (an outside review: a cervical and a thoracic MRI)."""
    if len(a.orders) < 2:
        return words.order_words(o.modality.value)
    contrast = o.contrast if kinds[(o.region, o.modality.value)] > 1 else None
    return words.order_words(o.modality.value, o.region, contrast)


def _kinds(a: Assessment) -> Counter[tuple[str, str]]:
    """Counted once per card: naming each order against all the others grew with the
    square of their number (an attack review: 16,000 drafts held a worker a minute)."""
    return Counter((o.region, o.modality.value) for o in a.orders)


def _delete_orders(a: Assessment) -> list[dict[str, Any]]:
    # order-sign may carry re-signed orders that are no longer drafts: "draft" only when
    # the order says it is one.
    kinds = _kinds(a)
    return [
        {
            "type": "delete",
            "description": text.remove_order(
                _order_words(a, o, kinds), draft=o.resource.get("status") == "draft"
            ),
            "resourceId": o.reference,
        }
        for o in _covering(a)
    ]


def _remove_label(a: Assessment) -> str:
    """ "Remove the spine MRI order"; naming the orders when others stay: "Remove the
    thoracic spine MRI order"."""
    covering = _covering(a)
    if len(a.orders) < 2:
        return text.remove_order(words.order_words(words.modality_words(covering)))
    kinds = _kinds(a)
    named = words.joined(list(dict.fromkeys(_order_words(a, o, kinds) for o in covering)))
    return text.remove_order(named, count=len(covering))


def build_suggestions(a: Assessment, ctx: CardContext, card_id: str) -> list[dict[str, Any]]:
    """Remove the order when advising against it; order markers only when the CRP is stale.

    An advise-against card always rests on a recent CRP, so it offers removal alone;
    an insufficient-data card asks for CRP/ESR only when the latest CRP is missing or
    older than the recency limit (never for a CRP drawn today).
    """
    markers = a.next_steps.marker_orders  # which, and when: the engine's (next_steps.py)
    if a.recommendation is Recommendation.ADVISE_AGAINST:
        deletes = _delete_orders(a)
        # the card itself asks for a repeat: the order is one click away (an outside
        # review; clinical-rules.md: advise-against "order CRP/ESR instead")
        asked = [_order_markers(a, ctx, card_id)] if markers else []
        if not deletes:  # no draft with an id to delete
            return asked
        remove = _suggestion(_remove_label(a), card_id, REMOVE_IMAGING, deletes)
        # beside markers at the levels that predicted failure the card does not reassure:
        # the removal is offered, not recommended (an outside clinician's review)
        remove["isRecommended"] = a.next_steps.removal_recommended
        return [remove, *asked]
    replacement = (
        _replacement(a, ctx, card_id) or _make_stat(a, ctx, card_id) or _added(a, ctx, card_id)
    )
    if replacement is not None:
        return [replacement]
    return [_order_markers(a, ctx, card_id)] if markers else []


# --- Imaging (clinical-rules.md, "Imaging", 2026-12-06): the study that answers ------


def study_coding(study: Study, order: ImagingOrder, value_sets: ValueSets) -> Coding | None:
    """A code for ``study`` from the imaging value set: in the order's own code system
    when it has one, else CPT, else any; verified entries first."""
    matches = [
        e
        for e in value_sets.imaging.values()
        if e.modality is study.modality
        and e.region == study.region
        and e.contrast == study.contrast
    ]
    systems = [canonical_system(c.system) for c in order.codes] + [CPT]
    matches.sort(
        key=lambda e: (
            systems.index(e.system) if e.system in systems else len(systems),
            not e.verified,
            e.code,
        )
    )
    if not matches:
        return None
    return Coding(matches[0].system, matches[0].code, matches[0].display)


def _replacement(a: Assessment, ctx: CardContext, card_id: str) -> dict[str, Any] | None:
    """One suggestion that replaces the order the engine names (``replaced_order``: one
    that cannot answer the card's question) with the study that can: an ``update`` of
    the draft's code (the CDS Hooks sandbox applies updates to the order on screen), the
    draft rated appropriate; where the EHR applies deletes and creates (setting), a
    delete of the draft and a create instead."""
    study = a.answering_study
    order = next((o for o in a.orders if o.reference == a.next_steps.replaced_order), None)
    if study is None or order is None or ctx.value_sets is None:
        return None
    return _instead(a, ctx, card_id, order, study, REPLACE_STUDY)


def _instead(
    a: Assessment, ctx: CardContext, card_id: str, order: ImagingOrder, study: Study, kind: str
) -> dict[str, Any] | None:
    """The suggestion that changes the draft ``order`` into ``study`` (its code from the
    imaging value set), STAT without its timing on an urgent card; None when the value
    set has no code for the study."""
    assert ctx.value_sets is not None
    coding = study_coding(study, order, ctx.value_sets)
    if coding is None:
        return None
    named = words.study_words(study.modality.value, study.region, study.contrast)
    label = named
    resource = copy.deepcopy(dict(order.resource))
    if a.next_steps.emergency_mri:
        # the card asks for an emergency MRI now (clinical-rules.md, "What a card should
        # say"): the study replaces the draft as a STAT order, without the draft's timing
        # (not for a deficit seen on a study of the last days: no emergency MRI for it)
        label = text.emergency_stat(named)
        _now(resource)
    resource["code"] = _study_code(coding, named)
    replaced = replace(order, resource=resource, codes=(coding,))
    actions = _changed(
        a, order, replaced, text.order_study(label), text.change_draft(label), ctx, card_id
    )
    return _suggestion(text.order_study(label, instead=True), card_id, kind, actions)


def _added(a: Assessment, ctx: CardContext, card_id: str) -> dict[str, Any] | None:
    """The study that answers the card's question as a new order beside the drafts, each
    ordered for another reason (``NextSteps.study_added``: a CT for a fall is the
    clinician's to keep): a create, rated appropriate, STAT on a card that asks for an
    emergency MRI now, its reason the infection; None when the value set has no code."""
    study = a.answering_study
    beside = next((o for o in a.orders if o.valid), None)
    if not a.next_steps.study_added or study is None or beside is None:
        return None
    if ctx.value_sets is None:
        return None
    coding = study_coding(study, beside, ctx.value_sets)
    if coding is None:
        return None
    named = words.study_words(study.modality.value, study.region, study.contrast)
    label = text.emergency_stat(named) if a.next_steps.emergency_mri else named
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": _study_code(coding, named),
    }
    for element in ("subject", "encounter"):  # the draft's patient and encounter
        if element in beside.resource:
            resource[element] = copy.deepcopy(beside.resource[element])
    if a.next_steps.emergency_mri:
        resource["priority"] = "stat"
    rated = rated_resource(
        replace(beside, resource=resource), "appropriate", ctx.qcdsm_name, card_id
    )
    _with_reason(rated, a)
    created = {"type": "create", "description": text.order_study(label), "resource": rated}
    return _suggestion(text.order_study(label), card_id, ADD_STUDY, [created])


def _study_code(coding: Coding, named: str) -> dict[str, Any]:
    """The ``code`` of an order for the study ``named``: its one coding, its words."""
    return {
        "coding": [
            prune({"system": coding.system, "code": coding.code, "display": coding.display})
        ],
        "text": upper_first(named),
    }


def _now(resource: dict[str, Any]) -> None:
    resource["priority"] = "stat"
    for timing in ("occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"):
        resource.pop(timing, None)


def _make_stat(a: Assessment, ctx: CardContext, card_id: str) -> dict[str, Any] | None:
    """The one suggestion that makes STAT the drafts the engine names (``stat_orders``: on
    a card that asks for an emergency MRI now, every draft that answers the question but
    is ordered routine or only "urgent"), one change per draft: accepting it makes the
    whole study STAT (the three CPT parts of a whole-spine MRI, not only the first)."""
    steps = a.next_steps
    stat = set(steps.stat_orders)
    orders = [o for o in (*a.orders, *steps.other_answering) if o.reference in stat]
    if not orders:
        return None
    study = a.answering_study
    if steps.stat_extended and study is not None and ctx.value_sets is not None:
        # the card asks for the whole spine; so does its one click (a clinician reader:
        # "make it STAT and extend it to the whole spine")
        extended = _instead(a, ctx, card_id, orders[0], study, MAKE_STAT)
        if extended is not None:
            return extended
    if len(orders) == 1:
        make, create, label = text.made_stat(words.order_words(orders[0].modality.value))
        actions = _stat_changed(a, orders[0], create, text.change_draft(label), ctx, card_id)
        return _suggestion(make, card_id, MAKE_STAT, actions)
    actions = []
    for o in orders:
        named = words.order_words(o.modality.value, o.region)
        _, create, _ = text.made_stat(named)
        actions += _stat_changed(a, o, create, text.make_draft_stat(named), ctx, card_id)
    named = words.joined(
        list(dict.fromkeys(words.order_words(o.modality.value, o.region) for o in orders))
    )
    make, _, _ = text.made_stat(named, count=len(orders))
    return _suggestion(make, card_id, MAKE_STAT, actions)


def _stat_changed(
    a: Assessment,
    order: ImagingOrder,
    created_words: str,
    description: str,
    ctx: CardContext,
    card_id: str,
) -> list[dict[str, Any]]:
    """The actions that make the draft ``order`` STAT, as it is, without its timing."""
    resource = copy.deepcopy(dict(order.resource))
    _now(resource)
    changed = replace(order, resource=resource)
    return _changed(a, order, changed, created_words, description, ctx, card_id)


def _suggestion(
    label: str, card_id: str, kind: str, actions: list[dict[str, Any]]
) -> dict[str, Any]:
    """A recommended suggestion, its uuid derived from the card's (``identity``)."""
    return {
        "label": label,
        "uuid": suggestion_uuid(card_id, kind),
        "isRecommended": True,
        "actions": actions,
    }


def _changed(
    a: Assessment,
    order: ImagingOrder,
    changed: ImagingOrder,
    created_words: str,
    described: str,
    ctx: CardContext,
    card_id: str,
) -> list[dict[str, Any]]:
    """The actions that turn the draft ``order`` into ``changed``, rated appropriate: an
    ``update`` of the draft described as ``described`` (the CDS Hooks sandbox applies
    updates to the order on screen), or where the EHR applies deletes and creates
    (setting), a delete of the draft and a create. A draft without a reason gets the
    infection as its reason (below)."""
    rated = rated_resource(changed, "appropriate", ctx.qcdsm_name, card_id)
    _with_reason(rated, a)
    if ctx.replace_with_delete_create:
        created = {k: v for k, v in rated.items() if k != "id"}
        return [
            {
                "type": "delete",
                "description": text.remove_order(
                    words.order_words(order.modality.value),
                    draft=order.resource.get("status") == "draft",
                ),
                "resourceId": order.reference,
            },
            {"type": "create", "description": created_words, "resource": created},
        ]
    return [
        {
            "type": "update",
            "description": described,
            "resource": rated,
        }
    ]


def _with_reason(resource: dict[str, Any], a: Assessment) -> None:
    """The infection the card is about, as the order's reason, when the draft gives none
    (``reasonCode`` absent or empty, no ``reasonReference``): the changed order is the
    card's own, and an imaging order carries its indication (PAMA rates by it). Its codes
    are the patient's own Condition's, as recorded. The CDS Hooks sandbox reads every
    update it applies as having a ``reasonCode`` list and failed on one without."""
    if resource.get("reasonCode") or resource.get("reasonReference") or a.episode is None:
        return
    condition = a.episode.condition
    codings = [
        prune({"system": c.system, "code": c.code, "display": c.display}) for c in condition.codes
    ]
    if not codings:
        return
    reason: dict[str, Any] = {"coding": codings}
    if condition.name:
        reason["text"] = upper_first(condition.name)
    resource["reasonCode"] = [reason]


# --- end of the imaging block ----------------------------------------------------------
