"""The benchmark's data and request bodies, shared by the wrk driver and the profiler.

One FHIR test server holds the benchmark patient (about 200 Observations and 10
Conditions, from ``benchmark_bundle``) plus background patients, so that each search
scans a realistic few thousand resources. The request bodies are built the way an EHR
builds them: prefetch is the result of executing the service's own templates against
that server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cds_service.examples import (
    BASE_DATE,
    BENCHMARK_ORDER_DAY,
    benchmark_bundle,
    split_transaction,
)
from spine_cds_dev.fhir_server import FhirTestServer
from tests.support.ehr_calls import order_request, prefetch_from_server

PATIENT_ID = "bench-patient"
SERVICE_ID = "spine-imaging-followup-select"
FHIR_TOKEN = "bench-token"  # noqa: S105 - the test server's static token, synthetic
BACKGROUND_PATIENTS = 14  # x 201 resources each: ~3,000 more in the server
SPINE_MRI = {
    "system": "http://www.ama-assn.org/go/cpt",
    "code": "72158",
    "display": "Magnetic resonance (eg, proton) imaging, spinal canal and contents, without "
    "contrast material, followed by contrast material(s) and further sequences; lumbar",
}
BRAIN_MRI = {"system": "http://loinc.org", "code": "24590-2", "display": "MR Brain"}


@dataclass(frozen=True)
class Bodies:
    """The request bodies of the scenarios, each a dict ready to be sent as JSON."""

    full_prefetch: dict[str, Any]  # (a)
    no_prefetch: dict[str, Any]  # (b): fetched from fhirServer
    not_applicable: dict[str, Any]  # (c): brain MRI, same prefetch
    queries: dict[str, str]  # prefetch key -> rendered query (for timing the server)
    resource_count: int  # resources in the server


def draft_order(coding: dict[str, str], order_id: str) -> dict[str, Any]:
    """A draft ServiceRequest placed on the benchmark patient's order day."""
    order_day = BASE_DATE + timedelta(days=BENCHMARK_ORDER_DAY)
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [coding], "text": coding["display"]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "authoredOn": f"{order_day.isoformat()}T10:00:00Z",
    }


def load_data(server: FhirTestServer) -> int:
    """The benchmark patient and the background patients; how many resources went in."""
    count = 0
    bundles = [benchmark_bundle(PATIENT_ID)]
    bundles += [benchmark_bundle(f"bench-bg-{i}") for i in range(BACKGROUND_PATIENTS)]
    for bundle in bundles:
        for part in split_transaction(bundle):
            server.load_bundle(part)
        count += len(bundle["entry"])
    return count


def build_bodies(server: FhirTestServer, resource_count: int) -> Bodies:
    from cds_service.discovery import load_discovery
    from cds_service.fhir.prefetch import render_queries

    context = {"patientId": PATIENT_ID}
    prefetch = prefetch_from_server(server.base_url, context, SERVICE_ID, server.auth_headers)
    spine = draft_order(SPINE_MRI, "bench-order-spine")
    brain = draft_order(BRAIN_MRI, "bench-order-brain")
    queries, _ = render_queries(load_discovery().services[SERVICE_ID].prefetch, context)
    return Bodies(
        full_prefetch=order_request("order-select", PATIENT_ID, spine, prefetch=prefetch),
        no_prefetch=order_request(
            "order-select",
            PATIENT_ID,
            spine,
            fhir_server=server.base_url,
            access_token=FHIR_TOKEN,
        ),
        not_applicable=order_request("order-select", PATIENT_ID, brain, prefetch=prefetch),
        queries=queries,
        resource_count=resource_count,
    )


def prefetch_counts(body: dict[str, Any]) -> dict[str, int]:
    """Resources per prefetch key of a body (to report what (a) carries): a search's
    entries, or 1 for a resource read by id (the Patient)."""

    def count(value: Any) -> int:
        if not isinstance(value, dict):
            return 0
        return len(value.get("entry", [])) if value.get("resourceType") == "Bundle" else 1

    return {key: count(value) for key, value in body.get("prefetch", {}).items()}
