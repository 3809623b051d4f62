"""The draft orders and selections of a hook call checked for what the service must
name them by, before any data is read: each selection must name a draft order, each
spine order judged must be for the patient in context and have an id of its own, since
every suggestion and action names the order it changes by ``ResourceType/id``. A 400
names the field at fault (``$.context.draftOrders.entry[0].resource.id``) and what was
expected there, at most MAX_REPORTED_ERRORS problems (``validation.reported``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds_service.errors import ApiError
from cds_service.validation import MAX_REPORTED_ERRORS, FieldError, json_type, reported
from fhir_mappers.orders import OrdersResult
from fhir_mappers.rawjson import reference
from fhir_mappers.subjects import refers_to


def check_selections(context: dict[str, Any]) -> None:
    """Each selection must name an order in draftOrders (CDS Hooks order-select: "the
    FHIR id of the newly selected order(s)", in draftOrders). When one does not, what in
    draftOrders keeps it from being found comes first: no ``entry`` at all, or an entry
    whose resource has no id (an outside review was told only that ``selections[0]``
    names no order). The answer lists at most MAX_REPORTED_ERRORS problems, and how many
    more (``reported``): only those listed are made into errors."""
    entries = context["draftOrders"].get("entry") or []
    present = set()
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and _has_id(resource):
            present.add(f"{resource['resourceType']}/{resource['id']}")
    missing = [i for i, ref in enumerate(context["selections"]) if ref not in present]
    if not missing:
        return
    if entries:
        unnamed = [
            _no_id(i, resource, "context.selections names a draft order by ResourceType/id")
            for i, resource in _id_less(entries)
        ]
    else:
        sent = (
            "got an empty array"
            if "entry" in context["draftOrders"]
            else "required field is missing"
        )
        unnamed = [
            FieldError(
                "$.context.draftOrders.entry",
                f"{sent}: expected the draft orders, with those context.selections names",
            )
        ]
    listed = unnamed + [
        FieldError(
            f"$.context.selections[{i}]",
            f"{context['selections'][i]!r} is not an order in context.draftOrders",
        )
        for i in missing[:MAX_REPORTED_ERRORS]
    ]
    message = "selections must name orders in draftOrders"
    if unnamed:
        message += ", by their ids" if entries else ", which has none"
    raise _invalid(message, listed, len(unnamed) + len(missing))


def _has_id(resource: Mapping[str, Any]) -> bool:
    """Whether a draft order has an id a selection, a suggestion or an action can name."""
    ident = resource.get("id")
    return isinstance(ident, str) and bool(ident)


def _id_less(entries: list[Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """The entries whose resource has no id, by position."""
    return [
        (i, entry["resource"])
        for i, entry in enumerate(entries)
        if isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
        and not _has_id(entry["resource"])
    ]


def _no_id(index: int, resource: Mapping[str, Any], why: str) -> FieldError:
    """The problem of a draft order without an id, at its ``id``, saying what needs it."""
    sent = resource.get("id")
    found = (
        "required field is missing"
        if sent is None
        else "got an empty string"
        if sent == ""
        else f"got {json_type(sent)}"
    )
    return FieldError(
        f"$.context.draftOrders.entry[{index}].resource.id",
        f"{found}: expected the draft order's id, a non-empty string ({why})",
    )


def check_ids(orders: OrdersResult, draft_orders: Mapping[str, Any]) -> None:
    """400 when a spine order judged has no id, or shares its id with another draft
    order, spine or not: each suggestion and action names the order it changes by
    ``ResourceType/id`` (CDS Hooks: a ``delete`` by ``resourceId``, an ``update`` by the
    whole resource, id and all). Without an id, an order-sign card came with no
    suggestion and no rating and did not say why (an outside review). Under one id two
    orders got two conflicting ``update`` actions on it (an interoperability review),
    and a brain MRI under the spine MRI's id a ``delete`` that named both (a code
    review). Named at the entries' ids, the first two of each shared one."""
    if not orders.orders:
        return
    # the entries' references made as map_orders made the orders' (entry position and
    # all), so an id-less entry never matches another
    at: dict[str, list[int]] = {o.reference: [] for o in orders.orders}
    unnamed: list[FieldError] = []
    for i, entry in enumerate(draft_orders.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and (ref := reference(resource, i)) in at:
            at[ref].append(i)
            if not _has_id(resource):
                unnamed.append(_no_id(i, resource, _ACTED_ON))
    if unnamed:
        raise _invalid("spine imaging orders must have ids", unnamed, len(unnamed))
    shared = [ref for ref, entries in at.items() if len(entries) > 1]
    if not shared:
        return
    problems = [
        FieldError(
            f"$.context.draftOrders.entry[{at[ref][1]}].resource.id",
            f"{ref} is the id of more than one draft order ({_entries(at[ref])}): each draft "
            "order needs an id of its own, so that a suggestion to change or remove one "
            "names only that order",
        )
        for ref in shared[:MAX_REPORTED_ERRORS]
    ]
    raise _invalid("draft orders must have distinct ids", problems, len(shared))


def subject_problem(
    order: Mapping[str, Any], patient_id: str, server: str | None, bundle: Mapping[str, Any]
) -> tuple[str, str] | None:
    """Where and why the order's subject is not the patient in context (the field under
    the resource, and what was expected there), or None when it is. A draft
    order comes from the EHR's ordering session for that patient, so a subject with no
    reference (an identifier, a display) or none at all is taken as theirs. A reference
    must name this patient (``fhir_mappers.subjects``: ``Patient/<id>``, or under the
    call's fhirServer), or be a bundle-local ``urn:uuid`` that does not lead to another
    Patient of draftOrders. An integration review's re-check found ``patient/x``,
    ``Group/ward-7``, ``Device/x``, a leading space and a urn:uuid of another Patient
    entry all taken as this patient's."""
    subject = order.get("subject")
    if subject is None:
        return None
    if not isinstance(subject, dict):
        return "subject", f"got {json_type(subject)}: expected a Reference object"
    ref = subject.get("reference")
    if ref is None:
        return None
    if not isinstance(ref, str):
        return "subject.reference", f"got {json_type(ref)}: expected a string"
    if ref.startswith("urn:uuid:"):
        named = _bundle_entry(bundle, ref)
        if not isinstance(named, dict) or named.get("resourceType") != "Patient":
            return None
        if named.get("id") == patient_id:
            return None
    elif refers_to(ref, patient_id, server):
        return None
    return "subject.reference", (
        "names another patient than context.patientId: expected a reference to the patient "
        "in context (Patient/<context.patientId>"
        + (", or that under fhirServer" if server else "")
        + "), or no reference"
    )


def _bundle_entry(bundle: Mapping[str, Any], full_url: str) -> object:
    """The resource of draftOrders' entry whose ``fullUrl`` is ``full_url``, if any."""
    for entry in bundle.get("entry") or ():
        if isinstance(entry, dict) and entry.get("fullUrl") == full_url:
            return entry.get("resource")
    return None


def check_subjects(
    orders: OrdersResult, draft_orders: Mapping[str, Any], patient_id: str, server: str | None
) -> None:
    """400 when an order the service reads (a spine order judged, an unselected spine
    draft, a CRP or ESR draft) is for another patient than ``context.patientId``: the
    request contradicts itself, and advice, a delete or a STAT about someone else's order
    must not come from this patient's data. It was answered ``{"cards": []}`` with the
    reason only in the audit, which an EHR and the sandbox show as "all clear"; and an
    unselected draft of another patient was made STAT (an integration review and its
    re-check). Named at the subject (its reference); neither id is repeated."""
    read = {o.reference for o in (*orders.orders, *orders.others)}
    read |= {lab.reference for lab in orders.labs}
    problems = []
    for i, entry in enumerate(draft_orders.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or reference(resource, i) not in read:
            continue
        problem = subject_problem(resource, patient_id, server, draft_orders)
        if problem is not None:
            at, why = problem
            problems.append(FieldError(f"$.context.draftOrders.entry[{i}].resource.{at}", why))
    if problems:
        raise _invalid("an order of the order set is for another patient", problems, len(problems))


# why a spine order judged needs an id
_ACTED_ON = "the card's suggestions and the appropriateness rating name the order they change by it"


def _invalid(message: str, problems: list[FieldError], total: int) -> ApiError:
    """The 400 for draft orders or selections the service cannot act on: at most
    MAX_REPORTED_ERRORS of the ``total`` problems listed (``reported``)."""
    return ApiError(400, "invalid_request", message, reported(problems, total))


def _entries(indexes: list[int]) -> str:
    """ "entry[0], entry[3]": the first two."""
    return ", ".join(f"entry[{i}]" for i in indexes[:2])
