"""A FHIR server that ignores or mis-reads ``patient=`` and sends another patient's
resources: the required data is unavailable (412 naming the key), never "no infection"
answered with ``{"cards": []}`` (an attack review; the prefetch path already refused
such a key, the fetched path read it as an empty record)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from tests.builders import SIGN_ID, hook_request, service_request
from tests.support.faulty_fhir_server import FaultyFhirServer


@pytest.fixture
def fhir() -> Iterator[FaultyFhirServer]:
    with FaultyFhirServer() as server:
        yield server


def test_another_patients_conditions_are_a_412_not_no_card(
    client: FlaskClient, fhir: FaultyFhirServer
) -> None:
    body = hook_request(
        "order-sign",
        [service_request("o1")],
        fhir_server=fhir.url("other-patient"),
        access_token="t",
    )
    response = client.post(f"/cds-services/{SIGN_ID}", json=body)
    assert response.status_code == 412, response.get_json()
    missing = {m["key"]: m["reason"] for m in response.get_json()["missing"]}
    assert "FHIR server sent no resource linked to this patient" in missing["conditions"]
    # the same server answering with subject-less resources of this patient's search is
    # read as before (the healthy stand-in): the check is about another patient only
    body["fhirServer"] = fhir.url("ok")
    assert client.post(f"/cds-services/{SIGN_ID}", json=body).status_code == 200


def test_a_search_holding_only_other_resource_types_is_no_empty_record(
    client: FlaskClient, fhir: FaultyFhirServer
) -> None:
    """An attack review: a server answering every search with a Patient, or a prefetched
    Conditions key holding only an Observation, read as "no infection" with no card."""
    stray = fhir.url("stray-entries")
    body = hook_request("order-sign", [service_request("o1")], fhir_server=stray, access_token="t")
    response = client.post(f"/cds-services/{SIGN_ID}", json=body)
    assert response.status_code == 412, response.get_json()
    missing = {m["key"]: m["reason"] for m in response.get_json()["missing"]}
    assert (
        "FHIR server sent only other resources (1 search entries that are not Condition"
        in (missing["conditions"])
    )
    # prefetched: read as not prefetched, so fetched (here from a healthy stand-in) ...
    observation = {"resourceType": "Observation", "id": "x", "subject": {"reference": "Patient/p1"}}
    searchset = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": observation}],
    }
    body = hook_request(
        "order-sign",
        [service_request("o1")],
        prefetch={"conditions": searchset},
        fhir_server=fhir.url("ok"),
        access_token="t",
    )
    assert client.post(f"/cds-services/{SIGN_ID}", json=body).status_code == 200
    # ... or, with no fhirServer to fetch it from, named in the 412
    del body["fhirServer"], body["fhirAuthorization"]
    response = client.post(f"/cds-services/{SIGN_ID}", json=body)
    assert response.status_code == 412
    missing = {m["key"]: m["reason"] for m in response.get_json()["missing"]}
    assert missing["conditions"].startswith("the prefetched search held only other resources")
