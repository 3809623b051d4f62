"""Data about another patient is ignored, and the log says so by type and count.

An integration tester sent a prefetch whose every resource named another patient: the
answer was no card and the audit reason "no active infection", the same as a patient
without one. Nothing legitimate sends that: a key holding only another patient's data is
read as not prefetched (fetched again, or named in a 412), and a resource of another
patient among the patient's own is left out with a warning in the log (no ids in it).
"""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from tests.builders import SELECT_ID
from tests.web.test_audit_and_shadow import improving_patient_request


def test_resources_about_another_patient_are_named_in_the_log(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    body, patient_id = improving_patient_request(client.application)
    body["prefetch"]["crp"]["entry"][0]["resource"]["subject"] = {
        "reference": "Patient/someone-else"
    }
    with caplog.at_level(logging.WARNING, logger="cds_service.invocation"):
        answer = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 200 and answer.get_json()["cards"], answer.get_json()
    (line,) = [r.getMessage() for r in caplog.records if "another patient" in r.getMessage()]
    assert "Observation x1" in line and "Condition" not in line, line
    assert patient_id not in line and "someone-else" not in line


def test_a_prefetch_key_of_another_patients_data_only_is_not_read_as_none(
    client: FlaskClient,
) -> None:
    """Every resource of a key another patient's: a wrong template or id mapping, not "no
    active infection". It used to answer {"cards": []} (an integrator's Epic-shaped call
    with another patient's bundles); without fhirServer to fetch it again, a 412 names
    the keys and why."""
    body, patient_id = improving_patient_request(client.application)
    for key in ("conditions", "crp"):
        for entry in body["prefetch"][key]["entry"]:
            entry["resource"]["subject"] = {"reference": "Patient/someone-else"}
    answer = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 412, answer.get_json()
    reasons = {m["key"]: m["reason"] for m in answer.get_json()["missing"]}
    assert reasons == {
        "conditions": "the prefetch held no resource linked to this patient (1), and the "
        "request has no fhirServer to fetch it from",
        "crp": "the prefetch held no resource linked to this patient (3), and the "
        "request has no fhirServer to fetch it from",
    }
    assert patient_id not in answer.get_data(as_text=True)


def test_a_patients_own_data_raises_no_warning(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    body, _ = improving_patient_request(client.application)
    with caplog.at_level(logging.WARNING, logger="cds_service.invocation"):
        assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 200
    assert not [r for r in caplog.records if "another patient" in r.getMessage()]
