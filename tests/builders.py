"""Builders for CDS Hooks request bodies used across the tests (synthetic data only)."""

from __future__ import annotations

import uuid
from typing import Any

CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
SELECT_ID = "spine-imaging-followup-select"
SIGN_ID = "spine-imaging-followup-sign"


def service_request(
    order_id: str,
    system: str | None = CPT,
    code: str | None = "72158",
    patient_id: str = "p1",
    authored_on: str | None = None,
) -> dict[str, Any]:
    coding: dict[str, Any] = {}
    if system:
        coding["system"] = system
    if code:
        coding["code"] = code
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [coding]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if authored_on:
        resource["authoredOn"] = authored_on
    return resource


def medication_request(order_id: str, patient_id: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "medicationCodeableConcept": {"text": "cefazolin"},
    }


def bundle(*resources: dict[str, Any], with_type: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    if with_type:
        out["type"] = "collection"
    return out


def hook_request(
    hook: str,
    orders: list[dict[str, Any]],
    selections: list[str] | None = None,
    patient_id: str = "p1",
    prefetch: dict[str, Any] | None = None,
    fhir_server: str | None = None,
    access_token: str | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "userId": "Practitioner/example-practitioner",
        "patientId": patient_id,
        "draftOrders": bundle(*orders),
    }
    if hook == "order-select":
        context["selections"] = (
            selections
            if selections is not None
            else [f"{orders[0]['resourceType']}/{orders[0]['id']}"]
        )
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


EMPTY_PREFETCH: dict[str, Any] = {"conditions": None, "crp": None, "esr": None, "pain": None}
