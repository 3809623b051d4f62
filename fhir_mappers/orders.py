"""draftOrders -> the spine MRI/CT orders the service is asked about.

order-select: only the ServiceRequests named in ``selections``; order-sign (selections
None): every ServiceRequest in draftOrders. Anything else in draftOrders (medication
orders, labs, brain imaging, the CDS Hooks sandbox's page-load order with
``code.coding: [{}]``) is simply not an order in question: no ImagingOrder, no error.

A draft lab order whose code is in the CRP or ESR value sets (the codes Observations are
read by) is kept apart as a ``LabDraft``, never an ImagingOrder: a card that would offer
to order that test does not order it twice (an outside clinician's review: "Order CRP
and ESR" beside a CRP already in the order set). It is never judged nor rated.

A spine order whose status says it is not being placed (``NOT_BEING_PLACED``: revoked,
entered-in-error, completed) is not in question either, and is listed in
``OrdersResult.not_placed`` with its status. order-sign may carry re-signed orders that
are no longer drafts (CDS Hooks order-sign 1.0, "Workflow"): active, on-hold and unknown
orders are still assessed.

Selection happens on the raw JSON; only a ServiceRequest whose code is in the spine
imaging value set is validated with the fhir.resources R4B model (one of the usual
shape by a typed conversion the model would pass: ``usual_r4``). One that fails (no
``intent``, an ``authoredOn`` without a time zone, an element R4 does not know) is
reported as a DataIssue and still read for what the rules use: code, status, priority,
reasons and date, each checked on its own. An EHR's order that is not quite R4 must not
silently cost the clinician the advice (an integration tester could not tell that
``{"cards": []}`` from "not applicable"). An order with a ``modifierExtension`` is the
exception: FHIR forbids reading it as if it had none, so it is reported and skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from fhir_mappers.model import (
    Coding,
    ConditionCategory,
    DataIssue,
    ImagingOrder,
    MeasurementKind,
    OrderReason,
    When,
)
from fhir_mappers.rawjson import (
    codings,
    describe_error,
    modifier_extensions,
    modifier_reason,
    reference,
)
from fhir_mappers.timeutil import parse_fhir_time
from fhir_mappers.usual_r4 import usual_r4
from fhir_mappers.valuesets import ImagingEntry, ObservationKind, ValueSets


@dataclass(frozen=True)
class LabDraft:
    """A CRP or ESR order in the order set: what it measures, and the resource (whose
    subject the caller checks, as for the spine orders)."""

    reference: str
    kind: MeasurementKind
    resource: dict[str, Any]


@dataclass(frozen=True)
class OrdersResult:
    """The spine imaging orders in question and what could not be read."""

    orders: tuple[ImagingOrder, ...]
    issues: tuple[DataIssue, ...]
    # spine orders left out for their status (NOT_BEING_PLACED): for the audit alone,
    # never the card's "not used" lines, since nothing in them was unreadable
    not_placed: tuple[DataIssue, ...] = ()
    # order-select: the spine drafts not selected, being placed (PatientData.other_drafts)
    others: tuple[ImagingOrder, ...] = ()
    # the CRP and ESR orders of the order set, selected or not, being placed
    labs: tuple[LabDraft, ...] = ()


# FHIR R4 request-status codes of an order that is not being placed, so no advice,
# rating or suggestion applies to it (hl7.org/fhir/R4/codesystem-request-status.html):
# revoked "no further activity should occur", entered-in-error "should be treated as if
# it never existed", completed "no further activity will occur". A review saw a revoked
# order get "Remove the ... order" and a not-appropriate rating. draft, active, on-hold
# (a re-signed order) and unknown are orders that may be placed: those are assessed.
NOT_BEING_PLACED = frozenset({"revoked", "entered-in-error", "completed"})


def map_orders(draft_orders: Any, selections: Sequence[str] | None, vs: ValueSets) -> OrdersResult:
    """Find the selected (order-select) or all (order-sign) spine MRI/CT ServiceRequests."""
    issues: list[DataIssue] = []
    resources = _bundle_resources(draft_orders, issues)
    wanted = None if selections is None else _selected(selections, issues)
    seen: set[str] = set()
    orders: list[ImagingOrder] = []
    not_placed: list[DataIssue] = []
    others: list[ImagingOrder] = []
    labs: list[LabDraft] = []

    for index, resource in resources:
        ref = reference(resource, index)
        seen.add(ref)
        if resource.get("resourceType") != "ServiceRequest":
            continue
        matched = [
            (coding, entry)
            for coding in codings(resource.get("code"))
            if (entry := _entry(vs, coding))
        ]
        status = resource.get("status")
        placed = not (isinstance(status, str) and status in NOT_BEING_PLACED)
        if not matched:
            # a lab draft whose status is no request-status (a number) is not read as ordered
            sure = status is None or isinstance(status, str)
            lab = _lab_kind(resource, vs) if placed and sure else None
            if lab is not None:
                labs.append(LabDraft(ref, lab, resource))
            continue
        if wanted is not None and ref not in wanted:
            # not in question: kept aside, its problems unsaid (another call judges it)
            other = _to_order(ref, resource, matched, [], vs) if placed else None
            if other is not None:
                others.append(other)
            continue
        if not placed:
            not_placed.append(
                DataIssue(
                    ref,
                    f"spine imaging order with status {status!r}: not an order being placed, "
                    "so not assessed",
                    status=status,
                )
            )
            continue
        order = _to_order(ref, resource, matched, issues, vs)
        if order is not None:
            orders.append(order)

    for missing in sorted((wanted or set()) - seen):
        issues.append(DataIssue(missing, "selected in the request but not found in draftOrders"))
    return OrdersResult(
        orders=tuple(orders),
        issues=tuple(issues),
        not_placed=tuple(not_placed),
        others=tuple(others),
        labs=tuple(labs),
    )


# The Observation kinds read as each marker: a drafted molar CRP measures the CRP too, so
# none is ordered beside it. Not a drafted hs-CRP: its result is used only when no
# standard CRP is on record, so beside one it would never count (a re-check: an hs-CRP
# draft kept the card from ordering the CRP the next decision needs).
LAB_KINDS = {
    ObservationKind.CRP: MeasurementKind.CRP,
    ObservationKind.CRP_MOLAR: MeasurementKind.CRP,
    ObservationKind.ESR: MeasurementKind.ESR,
}


def _lab_kind(resource: dict[str, Any], vs: ValueSets) -> MeasurementKind | None:
    """The marker a ServiceRequest orders, by the Observation value sets; None for any
    other order, or one with a modifierExtension (never read as if it had none)."""
    if modifier_extensions(resource) is not None:
        return None
    for coding in codings(resource.get("code")):
        entry = vs.observation_entry(coding.system, coding.code)
        if entry is not None and entry.kind in LAB_KINDS:
            return LAB_KINDS[entry.kind]
    return None


def _entry(vs: ValueSets, coding: Coding) -> ImagingEntry | None:
    return vs.imaging_entry(coding.system, coding.code)


def _to_order(
    ref: str,
    resource: dict[str, Any],
    matched: list[tuple[Coding, ImagingEntry]],
    issues: list[DataIssue],
    vs: ValueSets,
) -> ImagingOrder | None:
    modifiers = modifier_extensions(resource)
    if modifiers is not None:
        issues.append(DataIssue(ref, f"spine imaging order: {modifier_reason(modifiers)}"))
        return None
    valid = True
    try:
        if not usual_r4(resource):  # the usual shape is one the model accepts
            ServiceRequest.model_validate(resource)
    # AttributeError: fhir.resources' own, for a primitive extension ("_status") that is a
    # string of a JSON number: a malformed order, not a crash
    except (ValidationError, ValueError, TypeError, AttributeError) as exc:
        # An element the service does not read (or a missing one it does not need) must
        # not cost the clinician the advice: the order is read for what the rules use,
        # each read on its own (a date that cannot be read leaves the order undated).
        valid = False
        issues.append(
            DataIssue(
                ref,
                f"spine imaging order is not a valid R4 ServiceRequest ({describe_error(exc)}); "
                "read for its code, status, priority, reasons and date only",
                kept=True,
            )
        )

    # A verified code decides modality/region when the codings disagree (e.g. CPT + SNOMED).
    first = sorted(matched, key=lambda pair: not pair[1].verified)[0][1]
    attributes = {(entry.modality, entry.region, entry.contrast) for _, entry in matched}
    if len(attributes) > 1:
        issues.append(
            DataIssue(
                ref,
                f"codings disagree on modality/region/contrast; read as {first.code}",
                kept=True,
            )
        )

    authored: When | None = None
    raw_authored = resource.get("authoredOn")
    if raw_authored is not None:
        try:
            authored = parse_fhir_time(raw_authored)
        except ValueError as exc:
            issues.append(DataIssue(ref, f"authoredOn not read: {exc}", kept=True))

    priority = resource.get("priority")
    return ImagingOrder(
        reference=ref,
        modality=first.modality,
        region=first.region,
        contrast=first.contrast,
        codes=tuple(coding for coding, _ in matched),
        authored_on=authored,
        resource=resource,
        priority=priority if isinstance(priority, str) else None,
        reasons=_reasons(resource, vs),
        valid=valid,
    )


# A stated reason that is the infection itself or spinal pain: routine follow-up
# (clinical-rules.md, "Imaging", 2026-12-06). Any other reason is not.
ROUTINE_REASONS = frozenset(
    {
        ConditionCategory.NVO,
        ConditionCategory.NVO_UNSPECIFIED,
        ConditionCategory.NVO_OTHER_INFECTIVE,
        ConditionCategory.SPINAL_PAIN,
    }
)


def _reasons(resource: dict[str, Any], vs: ValueSets) -> tuple[OrderReason, ...]:
    """The order's reasonCode (classified by the conditions value set) and reasonReference
    (left for the engine to resolve against the Conditions)."""
    found: list[OrderReason] = []
    for concept in _list(resource.get("reasonCode")):
        if not isinstance(concept, dict):
            continue
        coded = codings(concept)
        entries = [e for c in coded if (e := vs.condition_entry(c.system, c.code))]
        text = concept.get("text") if isinstance(concept.get("text"), str) else None
        name = next((e.name for e in entries if e.name), None)
        name = name or next((c.display for c in coded if c.display), None) or text
        if name is None and not coded:
            continue  # an empty reason states nothing
        routine = any(e.category in ROUTINE_REASONS for e in entries)
        found.append(OrderReason(name=name, routine=routine, read=bool(entries)))
    for ref in _list(resource.get("reasonReference")):
        target = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(target, str) and "/" in target:
            short = "/".join(target.rstrip("/").split("/")[-2:])
            display = ref.get("display")
            found.append(
                OrderReason(
                    name=display if isinstance(display, str) else None,
                    routine=None,
                    reference=short,
                )
            )
    return tuple(found)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _bundle_resources(
    draft_orders: Any, issues: list[DataIssue]
) -> list[tuple[int, dict[str, Any]]]:
    """(position, resource) for each entry; tolerant of a missing Bundle.type and odd entries."""
    if draft_orders is None:
        return []
    if not isinstance(draft_orders, dict) or draft_orders.get("resourceType") != "Bundle":
        issues.append(DataIssue("draftOrders", "not a Bundle: no orders read"))
        return []
    entries = draft_orders.get("entry")
    if entries is None:
        return []
    if not isinstance(entries, list):
        issues.append(DataIssue("draftOrders", "Bundle.entry is not a list: no orders read"))
        return []
    found = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            found.append((index, resource))
        else:
            issues.append(
                DataIssue(f"draftOrders.entry[{index}]", "entry without a resource: skipped")
            )
    return found


def _selected(selections: Sequence[str], issues: list[DataIssue]) -> set[str]:
    """Selections as "Type/id"; a full URL is cut to its last two path segments."""
    wanted = set()
    for item in selections:
        if not isinstance(item, str) or item.count("/") < 1:
            issues.append(DataIssue("selections", f"not a 'Type/id' reference: {item!r}"))
            continue
        wanted.add("/".join(item.rstrip("/").split("/")[-2:]))
    return wanted
