"""POST /cds-services/{id}: a hook invocation, with its audit record and metrics.

The call itself goes through ``cds_service.pipeline``, as every caller's does; this
route adds what only HTTP has: authentication, the content type, the client's
fhirServer allowlist (admitted by the pipeline before anything is fetched), the audit,
the metrics and shadow mode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from flask import Blueprint, Response, g

from cds_service.auditing import AuditCall, hook_instance_of
from cds_service.auth import TrustedClient
from cds_service.errors import ApiError
from cds_service.invocation import Outcome
from cds_service.pipeline import HookCall
from cds_service.routes import entrance
from cds_service.routes.responses import json_response
from cds_service.routes.trend_app import card_links_base_url
from cds_service.runtime import Runtime
from cds_service.stores.audit import AuditRecord
from cds_service.validation import FieldError

blueprint = Blueprint("hooks", __name__)
log = logging.getLogger("cds_service.hooks")


def _audit(
    runtime: Runtime, build: Callable[[], AuditRecord], body: Mapping[str, Any] | None
) -> None:
    """Hand the call's record to the audit writer (stores/audit_queue.py), which stores
    it once the answer has gone. The audit must never turn an answer into a 500: a
    failure is logged, not raised."""
    if not runtime.settings.audit_enabled:
        return
    try:
        runtime.stores.audit.submit(build())
    except Exception as exc:
        log.error(
            "audit record failed hook_instance=%s error=%s",
            hook_instance_of(body) or "-",
            type(exc).__name__,
        )


def _check_fhir_server(client: TrustedClient, body: Mapping[str, Any]) -> None:
    """The EHR's token goes wherever fhirServer points: only to servers the client's
    entry in the trusted-clients file lists (when it lists any), never to a loopback or
    private address it does not list."""
    if "fhirServer" not in body:
        return
    server = body["fhirServer"]
    refusal = client.fhir_server_refusal(server) if isinstance(server, str) else "expected a string"
    if refusal is not None:
        raise ApiError(
            400,
            "invalid_request",
            "fhirServer is not a FHIR server this client is allowed to name",
            [FieldError("$.fhirServer", refusal)],
            misconfigured=True,  # the trusted-clients entry or the EHR's fhirServer: every call
        )


@blueprint.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    runtime = entrance.runtime()
    service = entrance.service(runtime, service_id)
    caller = entrance.authenticate(runtime, "hook", service_id)
    call = AuditCall(
        service_id=service_id,
        hook=service.hook,
        received_at=datetime.now(UTC),
        started=time.perf_counter(),
        shadow=runtime.settings.shadow_mode,
        patient_key=runtime.stores.patient_key,
        client=caller.iss if caller is not None else None,
    )
    hook_call = HookCall(runtime, service)
    client = caller.client if caller is not None else None
    admit = partial(_check_fhir_server, client) if client is not None else None
    # read before the turn, so no call waits on it; a client dripping its body still holds
    # this thread and the worker's one reading place (docs/deployment.md, "nginx in front")
    raw = entrance.body_bytes()
    with runtime.turns.turn():  # cds_service/turns.py
        return _answer(runtime, service_id, call, hook_call, raw, admit)


def _answer(
    runtime: Runtime,
    service_id: str,
    call: AuditCall,
    hook_call: HookCall,
    raw: bytes,
    admit: Callable[[Mapping[str, Any]], None] | None,
) -> Response:
    try:
        outcome = hook_call.run(raw, admit, card_links_base_url(runtime))
    except ApiError as exc:
        if exc.status == 412:
            for missing in exc.extra.get("missing", []):
                runtime.metrics.fhir_failures.labels(missing["key"]).inc()
        _audit(runtime, partial(call.record, hook_call.body, error=exc), hook_call.body)
        raise
    finally:  # the request's log lines name its hookInstance, a 500's too
        hook_instance = hook_instance_of(hook_call.body)
        if hook_instance is not None:
            g.hook_instance = hook_instance

    g.decision = decision_log_fields(outcome, shadow=call.shadow)
    runtime.metrics.decisions.labels(service_id, outcome.decision).inc()
    if outcome.fhir_ms is not None:
        runtime.metrics.fhir_latency.observe(outcome.fhir_ms / 1000)
    _audit(runtime, partial(call.record, hook_call.body, outcome=outcome), hook_call.body)
    if call.shadow:
        return json_response({"cards": []})  # silent pilot: decided and recorded, not shown
    return json_response(outcome.response)


def decision_log_fields(outcome: Outcome, shadow: bool = False) -> str:
    """What the request's log line says of the decision: its code, and for no card the
    reason code the audit records (``Outcome.no_card_reason``). An integrator's review: a
    200 with ``{"cards": []}`` logged only its status, so "the card never shows" could
    not be answered from the log, only from the audit database. Codes only: never a
    patient id or any of the patient's data.

    In shadow mode ``shadow=1`` follows: the decision was made and audited, but no card
    went to the clinician. Another review read ``decision=advise-against`` in a shadow
    pilot's log as advice shown, the question such a line is read for."""
    reason = outcome.no_card_reason
    fields = f" decision={outcome.decision}"
    if reason is not None:
        fields += f" reason={reason}"
    return f"{fields} shadow=1" if shadow else fields
