"""One hook invocation, from a parsed body to a CDS Hooks response body.

The path is the one architecture.md draws: validate the envelope, find the orders in
question, gather the patient's data, map it, decide, render. Only the first three
stages can refuse a request; after that every failure is a bug, not a client error.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from msgspec import UNSET

from cds_service.cards import CardContext, render_response
from cds_service.datasources import OPTIONAL_KEYS, keys_feeding
from cds_service.engine import Assessment, assess
from cds_service.errors import ApiError
from cds_service.fhir.prefetch import DataUnavailable, gather
from cds_service.runtime import Runtime
from cds_service.unrecognised import codes_not_recognised, orders_not_recognised
from cds_service.validation import FieldError
from fhir_mappers.conditions import map_conditions
from fhir_mappers.medications import map_antibiotic_orders
from fhir_mappers.model import ConditionFact, DataIssue, Measurement, PatientData
from fhir_mappers.observations import map_observations
from fhir_mappers.orders import OrdersResult, map_orders
from fhir_mappers.patients import map_birth_date
from fhir_mappers.prior_imaging import map_prior_imaging
from fhir_mappers.procedures import map_spine_surgery
from fhir_mappers.wire import ObservationBytes

SUBJECT_FIELDS = ("subject", "patient")


@dataclass
class Outcome:
    """What one invocation produced: the response body and what the audit needs."""

    response: dict[str, Any]
    assessment: Assessment | None = None
    orders_in_question: int = 0
    data_sources: Mapping[str, str] = field(default_factory=dict)
    fhir_ms: float | None = None
    # non-fatal facts about the data, e.g. paging cut off or a prefetch value re-fetched
    data_notes: tuple[dict[str, str], ...] = ()
    # orders and codes sent that the service did not recognise (cds_service.unrecognised)
    unrecognised: Mapping[str, Any] = field(default_factory=dict)
    # spine imaging orders it recognised but could not read (not a valid R4
    # ServiceRequest), when no other spine order was read: why no card came
    orders_not_read: tuple[DataIssue, ...] = ()

    @property
    def decision(self) -> str:
        """The recommendation code, or "not-applicable" when no spine order was in question."""
        return self.assessment.recommendation.value if self.assessment else "not-applicable"


def _belongs_to(resource: Mapping[str, Any], patient_id: str) -> bool:
    """False unless the resource's subject (or patient) references this patient.

    Never trust prefetch: a subject that names another patient, or that names someone
    only by identifier or display (which cannot be checked against ``patientId``), makes
    the resource someone else's as far as this decision goes. A resource with no such
    field at all came from a query scoped to this patient and is kept.
    """
    for name in SUBJECT_FIELDS:
        if name not in resource:
            continue
        ref = resource[name]
        reference = ref.get("reference") if isinstance(ref, dict) else None
        return isinstance(reference, str) and _refers_to(reference, patient_id)
    return True


def _refers_to(reference: str, patient_id: str) -> bool:
    """Whether a reference (relative or absolute) names ``Patient/<patient_id>``."""
    return reference == f"Patient/{patient_id}" or reference.endswith(f"/Patient/{patient_id}")


def _own_resources(resources: Iterable[Any], patient_id: str, issues: list[DataIssue]) -> list[Any]:
    kept = []
    # ``_belongs_to`` for a typed Observation, inline (hundreds per call): a present
    # subject (or patient) is an object whose reference, if any, is a string (the typed
    # decode refused others); the reference strings are made once, not per resource.
    exact = f"Patient/{patient_id}"
    tail = f"/Patient/{patient_id}"
    for resource in resources:
        if type(resource) is ObservationBytes:
            typed = resource.typed
            ref = typed.subject
            if ref is UNSET:
                ref = typed.patient
            if ref is UNSET:
                kept.append(resource)
                continue
            reference = ref.reference
            if reference is not UNSET and (reference == exact or reference.endswith(tail)):
                kept.append(resource)
                continue
            resource = resource.as_dict()
        if isinstance(resource, dict) and not _belongs_to(resource, patient_id):
            rtype = resource.get("resourceType", "Resource")
            issues.append(
                DataIssue(
                    f"{rtype}/{resource.get('id', '?')}",
                    "its subject is not a reference to this patient: ignored",
                    plain="not linked to this patient",
                )
            )
            continue
        kept.append(resource)
    return kept


class _ConditionsRead(NamedTuple):
    kept: list[Any]  # the resources of this patient
    foreign: list[DataIssue]  # those of another, said
    conditions: tuple[ConditionFact, ...]
    issues: tuple[DataIssue, ...]


class _MeasurementsRead(NamedTuple):
    kept: list[Any]
    foreign: list[DataIssue]
    measurements: tuple[Measurement, ...]
    issues: tuple[DataIssue, ...]
    unread: list[Any]  # Observations of a known code the mapper could not read


_CONDITION_KEYS = keys_feeding("conditions")
_MEASUREMENT_KEYS = keys_feeding("measurements")


def _read_conditions(
    lists: tuple[list[Any], ...], patient_id: str, runtime: Runtime
) -> _ConditionsRead:
    foreign: list[DataIssue] = []
    kept = _own_resources((r for found in lists for r in found), patient_id, foreign)
    conditions, issues = map_conditions(kept, runtime.value_sets)
    return _ConditionsRead(kept, foreign, conditions, issues)


def _read_measurements(
    lists: tuple[list[Any], ...], patient_id: str, runtime: Runtime
) -> _MeasurementsRead:
    foreign: list[DataIssue] = []
    kept = _own_resources((r for found in lists for r in found), patient_id, foreign)
    unread: list[Any] = []
    measurements, issues = map_observations(
        kept, runtime.value_sets, runtime.mapping, unread=unread
    )
    return _MeasurementsRead(kept, foreign, measurements, issues, unread)


def _lists_of(resources: Mapping[str, list[Any]], keys: tuple[str, ...]) -> tuple[list[Any], ...]:
    return tuple(resources.get(key, []) for key in keys)


def _same_lists(a: tuple[list[Any], ...], b: tuple[list[Any], ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class _EarlyReads:
    """The Conditions and the Observations, read as soon as all their keys are in.

    Fetched data arrives one query after another (many FHIR servers answer one at a
    time; the Observations, sent first, come first). ``gather`` calls this in a fetch
    thread, when no other call is computing, with the keys known so far: the
    Observations can then be mapped while the last, short queries are still on their way
    (about a millisecond of the call's own work off its critical path, measured). A read
    made early is used only if the call gathered exactly those lists (the same objects):
    anything refetched, split again or failed is read again here, in the call's thread.
    """

    def __init__(self, runtime: Runtime, patient_id: str) -> None:
        self._runtime = runtime
        self._patient_id = patient_id
        self._conditions: tuple[tuple[list[Any], ...], _ConditionsRead] | None = None
        self._measurements: tuple[tuple[list[Any], ...], _MeasurementsRead] | None = None

    def __call__(self, ready: Mapping[str, list[Any]]) -> None:
        if self._measurements is None and all(k in ready for k in _MEASUREMENT_KEYS):
            lists = _lists_of(ready, _MEASUREMENT_KEYS)
            self._measurements = lists, _read_measurements(lists, self._patient_id, self._runtime)
        if self._conditions is None and all(k in ready for k in _CONDITION_KEYS):
            lists = _lists_of(ready, _CONDITION_KEYS)
            self._conditions = lists, _read_conditions(lists, self._patient_id, self._runtime)

    def conditions_of(self, resources: Mapping[str, list[Any]]) -> _ConditionsRead:
        lists = _lists_of(resources, _CONDITION_KEYS)
        early = self._conditions
        if early is not None and _same_lists(early[0], lists):
            return early[1]
        return _read_conditions(lists, self._patient_id, self._runtime)

    def measurements_of(self, resources: Mapping[str, list[Any]]) -> _MeasurementsRead:
        lists = _lists_of(resources, _MEASUREMENT_KEYS)
        early = self._measurements
        if early is not None and _same_lists(early[0], lists):
            return early[1]
        return _read_measurements(lists, self._patient_id, self._runtime)


def _check_selections(context: dict[str, Any]) -> None:
    """Each selection must name an order in draftOrders (CDS Hooks order-select)."""
    present = set()
    for entry in context["draftOrders"].get("entry", []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            present.add(f"{resource['resourceType']}/{resource['id']}")
    missing = [
        FieldError(f"$.context.selections[{i}]", f"{ref!r} is not an order in context.draftOrders")
        for i, ref in enumerate(context["selections"])
        if ref not in present
    ]
    if missing:
        raise ApiError(
            400, "invalid_request", "selections must name orders in draftOrders", missing
        )


def _names_another_patient(order: Mapping[str, Any], patient_id: str) -> bool:
    """True when the order's subject is a reference to a Patient other than this one. A
    draft order comes from the EHR's ordering session for the patient in context, so a
    subject it does not name by reference (an identifier, a display, a bundle-local
    ``urn:uuid``) is taken as that patient's, unlike a prefetched resource."""
    subject = order.get("subject")
    ref = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(ref, str) or not (ref.startswith("Patient/") or "/Patient/" in ref):
        return False
    return not _refers_to(ref, patient_id)


def _for_this_patient(found: OrdersResult, patient_id: str) -> OrdersResult:
    """The orders whose subject is the patient in context; any other is not read, and the
    audit says why: advice (and a delete suggestion) about another patient's order would
    be given on this patient's data."""
    mine = tuple(o for o in found.orders if not _names_another_patient(o.resource, patient_id))
    if len(mine) == len(found.orders):
        return found
    kept = {o.reference for o in mine}
    others = tuple(
        DataIssue(o.reference, "the order's subject is not the patient in context.patientId")
        for o in found.orders
        if o.reference not in kept
    )
    return OrdersResult(orders=mine, issues=found.issues + others)


def handle_hook(
    runtime: Runtime, service_id: str, body: dict[str, Any], trend_base_url: str = ""
) -> Outcome:
    """Decide and render for a body the web layer has validated against the hook's
    schema; raises ApiError for 400 (selections naming no draft order) and 412.
    ``trend_base_url`` is where the cards' trend-app links point ("" gives no link)."""
    service = runtime.discovery.services[service_id]
    context = body["context"]
    selections: list[str] | None = None
    if service.declaration.selections:
        _check_selections(context)
        selections = list(context["selections"])

    orders = _for_this_patient(
        map_orders(context["draftOrders"], selections, runtime.value_sets), context["patientId"]
    )
    unknown_orders = orders_not_recognised(context["draftOrders"], selections, runtime.value_sets)
    unrecognised: dict[str, Any] = {"orders": unknown_orders} if unknown_orders else {}
    if not orders.orders:
        return Outcome(
            response={"cards": []}, unrecognised=unrecognised, orders_not_read=orders.issues
        )

    patient_id: str = context["patientId"]
    early = _EarlyReads(runtime, patient_id)
    started = time.monotonic()
    try:
        gathered = gather(
            service,
            body,
            runtime.fhir_client,
            runtime.fhir_client.settings,
            started,
            OPTIONAL_KEYS,
            on_ready=early,
        )
    except DataUnavailable as exc:
        raise ApiError(
            412,
            "data_unavailable",
            "the patient's data needed for this decision could not be obtained from prefetch "
            "or from fhirServer",
            extra={"missing": [{"key": p.key, "reason": p.reason} for p in exc.problems]},
        ) from None

    fhir_ms = (
        (time.monotonic() - started) * 1000 if "fetched" in gathered.sources.values() else None
    )

    conditions_read = early.conditions_of(gathered.resources)
    measurements_read = early.measurements_of(gathered.resources)
    foreign: list[DataIssue] = conditions_read.foreign + measurements_read.foreign

    def own(feeds: str) -> list[Any]:
        return _own_resources(
            (r for key in keys_feeding(feeds) for r in gathered.resources.get(key, [])),
            patient_id,
            foreign,
        )

    conditions, condition_issues = conditions_read.conditions, conditions_read.issues
    measurements, observation_issues = measurements_read.measurements, measurements_read.issues
    unrecognised.update(
        codes_not_recognised(
            conditions_read.kept,
            measurements_read.kept,
            runtime.value_sets,
            unread_observations=measurements_read.unread,
        )
    )
    antibiotics, antibiotic_issues = map_antibiotic_orders(own("antibiotics"), runtime.antibiotics)
    birth_date, patient_issues = map_birth_date(own("patient"), patient_id)
    surgery, surgery_issues = map_spine_surgery(own("procedures"), runtime.value_sets)
    studies, study_issues = map_prior_imaging(own("imaging"), runtime.value_sets)
    data = PatientData(
        conditions=conditions,
        measurements=measurements,
        antibiotics=antibiotics,
        issues=orders.issues
        + tuple(foreign)
        + condition_issues
        + observation_issues
        + antibiotic_issues
        + patient_issues
        + surgery_issues
        + study_issues,
        cut_off=frozenset(n.key for n in gathered.notes if n.cut_off),
        unavailable=frozenset(k for k, v in gathered.sources.items() if v == "unavailable"),
        birth_date=birth_date,
        spine_surgery=surgery,
        prior_studies=studies,
    )
    assessment = assess(orders.orders, data, runtime.rules, datetime.now(UTC))
    card_context = CardContext(
        patient_id=patient_id,
        encounter_id=context.get("encounterId"),
        override_reasons=runtime.override_reasons,
        trend_base_url=trend_base_url,
        rating=runtime.settings.appropriateness_rating,
        value_sets=runtime.value_sets,
        replace_with_delete_create=runtime.settings.replace_with_delete_create,
    )
    return Outcome(
        response=render_response(assessment, card_context),
        assessment=assessment,
        orders_in_question=len(orders.orders),
        data_sources=dict(gathered.sources),
        fhir_ms=fhir_ms,
        data_notes=tuple({"key": n.key, "reason": n.reason} for n in gathered.notes),
        unrecognised=unrecognised,
    )
