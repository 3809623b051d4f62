"""Turning one invocation into an audit record (no tokens; the patient id as configured).

The audit answers "what did the service say, to whom, on what data, how fast" for
every invocation, refusals included, so that a pilot can be reviewed afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cds_service.errors import ApiError
from cds_service.invocation import Outcome
from cds_service.stores.audit import AuditRecord

log = logging.getLogger("cds_service.audit")


def _request_facts(body: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """hookInstance and patientId from a body that may be invalid (never trusted blindly)."""
    if not isinstance(body, Mapping):
        return "-", None
    hook_instance = body.get("hookInstance")
    context = body.get("context")
    patient = context.get("patientId") if isinstance(context, Mapping) else None
    return (
        hook_instance if isinstance(hook_instance, str) and len(hook_instance) <= 64 else "-",
        patient if isinstance(patient, str) and 0 < len(patient) <= 64 else None,
    )


def record_for_outcome(
    *,
    outcome: Outcome,
    body: Mapping[str, Any],
    service_id: str,
    hook: str,
    received_at: datetime,
    latency_ms: float,
    shadow: bool,
    patient_key: Any,
) -> AuditRecord:
    hook_instance, patient_id = _request_facts(body)
    assessment = outcome.assessment
    decision = assessment.recommendation.value if assessment else "not-applicable"
    reason = None
    if assessment is None:
        reason = "no-spine-imaging-order"
    elif assessment.not_applicable_reason is not None:
        reason = assessment.not_applicable_reason.value
    counts: dict[str, int] = {"ordersInQuestion": outcome.orders_in_question}
    if assessment is not None:
        counts.update({k: int(v) for k, v in assessment.counts.items()})
    cards = outcome.response.get("cards", [])
    return AuditRecord(
        hook_instance=hook_instance,
        service_id=service_id,
        hook=hook,
        received_at=received_at,
        patient_key=patient_key(patient_id) if patient_id else None,
        decision=decision,
        reason=reason,
        rules_fired=tuple(f.rule_id for f in assessment.rules_fired) if assessment else (),
        counts=counts,
        data_sources=dict(outcome.data_sources),
        card_uuids=tuple(c["uuid"] for c in cards if "uuid" in c),
        status=200,
        latency_ms=latency_ms,
        fhir_ms=outcome.fhir_ms,
        shadow=shadow,
        detail=_detail(outcome),
    )


def _detail(outcome: Outcome) -> dict[str, Any]:
    detail: dict[str, Any] = outcome.assessment.to_dict() if outcome.assessment else {}
    if outcome.data_notes:
        detail["dataNotes"] = list(outcome.data_notes)
    return detail


def record_for_error(
    *,
    error: ApiError,
    body: Mapping[str, Any] | None,
    service_id: str,
    hook: str,
    received_at: datetime,
    latency_ms: float,
    shadow: bool,
    patient_key: Any,
) -> AuditRecord:
    hook_instance, patient_id = _request_facts(body)
    detail: dict[str, Any] = {"message": error.message}
    if error.details:
        detail["details"] = [d.to_dict() for d in error.details]
    if "missing" in error.extra:
        detail["missing"] = error.extra["missing"]
    return AuditRecord(
        hook_instance=hook_instance,
        service_id=service_id,
        hook=hook,
        received_at=received_at,
        patient_key=patient_key(patient_id) if patient_id else None,
        decision="error",
        reason=error.error,
        rules_fired=(),
        counts={},
        data_sources={},
        card_uuids=(),
        status=error.status,
        latency_ms=latency_ms,
        fhir_ms=None,
        shadow=shadow,
        detail=detail,
    )
