"""One hook invocation, from a body ``pipeline.py`` has read and checked against the
hook's schema to a CDS Hooks response body.

The path is the one architecture.md draws: find the orders in question, gather the
patient's data, map it, decide, render. Only the first two can refuse a request (400 for
selections that name no draft order or spine orders without ids of their own, from
``draft_checks.py``; 412 for data that cannot be had); after that every failure is a
bug, not a client error.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cds_service.cards import CardContext, render_response
from cds_service.datasources import OPTIONAL_KEYS, Feeds, keys_feeding
from cds_service.draft_checks import check_ids, check_selections, check_subjects
from cds_service.engine import Assessment, assess
from cds_service.engine.sources import PATIENT
from cds_service.errors import ApiError
from cds_service.fhir.prefetch import DataUnavailable, gather
from cds_service.patient_reads import EarlyReads, own_resources
from cds_service.runtime import Runtime
from cds_service.unrecognised import (
    codes_not_recognised,
    orders_not_recognised,
    reasons_not_recognised,
)
from fhir_mappers.medications import map_antibiotic_orders
from fhir_mappers.model import DataIssue, PatientData
from fhir_mappers.orders import map_orders
from fhir_mappers.patients import is_this_patient, map_birth_date
from fhir_mappers.prior_imaging import map_prior_imaging
from fhir_mappers.procedures import map_spine_surgery

log = logging.getLogger("cds_service.invocation")


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
    # spine imaging orders it recognised but did not read: for another patient, with a
    # modifierExtension (when no other spine order was read: why no card came), or not
    # being placed for their status (``fhir_mappers.orders.NOT_BEING_PLACED``, always)
    orders_not_read: tuple[DataIssue, ...] = ()

    @property
    def decision(self) -> str:
        """The recommendation code, or "not-applicable" when no spine order was in question."""
        return self.assessment.recommendation.value if self.assessment else "not-applicable"

    @property
    def no_card_reason(self) -> str | None:
        """Why no card was given, as a code (the audit records it, the request's log line
        says it): no spine order read, or the assessment's not-applicable reason."""
        if self.assessment is None:
            # a spine order sent but not readable is not the same as none
            return "spine-order-not-read" if self.orders_not_read else "no-spine-imaging-order"
        reason = self.assessment.not_applicable_reason
        return reason.value if reason is not None else None


def handle_hook(
    runtime: Runtime, service_id: str, body: dict[str, Any], trend_base_url: str = ""
) -> Outcome:
    """Decide and render for a body the web layer has validated against the hook's
    schema; raises ApiError for 400 (``draft_checks``) and 412.
    ``trend_base_url`` is where the cards' trend-app links point ("" gives no link)."""
    service = runtime.discovery.services[service_id]
    context = body["context"]
    selections: list[str] | None = None
    if service.declaration.selections:
        check_selections(context)
        selections = list(context["selections"])

    named_server = body.get("fhirServer")
    server = named_server if isinstance(named_server, str) else None  # whose ids these are
    orders = map_orders(context["draftOrders"], selections, runtime.value_sets)
    check_subjects(orders, context["draftOrders"], context["patientId"], server)
    check_ids(orders, context["draftOrders"])
    unknown_orders = orders_not_recognised(context["draftOrders"], selections, runtime.value_sets)
    unrecognised: dict[str, Any] = {"orders": unknown_orders} if unknown_orders else {}
    if not orders.orders:
        return Outcome(
            response={"cards": []},
            unrecognised=unrecognised,
            orders_not_read=orders.issues + orders.not_placed,
        )

    reasons = reasons_not_recognised((o.resource for o in orders.orders), runtime.value_sets)
    if reasons:
        unrecognised["reasons"] = reasons
    patient_id: str = context["patientId"]
    early = EarlyReads(runtime, patient_id, server)
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

    conditions_read = early.conditions.of(gathered.resources)
    measurements_read = early.measurements.of(gathered.resources)
    foreign: list[DataIssue] = conditions_read.foreign + measurements_read.foreign

    def own(feeds: Feeds) -> list[Any]:
        return own_resources(
            (r for key in keys_feeding(feeds) for r in gathered.resources.get(key, [])),
            patient_id,
            foreign,
            server,
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
    patients = own("patient")
    birth_date, patient_issues = map_birth_date(patients, patient_id)
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
        failed_in_part=frozenset(n.key for n in gathered.notes if n.failed),
        unavailable=frozenset(k for k, v in gathered.sources.items() if v == "unavailable")
        | _no_patient(patients, patient_id),
        birth_date=birth_date,
        spine_surgery=surgery,
        prior_studies=studies,
        other_drafts=orders.others,
        drafted_markers=frozenset(lab.kind for lab in orders.labs),  # this patient's
    )
    if foreign:
        _warn_foreign(foreign)
    assessment = assess(orders.orders, data, runtime.rules, runtime.now())
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
        orders_not_read=orders.not_placed,
    )


def _warn_foreign(foreign: list[DataIssue]) -> None:
    """Resources about another patient than ``context.patientId`` should never come: a
    prefetch template or a patient id mapping is wrong somewhere, and every call may be
    quietly answered "no active infection". Said in the log, by type and count only (no
    ids), so that it is seen before a pilot's report is."""
    kinds = Counter(issue.reference.split("/", 1)[0] for issue in foreign)
    log.warning(
        "resources about another patient ignored: %s; check the EHR's prefetch templates "
        "and patient ids",
        ", ".join(f"{kind} x{n}" for kind, n in sorted(kinds.items())),
    )


def _no_patient(resources: list[Any], patient_id: str) -> frozenset[str]:
    """``{"patient"}`` when no Patient of this request is among ``resources``: a key sent
    as ``null`` (the EHR's read found nothing), an empty Bundle, or another patient's
    record. The age is then as unknown as when the key could not be read, so the engine
    treats the two alike (``routine.scope_unread``: no advice against imaging). An
    attack review saw ``"patient": null`` give advice against imaging with the age
    unknown, where a Patient not read gave insufficient data."""
    found = any(is_this_patient(r, patient_id) for r in resources)
    return frozenset() if found else frozenset({PATIENT})
