"""Gathering the patient's data: prefetch first, the rest from the EHR's FHIR server.

Against the project's real FHIR test server (spine_cds_dev/fhir_server.py, bearer-token
mode) loaded with a small synthetic patient: a Condition, more than 100 CRP Observations
(so that ``_count=100`` pages), two ESR Observations, and a second patient whose data must
never show up. The search codes come from hooks.json itself, so the test data matches
whatever the service asks for.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from cds_service.datasources import OPTIONAL_KEYS
from cds_service.discovery import Service, load_discovery
from cds_service.fhir import FhirClient, next_link
from cds_service.fhir.prefetch import DataUnavailable, GatheredData, gather, render_queries
from cds_service.settings import Settings
from spine_cds_dev.fhir_server import FhirTestServer

TOKEN = "tok-prefetch-" + uuid.uuid4().hex
PATIENT_ID = "synthetic-nvo-" + uuid.uuid4().hex[:8]
OTHER_PATIENT_ID = "synthetic-other-" + uuid.uuid4().hex[:8]
CRP_COUNT = 120
SYNTHETIC = "http://example.org/fhir/CodeSystem/synthetic-condition"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SETTINGS = Settings(
    fhir_connect_timeout_seconds=2.0,
    fhir_read_timeout_seconds=10.0,
    fhir_budget_seconds=20.0,
    fhir_max_pages=5,
    fhir_max_concurrency=4,
)


@pytest.fixture(scope="module")
def service() -> Service:
    return load_discovery().services["spine-imaging-followup-select"]


def first_code(service: Service, key: str) -> tuple[str, str]:
    """The first system|code the service's template for ``key`` searches for."""
    query = parse_qs(urlsplit(service.prefetch[key]).query)
    system, code = query["code"][0].split(",")[0].split("|")
    return system, code


def observation(patient_id: str, system: str, code: str, when: str, value: float) -> dict[str, Any]:
    return {
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": "synthetic"},
        },
        "request": {"method": "POST", "url": "Observation"},
    }


def patient_bundle(service: Service) -> dict[str, Any]:
    crp = first_code(service, "crp")
    esr = first_code(service, "esr")
    entries: list[dict[str, Any]] = []
    for pid in (PATIENT_ID, OTHER_PATIENT_ID):
        entries.append(
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": pid,
                    "name": [{"family": "Synthetic"}],
                },
                "request": {"method": "PUT", "url": f"Patient/{pid}"},
            }
        )
    entries.append(
        {
            "resource": {
                "resourceType": "Condition",
                "code": {"coding": [{"system": SYNTHETIC, "code": "synthetic-1"}]},
                "subject": {"reference": f"Patient/{PATIENT_ID}"},
            },
            "request": {"method": "POST", "url": "Condition"},
        }
    )
    for i in range(CRP_COUNT):
        day = f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}T08:00:00Z"
        entries.append(observation(PATIENT_ID, *crp, day, float(i)))
    for i in range(2):
        entries.append(observation(PATIENT_ID, *esr, f"2024-06-0{i + 1}T08:00:00Z", 10.0 + i))
    for i in range(3):
        entries.append(observation(OTHER_PATIENT_ID, *crp, f"2024-07-0{i + 1}T08:00:00Z", 1.0))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.fixture(scope="module")
def fhir(service: Service) -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        server.load_bundle(patient_bundle(service))
        yield server


@pytest.fixture(scope="module")
def client() -> Iterator[FhirClient]:
    made = FhirClient(SETTINGS.fhir)
    yield made
    made.close()


def hook_request(
    fhir: FhirTestServer | None,
    token: str | None = TOKEN,
    prefetch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/synthetic-doc",
            "patientId": PATIENT_ID,
            "selections": ["ServiceRequest/draft-1"],
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []},
        },
    }
    if fhir is not None:
        body["fhirServer"] = fhir.base_url
    if fhir is not None and token is not None:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "synthetic-cds-client",
        }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def run(service: Service, client: FhirClient, request: dict[str, Any]) -> GatheredData:
    return gather(service, request, client, SETTINGS.fhir, time.monotonic(), OPTIONAL_KEYS)


def ids(resources: list[dict[str, Any]]) -> list[str]:
    return sorted(r["id"] for r in resources)


def server_get(fhir: FhirTestServer, url: str) -> dict[str, Any]:
    response = requests.get(url, headers=fhir.auth_headers, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rendered(service: Service) -> dict[str, str]:
    queries, problems = render_queries(service.prefetch, {"patientId": PATIENT_ID})
    assert problems == ()
    return queries


# --- against the real FHIR server ---------------------------------------------------------


def test_full_fetch_without_prefetch(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    data = run(service, client, hook_request(fhir))
    assert data.sources == {key: "fetched" for key in service.prefetch}
    assert len(data.resources["conditions"]) == 1
    assert len(data.resources["crp"]) == CRP_COUNT  # more than one page of 100
    assert len(set(ids(data.resources["crp"]))) == CRP_COUNT
    assert len(data.resources["esr"]) == 2
    assert data.resources["pain"] == []
    for key in ("crp", "esr"):
        for resource in data.resources[key]:
            assert resource["resourceType"] == "Observation"
            assert resource["subject"]["reference"] == f"Patient/{PATIENT_ID}"
    assert data.notes == ()


def test_on_ready_is_shown_the_lists_gather_returns(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    # Pain prefetched; CRP and ESR fetched as one search and split: every list shown
    # early is the list returned, so a read made early can be matched to it.
    given_pain: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    shown: list[dict[str, list[Any]]] = []
    data = gather(
        service,
        hook_request(fhir, prefetch={"pain": given_pain}),
        client,
        SETTINGS.fhir,
        time.monotonic(),
        OPTIONAL_KEYS,
        on_ready=lambda ready: shown.append(dict(ready)),
    )
    assert shown, "the process was idle: keys are shown as they come"
    # every key but those of the last query to come in (the caller reads it itself):
    # one key, or CRP and ESR, fetched as one search
    missing = set(service.prefetch) - set(shown[-1])
    assert len(missing) <= 1 or missing == {"crp", "esr"}, missing
    for view in shown:
        for key, found in view.items():
            assert found is data.resources[key], key
    assert all(view["pain"] is data.resources["pain"] for view in shown)  # known from the start


def test_partial_prefetch_uses_what_was_given_and_fetches_the_rest(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    # Prefetch content that is not on the server: had it been fetched, it would differ.
    given_condition = {
        "resourceType": "Condition",
        "id": "prefetch-only-condition",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    given_pain = {"resourceType": "Observation", "id": "prefetch-only-pain", "status": "final"}
    prefetch = {
        "conditions": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": given_condition}],
        },
        "pain": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": given_pain}],
        },
    }
    data = run(service, client, hook_request(fhir, prefetch=prefetch))
    assert data.sources == {
        "conditions": "prefetch",
        "crp": "fetched",
        "esr": "fetched",
        "pain": "prefetch",
        "antibiotics": "fetched",
        "patient": "fetched",
        "procedures": "fetched",
        "imaging_studies": "fetched",
        "imaging_reports": "fetched",
    }
    assert data.resources["conditions"] == [given_condition]
    assert data.resources["pain"] == [given_pain]
    assert len(data.resources["crp"]) == CRP_COUNT
    assert len(data.resources["esr"]) == 2


def test_null_prefetch_key_means_no_data_and_is_not_fetched(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    data = run(service, client, hook_request(fhir, prefetch={"esr": None}))
    assert data.sources["esr"] == "null"
    assert data.resources["esr"] == []  # the server holds two ESR values for this patient
    assert len(data.resources["crp"]) == CRP_COUNT


def test_operation_outcome_in_prefetch_is_fetched_again(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    data = run(service, client, hook_request(fhir, prefetch={"crp": outcome}))
    assert data.sources["crp"] == "fetched"
    assert len(data.resources["crp"]) == CRP_COUNT
    assert [(n.key, n.reason) for n in data.notes] == [
        ("crp", "prefetch held an OperationOutcome instead of data; fetched it again")
    ]


def test_prefetch_of_another_patients_data_only_is_fetched_again(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    """A template or patient id mapping gone wrong: read as this patient's, the key would
    say "no CRP" (or "no infection") where the server holds them."""
    system, code = first_code(service, "crp")
    wrong = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [observation(OTHER_PATIENT_ID, system, code, "2026-11-01", 40.0)],
    }
    data = run(service, client, hook_request(fhir, prefetch={"crp": wrong}))
    assert data.sources["crp"] == "fetched"
    assert len(data.resources["crp"]) == CRP_COUNT
    assert ("crp", "the prefetch held no resource linked to this patient (1); fetched it "
            "again") in [(n.key, n.reason) for n in data.notes]  # fmt: skip


def test_wrong_resource_in_prefetch_is_fetched_again(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    data = run(
        service,
        client,
        hook_request(fhir, prefetch={"conditions": {"resourceType": "Patient", "id": "x"}}),
    )
    assert data.sources["conditions"] == "fetched"
    assert len(data.resources["conditions"]) == 1
    assert data.resources["conditions"][0]["resourceType"] == "Condition"


def test_no_prefetch_and_no_fhir_server_names_every_key(
    client: FhirClient, service: Service
) -> None:
    with pytest.raises(DataUnavailable) as caught:
        run(service, client, hook_request(None))
    # every required key; the optional antibiotic orders are noted, not a reason for 412
    assert [p.key for p in caught.value.problems] == [
        k for k in service.prefetch if k not in OPTIONAL_KEYS
    ]
    for problem in caught.value.problems:
        assert (
            problem.reason == "not prefetched, and the request has no fhirServer to fetch it from"
        )


def test_right_token_is_forwarded_and_a_wrong_one_gives_401(
    fhir: FhirTestServer, client: FhirClient, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    assert len(run(service, client, hook_request(fhir)).resources["crp"]) == CRP_COUNT
    wrong = "tok-wrong-" + uuid.uuid4().hex
    with (
        caplog.at_level(logging.DEBUG, logger="cds_service.fhir"),
        pytest.raises(DataUnavailable) as caught,
    ):
        run(service, client, hook_request(fhir, token=wrong))
    # every required key; the optional antibiotic orders are noted, not a reason for 412
    assert [p.key for p in caught.value.problems] == [
        k for k in service.prefetch if k not in OPTIONAL_KEYS
    ]
    for problem in caught.value.problems:
        assert "FHIR server answered 401" in problem.reason
    texts = [
        str(caught.value),
        repr(caught.value),
        caplog.text,
        *(p.reason for p in caught.value.problems),
    ]
    for text in texts:
        assert wrong not in text
        assert TOKEN not in text
        assert PATIENT_ID not in text  # logs name the key and type, not the query
    assert "key=crp" in caplog.text and "status=401" in caplog.text


def test_no_fhir_authorization_sends_no_token(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    # The server wants a token: a request without fhirAuthorization must reach it without one.
    with pytest.raises(DataUnavailable) as caught:
        run(service, client, hook_request(fhir, token=None))
    assert all("answered 401" in p.reason for p in caught.value.problems)


def test_prefetch_of_first_pages_is_completed_from_the_server(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    # What an EHR would prefetch: each template executed, first page only.
    prefetch = {
        key: server_get(fhir, f"{fhir.base_url}/{query}")
        for key, query in rendered(service).items()
    }
    assert next_link(prefetch["crp"]) is not None  # the CRP result really is paged
    via_prefetch = run(service, client, hook_request(fhir, prefetch=prefetch))
    via_fetch = run(service, client, hook_request(fhir))
    assert via_prefetch.sources == {key: "prefetch" for key in service.prefetch}
    for key in service.prefetch:
        assert sorted(via_prefetch.resources[key], key=lambda r: r["id"]) == sorted(
            via_fetch.resources[key], key=lambda r: r["id"]
        )
    assert via_prefetch.notes == ()


def test_a_first_page_whose_next_link_leads_elsewhere_is_fetched_again_from_fhir_server(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    """An integration review: an Epic-shaped prefetched CRP page whose next link named
    another host was kept alone ("one CRP only; older results not read") although the
    request named a fhirServer the whole search could be run on."""
    first = server_get(fhir, f"{fhir.base_url}/{rendered(service)['crp']}")
    for link in first["link"]:
        if link["relation"] == "next":
            link["url"] = link["url"].replace(fhir.base_url, "https://other-host.example/fhir")
    data = run(service, client, hook_request(fhir, prefetch={"crp": first}))
    assert data.sources["crp"] == "fetched"
    assert len(data.resources["crp"]) == CRP_COUNT
    assert [(n.key, n.reason) for n in data.notes] == [
        ("crp", "the prefetched search's next page is not on fhirServer; fetched it again")
    ]


def test_fully_paged_prefetch_needs_no_fhir_server(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    # An EHR that followed the pages itself and sent one Bundle per key.
    prefetch: dict[str, Any] = {}
    for key, query in rendered(service).items():
        page = server_get(fhir, f"{fhir.base_url}/{query}")
        if "?" not in query:  # a read (the Patient): the resource itself
            prefetch[key] = page
            continue
        entries = list(page.get("entry", []))
        while (link := next_link(page)) is not None:
            page = server_get(fhir, link)
            entries += page.get("entry", [])
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    via_prefetch = run(service, client, hook_request(None, prefetch=prefetch))
    via_fetch = run(service, client, hook_request(fhir))
    for key in service.prefetch:
        assert ids(via_prefetch.resources[key]) == ids(via_fetch.resources[key])
    assert len(via_prefetch.resources["crp"]) == CRP_COUNT


def test_paged_prefetch_without_fhir_server_keeps_the_first_page_and_says_so(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    first = server_get(fhir, f"{fhir.base_url}/{rendered(service)['crp']}")
    prefetch = {
        "conditions": None,
        "crp": first,
        "esr": None,
        "pain": None,
        "antibiotics": None,
        "patient": None,
        "procedures": None,
        "imaging_studies": None,
        "imaging_reports": None,
    }
    data = run(service, client, hook_request(None, prefetch=prefetch))
    assert len(data.resources["crp"]) == len(first["entry"]) < CRP_COUNT
    assert [(n.key, n.reason) for n in data.notes] == [
        ("crp", "prefetched Bundle has more pages; not read (no usable fhirServer)")
    ]


def test_optional_antibiotic_orders_missing_without_fhir_server_go_ahead_noted(
    client: FhirClient, service: Service
) -> None:
    prefetch = {
        "conditions": None,
        "crp": None,
        "esr": None,
        "pain": None,
        "patient": None,
        "procedures": None,
        "imaging_studies": None,
        "imaging_reports": None,
    }
    data = run(service, client, hook_request(None, prefetch=prefetch))
    assert data.sources["antibiotics"] == "unavailable"
    assert data.resources["antibiotics"] == []
    assert [(n.key, n.reason) for n in data.notes] == [
        (
            "antibiotics",
            "not prefetched, and the request has no fhirServer to fetch it from; "
            "went ahead without it",
        )
    ]


# --- decisions that need no server ---------------------------------------------------------


def test_complete_prefetch_needs_no_fhir_server(client: FhirClient, service: Service) -> None:
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    patient = {"resourceType": "Patient", "id": PATIENT_ID}
    prefetch = {key: empty for key in service.prefetch} | {"patient": patient}
    data = run(service, client, hook_request(None, prefetch=prefetch))
    assert data.resources == {key: [] for key in service.prefetch} | {"patient": [patient]}
    assert data.sources == {key: "prefetch" for key in service.prefetch}


def test_unusable_prefetch_without_fhir_server_is_reported(
    client: FhirClient, service: Service
) -> None:
    prefetch: dict[str, Any] = {
        "conditions": {"resourceType": "OperationOutcome", "issue": []},
        "crp": {"resourceType": "Bundle", "type": "transaction"},
        "esr": None,
        "pain": ["not", "a", "resource"],
        "antibiotics": None,
    }
    with pytest.raises(DataUnavailable) as caught:
        run(service, client, hook_request(None, prefetch=prefetch))
    assert {p.key: p.reason for p in caught.value.problems} == {
        "conditions": "prefetch held an OperationOutcome instead of data, "
        "and the request has no fhirServer to fetch it from",
        "crp": "prefetch held a Bundle of type 'transaction' where a searchset was expected, "
        "and the request has no fhirServer to fetch it from",
        "pain": "prefetch held something that is not a FHIR resource, "
        "and the request has no fhirServer to fetch it from",
    }


def test_fhir_server_that_is_not_http_is_refused(client: FhirClient, service: Service) -> None:
    request = hook_request(None)
    request["fhirServer"] = "file:///etc"
    with pytest.raises(DataUnavailable) as caught:
        run(service, client, request)
    assert {p.reason for p in caught.value.problems} == {
        "not prefetched, and fhirServer is not an http(s) URL"
    }


def test_template_without_a_value_is_reported(client: FhirClient, service: Service) -> None:
    request = hook_request(None)
    request["fhirServer"] = "http://127.0.0.1:9/fhir"  # never contacted
    del request["context"]["patientId"]
    with pytest.raises(DataUnavailable) as caught:
        run(service, client, request)
    # every required key; the optional antibiotic orders are noted, not a reason for 412
    assert [p.key for p in caught.value.problems] == [
        k for k in service.prefetch if k not in OPTIONAL_KEYS
    ]
    assert all("{{context.patientId}} has no value" in p.reason for p in caught.value.problems)


def test_a_token_scoped_to_another_patient_is_noted_without_either_id(
    fhir: FhirTestServer, client: FhirClient, service: Service
) -> None:
    # an integrator's review: fhirAuthorization.patient differing from context.patientId
    # passed with no word in the audit or the log
    request = hook_request(fhir)
    request["fhirAuthorization"]["patient"] = "someone-else-7d1"
    data = run(service, client, request)
    (note,) = [n for n in data.notes if n.key == "fhirAuthorization.patient"]
    assert note.reason.startswith("differs from context.patientId")
    assert "someone-else-7d1" not in note.reason and PATIENT_ID not in note.reason
    same = hook_request(fhir)
    same["fhirAuthorization"]["patient"] = PATIENT_ID
    assert not [n for n in run(service, client, same).notes if n.key.startswith("fhirAuth")]
