"""Patient B's prefetch, each subject written so that it only ends in patient A
(``Patient/B/Patient/A``, ``Group/x/Patient/A``, another server's ``.../Patient/A``), sent
on a call for A: not A's data (an attack review: A got B's "repeat MRI reasonable" card).
A gets what a call whose data is all someone else's gets: the keys are read as not
prefetched, so a 412 names them, or they are fetched from fhirServer."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.draft_checks import subject_problem
from tests.builders import SELECT_ID
from tests.support.ehr_calls import card_request
from tests.support.faulty_fhir_server import FaultyFhirServer

A = card_request("e01-improving")  # improving: routine repeat MRI not recommended
B = card_request("e04-crp-rebound")  # CRP rising again: repeat MRI reasonable
A_ID, B_ID = A["context"]["patientId"], B["context"]["patientId"]


@pytest.fixture
def fhir() -> Iterator[FaultyFhirServer]:
    with FaultyFhirServer() as server:
        yield server


def _bs_data_for_a(reference: str, fhir_server: str | None = None) -> dict[str, Any]:
    """A's call carrying B's prefetch (A's Patient), every subject set to ``reference``."""
    body = copy.deepcopy(A)
    prefetch = copy.deepcopy(B["prefetch"])
    for value in prefetch.values():
        for entry in (value or {}).get("entry", []):
            for name in ("subject", "patient"):
                if name in entry["resource"]:
                    entry["resource"][name] = {"reference": reference}
    prefetch["patient"] = A["prefetch"]["patient"]
    body["prefetch"] = prefetch
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    return body


def _forged_keys(body: dict[str, Any]) -> set[str]:
    return {k for k, v in body["prefetch"].items() if k != "patient" and v and v.get("entry")}


def _summaries(client: FlaskClient, body: dict[str, Any]) -> list[str]:
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200, response.get_json()
    return [card["summary"] for card in response.get_json()["cards"]]


def test_the_two_patients_get_different_cards(client: FlaskClient) -> None:
    (a,) = _summaries(client, A)
    (b,) = _summaries(client, B)
    assert "not recommended" in a and "reasonable" in b
    # B's data written with a plain reference to A is read as A's: the cards below that
    # are not B's come from the reference's form alone
    assert _summaries(client, _bs_data_for_a(f"Patient/{A_ID}")) == [b]


@pytest.mark.parametrize(
    "reference",
    [
        f"Patient/{B_ID}/Patient/{A_ID}",
        f"Patient/{B_ID}#/Patient/{A_ID}",
        f"Patient/{B_ID}?x=/Patient/{A_ID}",
        f"Group/ward-7/Patient/{A_ID}",
        f"https://ehr.example.org/fhir/Patient/{B_ID}/Patient/{A_ID}",
    ],
)
def test_a_reference_that_only_ends_in_this_patient_is_not_this_patients(
    client: FlaskClient, reference: str
) -> None:
    body = _bs_data_for_a(reference)
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 412, response.get_json()
    missing = {m["key"]: m["reason"] for m in response.get_json()["missing"]}
    forged = _forged_keys(body)
    assert forged and forged <= set(missing)
    assert all("no resource linked to this patient" in missing[k] for k in forged)


def test_another_servers_patient_of_the_same_id_is_not_this_patient(
    client: FlaskClient, fhir: FaultyFhirServer
) -> None:
    server = fhir.url("500")  # nothing can be fetched again from it
    body = _bs_data_for_a(f"https://other-hospital.example/fhir/Patient/{A_ID}", server)
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 412, response.get_json()
    missing = {m["key"]: m["reason"] for m in response.get_json()["missing"]}
    forged = _forged_keys(body)
    assert forged and forged <= set(missing)
    assert all(
        missing[k].startswith("the prefetch held no resource linked to this patient")
        and "fetching it failed" in missing[k]
        for k in forged
    )
    # the same references on the call's own fhirServer (any case of its host, a default
    # port) are A's: the 412 came from the other server alone
    on_ours = server.replace("http://127.0.0.1", "HTTP://127.0.0.1")
    body = _bs_data_for_a(f"{on_ours}/Patient/{A_ID}/_history/2", server)
    assert _summaries(client, body) == _summaries(client, B)


def test_refetched_from_the_calls_fhir_server_when_it_can_be(
    client: FlaskClient, fhir: FaultyFhirServer
) -> None:
    body = _bs_data_for_a(f"https://other-hospital.example/fhir/Patient/{A_ID}", fhir.url("ok"))
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200, response.get_json()
    assert all("reasonable" not in card["summary"] for card in response.get_json()["cards"])
    fetched = {seen.path.split("?")[0].rsplit("/", 1)[-1] for seen in fhir.seen}
    assert {"Condition", "Observation"} <= fetched  # B's keys were fetched again


@pytest.mark.parametrize(
    ("reference", "server", "read"),
    [
        (f"Patient/{A_ID}", None, True),
        (f"Patient/{B_ID}/Patient/{A_ID}", None, False),
        (
            f"https://other-hospital.example/fhir/Patient/{A_ID}",
            "https://ehr.example.org/fhir",
            False,
        ),
        (f"https://ehr.example.org/fhir/Patient/{A_ID}", "https://ehr.example.org/fhir/", True),
    ],
)
def test_a_draft_orders_subject_follows_the_same_rule(
    reference: str, server: str | None, read: bool
) -> None:
    order = {**A["context"]["draftOrders"]["entry"][0]["resource"]}
    order["subject"] = {"reference": reference}
    assert (subject_problem(order, A_ID, server, {}) is None) is read
