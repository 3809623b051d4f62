"""Tests of the FHIR test server itself, so that client tests can trust what it does.

One server (with a bearer token) serves the module; each test starts from an empty
store via ``reset``. All data is synthetic.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from spine_cds_dev.fhir_server import FhirServerError, FhirTestServer

TOKEN = "test-token-" + uuid.uuid4().hex
LAB = "http://example.org/fhir/CodeSystem/synthetic-lab"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def fhir(server: FhirTestServer) -> FhirTestServer:
    server.reset()
    return server


def get(server: FhirTestServer, path: str, **params: str) -> dict[str, Any]:
    response = requests.get(
        f"{server.base_url}/{path}", params=params, headers=server.auth_headers, timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def patient_entry(put_id: str | None = None, urn: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": "Synthetic"}]}
    if put_id:
        resource["id"] = put_id
        return {"resource": resource, "request": {"method": "PUT", "url": f"Patient/{put_id}"}}
    return {"fullUrl": urn, "resource": resource, "request": {"method": "POST", "url": "Patient"}}


def observation_entry(
    subject: str, code: str, when: str, status: str | None = "final"
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": LAB, "code": code}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
    }
    if status:
        resource["status"] = status
    return {"resource": resource, "request": {"method": "POST", "url": "Observation"}}


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def created_ids(response: dict[str, Any]) -> list[str]:
    """Server-assigned ids, in entry order, from a transaction-response Bundle."""
    return [entry["response"]["location"].split("/")[1] for entry in response["entry"]]


def test_metadata_is_a_capability_statement(fhir: FhirTestServer) -> None:
    body = get(fhir, "metadata")
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"


def test_transaction_resolves_urn_uuid_references_and_put_ids(fhir: FhirTestServer) -> None:
    urn = f"urn:uuid:{uuid.uuid4()}"
    response = fhir.load_bundle(
        transaction(
            patient_entry(urn=urn),
            patient_entry(put_id="pat-put"),
            observation_entry(urn, "a", "2024-01-01T00:00:00Z"),
        )
    )
    patient_id, put_id, observation_id = created_ids(response)
    assert put_id == "pat-put"
    assert get(fhir, "Patient/pat-put")["resourceType"] == "Patient"
    observation = get(fhir, f"Observation/{observation_id}")
    assert observation["subject"]["reference"] == f"Patient/{patient_id}"


def test_token_search_with_or_list(fhir: FhirTestServer) -> None:
    codes = ["a", "b", "c", "a"]
    response = fhir.load_bundle(
        transaction(*(observation_entry("Patient/p1", c, "2024-01-01T00:00:00Z") for c in codes))
    )
    by_code = dict(zip(created_ids(response), codes, strict=True))
    bundle = get(fhir, "Observation", code=f"{LAB}|a,{LAB}|c")
    assert sorted(ids(bundle)) == sorted(i for i, c in by_code.items() if c in {"a", "c"})
    assert bundle["total"] == 3
    assert ids(get(fhir, "Observation", code="http://example.org/other|a")) == []


def test_patient_and_subject_filters(fhir: FhirTestServer) -> None:
    fhir.load_bundle(transaction(patient_entry(put_id="p1"), patient_entry(put_id="p2")))
    response = fhir.load_bundle(
        transaction(
            *(
                observation_entry(f"Patient/{p}", "a", "2024-01-01T00:00:00Z")
                for p in ["p1", "p2", "p1"]
            )
        )
    )
    first, _, third = created_ids(response)
    assert sorted(ids(get(fhir, "Observation", patient="p1"))) == sorted([first, third])
    assert sorted(ids(get(fhir, "Observation", subject="Patient/p1"))) == sorted([first, third])
    assert ids(get(fhir, "Observation", patient="nobody")) == []


def test_sort_by_date_descending(fhir: FhirTestServer) -> None:
    days = ["2024-03-05", "2024-01-09", "2024-07-30", "2023-12-31"]
    fhir.load_bundle(
        transaction(*(observation_entry("Patient/p1", "a", f"{d}T08:00:00Z") for d in days))
    )
    bundle = get(fhir, "Observation", patient="p1", _sort="-date")
    seen = [entry["resource"]["effectiveDateTime"][:10] for entry in bundle["entry"]]
    assert seen == sorted(days, reverse=True)


def test_date_and_clinical_status_filters(fhir: FhirTestServer) -> None:
    response = fhir.load_bundle(
        transaction(
            observation_entry("Patient/p1", "a", "2023-06-01T00:00:00Z"),
            observation_entry("Patient/p1", "a", "2024-06-01T00:00:00Z"),
            *(
                {
                    "resource": {
                        "resourceType": "Condition",
                        "subject": {"reference": "Patient/p1"},
                        "clinicalStatus": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": status,
                                }
                            ]
                        },
                    },
                    "request": {"method": "POST", "url": "Condition"},
                }
                for status in ["active", "resolved"]
            ),
        )
    )
    _, recent, active, _ = created_ids(response)
    assert ids(get(fhir, "Observation", patient="p1", date="ge2024-01-01")) == [recent]
    assert ids(get(fhir, "Condition", patient="p1", **{"clinical-status": "active"})) == [active]


def test_paging_follows_next_links_to_the_end(fhir: FhirTestServer) -> None:
    response = fhir.load_bundle(
        transaction(
            *(
                observation_entry("Patient/p1", "a", f"2024-01-{day:02d}T00:00:00Z")
                for day in range(1, 26)
            )
        )
    )
    url: str | None = f"{fhir.base_url}/Observation?patient=p1&_count=10&_sort=-date"
    pages: list[dict[str, Any]] = []
    while url is not None:
        page = requests.get(url, headers=fhir.auth_headers, timeout=30).json()
        pages.append(page)
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    seen = [entry["resource"]["id"] for page in pages for entry in page.get("entry", [])]
    assert [len(page["entry"]) for page in pages] == [10, 10, 5]
    assert {page["total"] for page in pages} == {25}
    assert sorted(seen) == sorted(created_ids(response))
    entries = [entry for page in pages for entry in page["entry"]]
    assert all(
        e["fullUrl"] == f"{fhir.base_url}/Observation/{e['resource']['id']}" for e in entries
    )
    dates = [e["resource"]["effectiveDateTime"] for e in entries]
    assert dates == sorted(dates, reverse=True)


def test_default_page_size_pages_without_count(fhir: FhirTestServer) -> None:
    fhir.load_bundle(
        transaction(
            *(observation_entry("Patient/p1", "a", "2024-01-01T00:00:00Z") for _ in range(25))
        )
    )
    bundle = get(fhir, "Observation")
    assert bundle["total"] == 25
    assert len(bundle["entry"]) < 25
    assert any(link["relation"] == "next" for link in bundle["link"])


def test_post_search_with_form_body(fhir: FhirTestServer) -> None:
    response = fhir.load_bundle(
        transaction(
            *(
                observation_entry(f"Patient/{p}", c, "2024-01-01T00:00:00Z")
                for p, c in [("p1", "a"), ("p1", "b"), ("p2", "a")]
            )
        )
    )
    wanted = created_ids(response)[0]
    reply = requests.post(
        f"{fhir.base_url}/Observation/_search",
        data={"patient": "p1", "code": f"{LAB}|a"},
        headers=fhir.auth_headers,
        timeout=30,
    )
    assert reply.status_code == 200
    assert ids(reply.json()) == [wanted]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
def test_requests_without_the_token_get_401(
    server: FhirTestServer, headers: dict[str, str]
) -> None:
    reply = requests.get(f"{server.base_url}/Patient", headers=headers, timeout=30)
    assert reply.status_code == 401
    assert reply.json()["resourceType"] == "OperationOutcome"


def test_failed_transaction_leaves_nothing_behind(fhir: FhirTestServer) -> None:
    fhir.load_bundle(transaction(patient_entry(put_id="keep")))
    before = get(fhir, "Patient/keep")
    changed = patient_entry(put_id="keep")
    changed["resource"]["name"] = [{"family": "Changed"}]
    bad = transaction(
        changed,
        patient_entry(urn=f"urn:uuid:{uuid.uuid4()}"),
        observation_entry(
            "Patient/keep", "a", "2024-01-01T00:00:00Z", status=None
        ),  # status is required
    )
    reply = requests.post(fhir.base_url, json=bad, headers=fhir.auth_headers, timeout=30)
    assert reply.status_code == 400
    assert reply.json()["resourceType"] == "OperationOutcome"
    assert get(fhir, "Patient/keep") == before
    assert get(fhir, "Patient")["total"] == 1
    assert get(fhir, "Observation")["total"] == 0
    with pytest.raises(FhirServerError, match="status"):
        fhir.load_bundle(bad)


def test_single_resource_create_update_delete(fhir: FhirTestServer) -> None:
    url = f"{fhir.base_url}/Patient"
    created = requests.post(
        url, json={"resourceType": "Patient"}, headers=fhir.auth_headers, timeout=30
    )
    assert created.status_code == 201
    pid = created.json()["id"]
    assert created.headers["Location"].startswith(f"{url}/{pid}/")
    updated = requests.put(
        f"{url}/{pid}",
        json={"resourceType": "Patient", "id": pid, "gender": "other"},
        headers=fhir.auth_headers,
        timeout=30,
    )
    assert updated.status_code == 200
    assert get(fhir, f"Patient/{pid}")["gender"] == "other"
    assert requests.delete(f"{url}/{pid}", headers=fhir.auth_headers, timeout=30).status_code == 200
    assert requests.get(f"{url}/{pid}", headers=fhir.auth_headers, timeout=30).status_code == 404


def test_invalid_resource_is_refused(fhir: FhirTestServer) -> None:
    reply = requests.post(
        f"{fhir.base_url}/Observation",
        json={"resourceType": "Observation", "status": "final", "code": {}, "notAnElement": 1},
        headers=fhir.auth_headers,
        timeout=30,
    )
    assert reply.status_code == 400
    assert "notAnElement" in reply.text


def test_unknown_route_is_404_and_bad_json_is_400(fhir: FhirTestServer) -> None:
    for path in ["NoSuchType", "NoSuchType/1", "Patient/does-not-exist", "../other"]:
        reply = requests.get(f"{fhir.base_url}/{path}", headers=fhir.auth_headers, timeout=30)
        assert reply.status_code == 404, path
        assert reply.json()["resourceType"] == "OperationOutcome"
    reply = requests.post(
        fhir.base_url,
        data=b"{not json",
        headers={"Content-Type": "application/fhir+json", **fhir.auth_headers},
        timeout=30,
    )
    assert reply.status_code == 400
    assert reply.json()["resourceType"] == "OperationOutcome"


def test_stop_leaves_no_process_and_can_be_repeated() -> None:
    server = FhirTestServer()
    server.start()
    pid = server.pid
    assert pid is not None
    assert requests.get(f"{server.base_url}/metadata", timeout=30).status_code == 200
    server.stop()
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.base_url}/metadata", timeout=5)


def test_start_failure_reports_the_server_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = FhirTestServer(port=taken.getsockname()[1])
        with pytest.raises(FhirServerError, match="EADDRINUSE"):
            server.start()
    assert server.pid is None
