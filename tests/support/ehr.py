"""Acting as an EHR would: prefetch computed by executing the service's own templates.

The tests need the prefetch an EHR would send, so they execute hooks.json's templates
against the real FHIR test server, with the same token rules as the service.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests

from cds_service.discovery import load_discovery
from cds_service.prefetch import render_queries


def prefetch_from_server(
    base_url: str, context: dict[str, Any], service_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Execute each template against ``base_url``; a search result is the Bundle as returned."""
    service = load_discovery().services[service_id]
    queries, problems = render_queries(service.prefetch, context)
    assert not problems, problems
    out: dict[str, Any] = {}
    for key, query in queries.items():
        response = requests.get(f"{base_url}/{query}", headers=headers or {}, timeout=10)
        response.raise_for_status()
        out[key] = response.json()
    return out


def order_request(
    hook: str,
    patient_id: str,
    draft_order: dict[str, Any],
    prefetch: dict[str, Any] | None = None,
    fhir_server: str | None = None,
    access_token: str | None = None,
) -> dict[str, Any]:
    """A CDS Hooks request for one draft order, the way an EHR builds it."""
    context: dict[str, Any] = {
        "userId": "Practitioner/example-practitioner",
        "patientId": patient_id,
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": draft_order}],
        },
    }
    if hook == "order-select":
        context["selections"] = [f"ServiceRequest/{draft_order['id']}"]
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server:
        body["fhirServer"] = fhir_server
    if access_token:
        body["fhirAuthorization"] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/Condition.read patient/Observation.read",
            "subject": "spine-cds",
        }
    return body
