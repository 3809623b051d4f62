"""Acting as an EHR would: prefetch computed by executing the service's own templates.

The tests need the prefetch an EHR would send, so they execute hooks.json's templates
against the real FHIR test server, with the same token rules as the service.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests

from cds_service.discovery import load_discovery
from cds_service.ehr_requests import build_request
from cds_service.fhir.prefetch import render_queries


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
    """A CDS Hooks request for one draft order, built as `spine-cds try` builds it."""
    return build_request(
        hook, str(uuid.uuid4()), patient_id, draft_order, prefetch, fhir_server, access_token
    )
