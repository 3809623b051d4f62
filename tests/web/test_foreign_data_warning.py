"""Data about another patient is ignored, and the log says so by type and count.

An integration tester sent a prefetch whose every resource named another patient: the
answer was no card and the audit reason "no active infection", the same as a patient
without one. Nothing legitimate sends that, so the log warns (no ids in it).
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
    for key in ("conditions", "crp"):
        for entry in body["prefetch"][key]["entry"]:
            entry["resource"]["subject"] = {"reference": "Patient/someone-else"}
    with caplog.at_level(logging.WARNING, logger="cds_service.invocation"):
        answer = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 200 and answer.get_json() == {"cards": []}
    (line,) = [r.getMessage() for r in caplog.records if "another patient" in r.getMessage()]
    assert "Condition x1" in line and "Observation x3" in line, line
    assert patient_id not in line and "someone-else" not in line


def test_a_patients_own_data_raises_no_warning(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    body, _ = improving_patient_request(client.application)
    with caplog.at_level(logging.WARNING, logger="cds_service.invocation"):
        assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 200
    assert not [r for r in caplog.records if "another patient" in r.getMessage()]
