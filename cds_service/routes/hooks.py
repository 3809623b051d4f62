"""POST /cds-services/{id}: a hook invocation, with its audit record and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from cds_service.auditing import record_for_error, record_for_outcome
from cds_service.errors import ApiError
from cds_service.invocation import handle_hook
from cds_service.jsonbody import check_content_type, parse_json_object
from cds_service.jsonresponse import json_response
from cds_service.runtime import Runtime
from cds_service.stores.audit import AuditRecord

blueprint = Blueprint("hooks", __name__)
log = logging.getLogger("cds_service.hooks")


def _audit(runtime: Runtime, build: Callable[[], AuditRecord]) -> None:
    """The audit must never turn an answer into a 500: a failure is logged, not raised."""
    if not runtime.settings.audit_enabled:
        return
    try:
        runtime.stores.audit.record(build())
    except Exception as exc:
        log.error(
            "audit record failed hook_instance=%s error=%s",
            g.get("hook_instance", "-"),
            type(exc).__name__,
        )


@blueprint.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    runtime: Runtime = current_app.extensions["spine_cds"]
    runtime.require_service(service_id)
    runtime.authenticate("hook")
    service = runtime.discovery.services[service_id]
    received_at = datetime.now(UTC)
    started = time.perf_counter()
    shadow = runtime.settings.shadow_mode
    body: dict[str, Any] | None = None
    try:
        check_content_type(request.content_type)
        body = parse_json_object(request.get_data(cache=False), runtime.settings.max_json_depth)
        hook_instance = body.get("hookInstance")
        if isinstance(hook_instance, str) and len(hook_instance) <= 64:
            g.hook_instance = hook_instance
        outcome = handle_hook(runtime, service_id, body)
    except ApiError as exc:
        if exc.status == 412:
            for missing in exc.extra.get("missing", []):
                runtime.metrics.fhir_failures.labels(missing["key"]).inc()
        error_record = partial(
            record_for_error,
            error=exc,
            body=body,
            service_id=service_id,
            hook=service.hook,
            received_at=received_at,
            latency_ms=(time.perf_counter() - started) * 1000,
            shadow=shadow,
            patient_key=runtime.stores.patient_key,
        )
        _audit(runtime, error_record)
        raise

    decision = outcome.assessment.recommendation.value if outcome.assessment else "not-applicable"
    runtime.metrics.decisions.labels(service_id, decision).inc()
    if outcome.fhir_ms is not None:
        runtime.metrics.fhir_latency.observe(outcome.fhir_ms / 1000)
    outcome_record = partial(
        record_for_outcome,
        outcome=outcome,
        body=body,
        service_id=service_id,
        hook=service.hook,
        received_at=received_at,
        latency_ms=(time.perf_counter() - started) * 1000,
        shadow=shadow,
        patient_key=runtime.stores.patient_key,
    )
    _audit(runtime, outcome_record)
    if shadow:
        return json_response({"cards": []})  # silent pilot: decided and recorded, not shown
    return json_response(outcome.response)
