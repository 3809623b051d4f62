"""One hook invocation, from a parsed body to a CDS Hooks response body.

The path is the one architecture.md draws: validate the envelope, find the orders in
question, gather the patient's data, map it, decide, render. Only the first three
stages can refuse a request; after that every failure is a bug, not a client error.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from cds_service.cards import CardContext, render_response
from cds_service.engine import assess
from cds_service.errors import ApiError
from cds_service.prefetch import DataUnavailable, gather
from cds_service.runtime import Runtime
from cds_service.validation import FieldError, validate
from fhir_mappers.conditions import map_conditions
from fhir_mappers.model import PatientData
from fhir_mappers.observations import map_observations
from fhir_mappers.orders import map_orders

OBSERVATION_KEYS = ("crp", "esr", "pain")
NO_CARDS: dict[str, Any] = {"cards": []}


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


def handle_hook(runtime: Runtime, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Validate, decide and render; raises ApiError for 400 and 412 answers."""
    service = runtime.discovery.services[service_id]
    problems = validate(runtime.validators[service.hook], body)
    if problems:
        raise ApiError(
            400,
            "invalid_request",
            f"the request does not conform to the CDS Hooks {service.hook} hook",
            problems,
        )
    context = body["context"]
    selections: list[str] | None = None
    if service.hook == "order-select":
        _check_selections(context)
        selections = list(context["selections"])

    orders = map_orders(context["draftOrders"], selections, runtime.value_sets)
    if not orders.orders:
        return NO_CARDS

    try:
        gathered = gather(service, body, runtime.fhir_client, runtime.settings, time.monotonic())
    except DataUnavailable as exc:
        raise ApiError(
            412,
            "data_unavailable",
            "the patient's data needed for this decision could not be obtained from prefetch "
            "or from fhirServer",
            extra={"missing": [{"key": p.key, "reason": p.reason} for p in exc.problems]},
        ) from None

    conditions, condition_issues = map_conditions(
        gathered.resources.get("conditions", []), runtime.value_sets
    )
    observations = [r for key in OBSERVATION_KEYS for r in gathered.resources.get(key, [])]
    measurements, observation_issues = map_observations(
        observations, runtime.value_sets, runtime.mapping
    )
    data = PatientData(
        conditions=conditions,
        measurements=measurements,
        issues=orders.issues + condition_issues + observation_issues,
    )
    assessment = assess(orders.orders, data, runtime.rules, datetime.now(UTC))
    return render_response(assessment, CardContext(patient_id=context["patientId"]))
