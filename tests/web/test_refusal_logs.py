"""A refused call says why in the service's log: the error code and the JSON paths of
the fields refused, never a value the client sent.

An integration review found 400s (a fhirServer the client's entry does not list, broken
JSON, a body off the schema) and 415s logged as a bare ``status=400``: at 3 a.m. a wrong
``fhir_servers`` entry failed every call from an EHR and the log did not say why. Real
keys, a real JWKS on 127.0.0.1 and the app built from settings as production builds it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm

from cds_service.app import create_app
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request
from tests.conftest import ConformanceCheckingClient, make_settings
from tests.support.jwks_server import JwksServer

ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"
HOOK = f"/cds-services/{SELECT_ID}"
ALLOWED_FHIR = "https://fhir.example.org/r4"
# Values a refused body carries: none may reach the log.
PATIENT_ID = "patient-secret-4711"
ACCESS_TOKEN = "ehr-access-" + uuid.uuid4().hex
OTHER_FHIR = "https://fhir-other-site.example.net/r4"


class Signer:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP384R1())
        self.kid = uuid.uuid4().hex
        jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": self.kid, "use": "sig", "alg": "ES384"}

    def headers(self) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": ISS, "aud": BASE + HOOK, "iat": now, "exp": now + 120}
        token = jwt.encode(
            {**claims, "jti": str(uuid.uuid4())},
            self.private,
            algorithm="ES384",
            headers={"kid": self.kid, "typ": "JWT"},
        )
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def client(tmp_path: Path, signer: Signer) -> Iterator[FlaskClient]:
    with JwksServer() as jwks:
        jwks.publish({"keys": [signer.jwk]})
        clients = tmp_path / "clients.json"
        entry = {"iss": ISS, "jwks_url": jwks.url(), "fhir_servers": [ALLOWED_FHIR]}
        clients.write_text(json.dumps([entry]))
        settings = make_settings(
            tmp_path,
            dev_mode=False,
            trusted_clients_file=str(clients),
            public_base_url=BASE,
            max_body_bytes=20_000,
        )
        app = create_app(settings)
        app.test_client_class = ConformanceCheckingClient
        with app.test_client() as test_client:
            yield test_client


def body(**fields: Any) -> dict[str, Any]:
    made = hook_request(
        "order-select",
        [service_request("o1", patient_id=PATIENT_ID)],
        patient_id=PATIENT_ID,
        prefetch=EMPTY_PREFETCH,
        fhir_server=fields.pop("fhir_server", None),
        access_token=fields.pop("access_token", None),
    )
    return {**made, **fields}


def request_line(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    (line,) = [
        r
        for r in caplog.records
        if r.name == "cds_service" and r.getMessage().startswith("request method=POST")
    ]
    return line


def assert_nothing_sent_is_logged(caplog: pytest.LogCaptureFixture, *values: str) -> None:
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in (PATIENT_ID, ACCESS_TOKEN, OTHER_FHIR, *values):
        assert value not in logged


def test_a_fhir_server_the_client_may_not_name_is_a_warning_with_code_and_path(
    client: FlaskClient, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong fhir_servers entry fails every call from that EHR: WARNING, and why."""
    caplog.set_level(logging.DEBUG)
    sent = body(fhir_server=OTHER_FHIR, access_token=ACCESS_TOKEN)
    answer = client.post(HOOK, json=sent, headers=signer.headers())
    assert answer.status_code == 400
    assert answer.get_json()["details"][0]["path"] == "$.fhirServer"
    line = request_line(caplog)
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert "status=400" in message
    assert " error=invalid_request" in message
    assert 'fields="$.fhirServer"' in message
    assert f"hook_instance={sent['hookInstance']}" in message
    assert_nothing_sent_is_logged(caplog)


def test_a_body_off_the_schema_names_its_paths_not_its_values(
    client: FlaskClient, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent = body(fhir_server=OTHER_FHIR, access_token=ACCESS_TOKEN)
    sent["context"]["userId"] = "Nurse/" + PATIENT_ID
    del sent["context"]["selections"]
    answer = client.post(HOOK, json=sent, headers=signer.headers())
    assert answer.status_code == 400
    line = request_line(caplog)
    assert line.levelno == logging.INFO  # this call's data, not the settings
    message = line.getMessage()
    assert " error=invalid_request" in message
    assert 'fields="$.context.selections,$.context.userId"' in message
    assert_nothing_sent_is_logged(caplog, "Nurse/")


@pytest.mark.parametrize(
    "sent_instance", ["x status=200 decision=support-urgent", "MRN-12345678 DOE^JOHN 1960-01-01"]
)
def test_a_hook_instance_that_is_no_uuid_is_not_logged_as_sent(
    client: FlaskClient, signer: Signer, caplog: pytest.LogCaptureFixture, sent_instance: str
) -> None:
    """An attack review: whatever a client put in hookInstance went to the request's log
    line (a second ``status=`` before the real one) and to the audit as sent."""
    caplog.set_level(logging.DEBUG)
    answer = client.post(HOOK, json=body(hookInstance=sent_instance), headers=signer.headers())
    assert answer.status_code == 400
    assert answer.get_json()["details"][0]["path"] == "$.hookInstance"
    message = request_line(caplog).getMessage()
    assert " hook_instance=- " in message
    assert_nothing_sent_is_logged(caplog, sent_instance, "MRN-", "decision=support-urgent")


def test_broken_json_is_logged_by_its_code(
    client: FlaskClient, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = json.dumps(body(access_token=ACCESS_TOKEN))[:-2]  # cut short
    answer = client.post(HOOK, data=raw, content_type="application/json", headers=signer.headers())
    assert answer.status_code == 400
    line = request_line(caplog)
    assert line.levelno == logging.INFO
    assert line.getMessage().endswith(" error=invalid_json")
    assert_nothing_sent_is_logged(caplog)


def test_a_content_type_the_service_does_not_read_is_a_warning(
    client: FlaskClient, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    """Every call the client sends so is refused: WARNING."""
    caplog.set_level(logging.DEBUG)
    raw = json.dumps(body(access_token=ACCESS_TOKEN))
    answer = client.post(HOOK, data=raw, content_type="text/plain", headers=signer.headers())
    assert answer.status_code == 415
    line = request_line(caplog)
    assert line.levelno == logging.WARNING
    assert line.getMessage().endswith(" error=unsupported_media_type")
    assert_nothing_sent_is_logged(caplog)


def test_a_body_over_max_body_bytes_is_logged_by_its_code(
    client: FlaskClient, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent = body(access_token=ACCESS_TOKEN, padding=PATIENT_ID * 2_000)
    answer = client.post(HOOK, json=sent, headers=signer.headers())
    assert answer.status_code == 413
    line = request_line(caplog)
    assert line.getMessage().endswith(" error=request_entity_too_large")
    assert_nothing_sent_is_logged(caplog)


def test_an_answered_call_has_no_refusal_on_its_line(
    client: FlaskClient, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = client.post(HOOK, json=body(), headers=signer.headers())
    assert answer.status_code == 200
    line = request_line(caplog)
    assert line.levelno == logging.INFO
    assert "error=" not in line.getMessage()
