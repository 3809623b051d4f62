"""Acting as an EHR would: prefetch computed by executing the service's own templates.

The tests need the prefetch an EHR would send, so they execute hooks.json's templates
against the real FHIR test server, with the same token rules as the service.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import requests

from cds_service.discovery import load_discovery
from cds_service.ehr_requests import build_request, local_prefetch
from cds_service.examples import load_example
from cds_service.fhir.prefetch import render_queries
from tests.builders import SELECT_ID


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


def card_request(key: str = "e01-improving", service_id: str = SELECT_ID) -> dict[str, Any]:
    """An order-select (or order-sign) request for example patient ``key`` with the
    prefetch its templates give: a call that the service answers with a card."""
    example = load_example(key, date.today())
    service = load_discovery().services[service_id]
    body = order_request(service.hook, example.patient_id, example.draft_order)
    resources = [e["resource"] for e in example.bundle["entry"]]
    body["prefetch"] = local_prefetch(service.prefetch, body["context"], resources)
    return body


def prefetched(body: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """The resources of ``resource_type`` in a request's prefetched Bundles, as objects a
    test may change in place."""
    return [
        entry["resource"]
        for bundle in body["prefetch"].values()
        if isinstance(bundle, dict)
        for entry in bundle.get("entry", [])
        if entry.get("resource", {}).get("resourceType") == resource_type
    ]
