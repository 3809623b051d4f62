"""Draft orders the service must not judge, or cannot name, through the real service.

An outside integration review found two things. A spine order with status revoked,
entered-in-error or completed still got the advise-against card, a "Remove the ...
order" suggestion and a not-appropriate rating, though it is not an order being placed
(FHIR R4 request-status); order-sign may carry re-signed orders that are no longer
drafts, so active and on-hold ones are still judged. And a draft order without an id,
or a draftOrders Bundle without entries, was refused as "selections must name orders in
draftOrders" at ``$.context.selections[0]``, while at order-sign an id-less spine order
got a card with no suggestion and no rating: suggestions and actions name the order they
change by ``ResourceType/id``, so the 400 now names the draft order's missing id.
Through gunicorn, with the improving patient's prefetch (a call the service answers
with advise-against); the audit read from the service's own database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID, SIGN_ID
from tests.support.audit_wait import eventually
from tests.support.ehr_calls import card_request

pytestmark = pytest.mark.integration

NOT_PLACED = ("revoked", "entered-in-error", "completed")


@dataclass(frozen=True)
class Service:
    """The running service's address and the database it audits to."""

    url: str
    database: Path


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("draft-orders")
    database = folder / "db.sqlite3"
    env = {"SPINE_CDS_DATABASE_PATH": str(database)}
    with ServiceProcess(env=env, workers=1, log_path=folder / "service.log") as svc:
        yield Service(svc.url, database)


def _post(service: Service, service_id: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{service.url}/cds-services/{service_id}", json=body, timeout=30)


def _audit(service: Service, hook_instance: str) -> tuple[str | None, dict[str, Any]]:
    """The reason and detail the service recorded for the call (once its writer has)."""

    def read() -> list[tuple[str | None, str]]:
        with sqlite3.connect(service.database) as conn:
            query = "SELECT reason, detail FROM audit_log WHERE hook_instance = ?"
            return list(conn.execute(query, (hook_instance,)))

    (row,) = eventually(read, bool)
    return row[0], json.loads(row[1])


def _signed(*statuses: str) -> dict[str, Any]:
    """An order-sign call for the improving patient with one copy of its lumbar MRI
    order per status, each under an id of its own."""
    body = card_request(service_id=SIGN_ID)
    entries = body["context"]["draftOrders"]["entry"]
    (order,) = (e["resource"] for e in entries)
    entries[:] = [
        {"resource": {**order, "id": f"{order['id']}-{i}", "status": status}}
        for i, status in enumerate(statuses)
    ]
    return body


def _named_orders(answer: dict[str, Any]) -> set[str]:
    """Every order id a card's suggestions or the system actions change or remove."""
    actions = [
        *answer.get("systemActions", []),
        *(a for c in answer["cards"] for s in c.get("suggestions", []) for a in s["actions"]),
    ]
    return {
        a["resourceId"].rsplit("/", 1)[-1] if "resourceId" in a else a["resource"].get("id")
        for a in actions
    }


def test_only_orders_being_placed_are_judged_and_the_audit_says_why(
    service: Service,
) -> None:
    """draft, a re-signed active or on-hold order, and an unknown status are judged; a
    revoked, entered-in-error or completed one gets no card, and the audit says why."""
    judged = set()
    for status in ("draft", "active", "on-hold", "unknown", *NOT_PLACED):
        body = _signed(status)
        response = _post(service, SIGN_ID, body)
        assert response.status_code == 200, response.text
        if response.json()["cards"]:
            assert response.json()["systemActions"], "a judged order is rated"
            judged.add(status)
            continue
        assert response.json() == {"cards": []}
        reason, detail = _audit(service, body["hookInstance"])
        assert reason == "spine-order-not-read"
        (left,) = detail["ordersNotRead"]
        assert left["reference"].endswith("-0")
        assert f"status {status!r}" in left["reason"], left
    assert judged == {"draft", "active", "on-hold", "unknown"}


def test_a_revoked_order_beside_one_being_signed_is_neither_rated_nor_changed(
    service: Service,
) -> None:
    body = _signed("active", "revoked")
    response = _post(service, SIGN_ID, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    (card,) = answer["cards"]
    active, revoked = (e["resource"]["id"] for e in body["context"]["draftOrders"]["entry"])
    assert _named_orders(answer) == {active}
    assert "not used" not in card["detail"], "a revoked order is not data left out"
    _, detail = _audit(service, body["hookInstance"])
    assert [o["reference"] for o in detail["ordersNotRead"]] == [f"ServiceRequest/{revoked}"]


def test_a_spine_order_signed_without_an_id_is_refused_at_its_id(
    service: Service,
) -> None:
    """Answered, its card had no suggestion and no rating and did not say why. Only an
    order the service judges must have an id: an id-less medication order beside it is
    not the service's to name."""
    body = card_request(service_id=SIGN_ID)
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order_id = order.pop("id")
    medication = {"resourceType": "MedicationRequest", "status": "draft", "intent": "order"}
    body["context"]["draftOrders"]["entry"].append({"resource": medication})
    answer = _post(service, SIGN_ID, body)
    assert answer.status_code == 400, answer.text
    (problem,) = answer.json()["details"]
    assert problem["path"] == "$.context.draftOrders.entry[0].resource.id"
    assert "required field is missing" in problem["message"]
    assert "suggestions" in problem["message"] and "rating" in problem["message"]
    order["id"] = order_id
    answered = _post(service, SIGN_ID, body)
    assert answered.status_code == 200 and answered.json()["cards"], answered.text


def test_a_selected_draft_without_an_id_is_named_first(service: Service) -> None:
    body = card_request()
    del body["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    answer = _post(service, SELECT_ID, body)
    assert answer.status_code == 400, answer.text
    first, *rest = answer.json()["details"]
    assert first["path"] == "$.context.draftOrders.entry[0].resource.id"
    assert "required field is missing" in first["message"]
    assert "context.selections" in first["message"]
    assert [p["path"] for p in rest] == ["$.context.selections[0]"]


def test_a_draft_orders_bundle_without_entries_is_named_as_such(
    service: Service,
) -> None:
    body = card_request()
    del body["context"]["draftOrders"]["entry"]
    answer = _post(service, SELECT_ID, body)
    assert answer.status_code == 400, answer.text
    first = answer.json()["details"][0]
    assert first["path"] == "$.context.draftOrders.entry"
    assert first["message"].startswith("required field is missing")


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_spine_order_for_another_patient_is_refused_not_answered_with_no_card(
    service: Service, hook: str
) -> None:
    """An integration review: a spine order whose subject was another server's
    ``.../Patient/<id>`` or ``Patient/<ID>`` in other letter case (FHIR ids are case
    sensitive) was answered ``{"cards": []}``, the reason only in the audit; the sandbox
    showed "all clear". The request contradicts itself: a 400 at the subject."""
    service_id = SELECT_ID if hook == "order-select" else SIGN_ID
    body = card_request("e01-improving", service_id)
    patient = body["context"]["patientId"]
    entry = body["context"]["draftOrders"]["entry"][0]["resource"]
    for subject in (
        f"https://ehr-proxy.example.org/FHIR/R4/Patient/{patient}",
        f"Patient/{patient.upper()}",
        # its re-check: none of these names the patient in context either
        f"patient/{patient}",
        "Group/ward-7",
        "Device/x",
        f" Patient/{patient}",
        f"Patient?identifier={patient}",
    ):
        entry["subject"] = {"reference": subject}
        body["fhirServer"] = "https://ehr.example.org/fhir"
        body.pop("fhirAuthorization", None)
        response = _post(service, service_id, body)
        assert response.status_code == 400, response.text
        (detail,) = response.json()["details"]
        assert detail["path"] == "$.context.draftOrders.entry[0].resource.subject.reference"
        assert patient not in response.text and patient.upper() not in response.text
    # Named by this server's base, or not by reference at all, it is this patient's order.
    for subject in (
        {"reference": f"https://ehr.example.org/fhir/Patient/{patient}"},
        {"display": "the patient"},
    ):
        entry["subject"] = subject
        response = _post(service, service_id, body)
        assert response.status_code == 200, response.text
        assert response.json()["cards"], subject


def test_an_unselected_draft_or_a_lab_draft_for_another_patient_is_refused(
    service: Service,
) -> None:
    """The re-check: in order-select an unselected spine MRI of another patient was made
    STAT by the card, and a CRP draft of another patient kept the card from ordering a
    CRP. Every order the service reads must be this patient's: a 400 at its subject."""
    body = card_request("e02-cauda-equina", SELECT_ID)
    (entry,) = body["context"]["draftOrders"]["entry"]
    other = json.loads(json.dumps(entry))
    other["resource"]["id"] = "other-mri"
    other["resource"]["subject"] = {"reference": "Patient/someone-else"}
    body["context"]["draftOrders"]["entry"].append(other)
    response = _post(service, SELECT_ID, body)
    assert response.status_code == 400, response.text
    (detail,) = response.json()["details"]
    assert detail["path"] == "$.context.draftOrders.entry[1].resource.subject.reference"
    lab = {
        "resourceType": "ServiceRequest",
        "id": "other-crp",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
        "subject": "Patient/someone-else",
    }
    body["context"]["draftOrders"]["entry"][1] = {"resource": lab}
    response = _post(service, SELECT_ID, body)
    assert response.status_code == 400, response.text
    (detail,) = response.json()["details"]
    assert detail["path"] == "$.context.draftOrders.entry[1].resource.subject"
    assert "expected a Reference object" in detail["message"]
    assert "someone-else" not in response.text
