"""No token ever reaches the logs, the error bodies or the stores.

A real run: the gunicorn service in secure mode at debug log level, the real FHIR test
server requiring the EHR's token, a JWKS on 127.0.0.1. Every byte the service logged
and every byte of its database are searched for each token afterwards.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import date
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.examples import load_examples
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.ehr_calls import order_request
from tests.support.jwks_server import JwksServer

pytestmark = pytest.mark.integration
ISS = "https://ehr.example.org"


def test_tokens_never_reach_logs_error_bodies_or_stores(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    kid = uuid.uuid4().hex
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "ES384"}
    ehr_token = "ehr-access-" + uuid.uuid4().hex
    wrong_token = "ehr-wrong-" + uuid.uuid4().hex
    example = load_examples(date.today())[0]
    jwts: list[str] = []
    bodies: list[str] = []
    log_path = tmp_path / "service.log"

    with JwksServer() as jwks, FhirTestServer(token=ehr_token) as fhir:
        jwks.publish({"keys": [jwk]})
        fhir.load_bundle(example.bundle)
        clients = tmp_path / "clients.json"
        # the FHIR test server is on loopback: a client may name it only when it is listed
        entry = {"iss": ISS, "jwks_url": jwks.url(), "fhir_servers": [fhir.base_url]}
        clients.write_text(json.dumps([entry]))
        env = {
            "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
            "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
            "SPINE_CDS_LOG_LEVEL": "debug",
            "SPINE_CDS_FHIR_BUDGET_SECONDS": "5",
            "SPINE_CDS_FHIR_READ_TIMEOUT_SECONDS": "5",
        }
        with ServiceProcess(env=env, args=(), log_path=log_path) as service:
            hook_url = f"{service.url}/cds-services/{SELECT_ID}"

            def client_jwt(aud: str) -> str:
                now = int(time.time())
                token = jwt.encode(
                    {"iss": ISS, "aud": aud, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())},
                    key,
                    algorithm="ES384",
                    headers={"kid": kid, "typ": "JWT"},
                )
                jwts.append(token)
                return token

            def call(access_token: str, aud: str = hook_url) -> requests.Response:
                body = order_request(
                    "order-select",
                    example.patient_id,
                    example.draft_order,
                    fhir_server=fhir.base_url,
                    access_token=access_token,
                )
                response = requests.post(
                    hook_url,
                    json=body,
                    timeout=10,
                    headers={"Authorization": f"Bearer {client_jwt(aud)}"},
                )
                bodies.append(response.text)
                return response

            shown = call(ehr_token)
            assert shown.status_code == 200  # fetched with the EHR's token
            assert call(wrong_token).status_code == 412  # the FHIR server refused it
            assert call(ehr_token, aud=service.url + "/elsewhere").status_code == 401
            replayed = requests.post(
                hook_url, json={}, timeout=10, headers={"Authorization": f"Bearer {jwts[0]}"}
            )
            assert replayed.status_code == 401
            bodies.append(replayed.text)
            feedback = {
                "feedback": [
                    {
                        "card": shown.json()["cards"][0]["uuid"],  # shown to this client
                        "outcome": "overridden",
                        "outcomeTimestamp": "2026-11-26T10:00:00Z",
                    }
                ]
            }
            fb_url = f"{service.url}/cds-services/{SELECT_ID}/feedback"
            assert (
                requests.post(
                    fb_url,
                    json=feedback,
                    timeout=10,
                    headers={"Authorization": f"Bearer {client_jwt(fb_url)}"},
                ).status_code
                == 200
            )

    logged = log_path.read_text()
    assert "refused client JWT" in logged  # the log does say why
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        stored = "\n".join(db.iterdump())
    secrets = [ehr_token, wrong_token, *jwts, *(t.split(".")[2] for t in jwts)]
    for secret in secrets:
        assert secret not in logged
        assert secret not in stored
        for body in bodies:
            assert secret not in body
