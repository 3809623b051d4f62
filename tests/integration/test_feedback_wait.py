"""Feedback naming a card not (yet) in the audit does not hold up the worker.

A card shown by another worker may not be stored yet when its feedback arrives, so the
feedback route looks again for a moment (``SHOWN_WAIT_SECONDS``). An attack suite sent
feedback for made-up cards from four threads: while each looked, it held the worker's
only place, and ``/health`` took 0.56 s instead of 3 ms. Through gunicorn, one worker,
secure mode: a call that arrives while feedback looks is answered before it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.stores.audit_queue import SHOWN_WAIT_SECONDS
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.jwks_server import JwksServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"


def test_a_call_arriving_while_feedback_looks_for_a_card_is_answered_first(
    tmp_path: Path,
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "alg": "ES384"}
    path = f"/cds-services/{SELECT_ID}/feedback"
    now = int(time.time())
    claims = {"iss": ISS, "aud": BASE + path, "iat": now, "exp": now + 120, "jti": "j1"}
    token = jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1"})
    stamp = "2026-12-06T10:00:00Z"
    entry = {"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": stamp}
    with JwksServer() as jwks:
        jwks.publish({"keys": [jwk]})
        clients = tmp_path / "clients.json"
        clients.write_text(json.dumps([{"iss": ISS, "jwks_url": jwks.url()}]))
        env = {
            "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
            "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
            "SPINE_CDS_PUBLIC_BASE_URL": BASE,
            "SPINE_CDS_AUDIT_HASH_KEY": secrets.token_hex(32),
        }
        with ServiceProcess(
            env=env, args=(), workers=1, log_path=tmp_path / "service.log"
        ) as service:
            finished: dict[str, float] = {}
            refused: list[requests.Response] = []

            def feedback() -> None:
                refused.append(
                    requests.post(
                        service.url + path,
                        json={"feedback": [entry]},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=30,
                    )
                )
                finished["feedback"] = time.monotonic()

            sent = threading.Thread(target=feedback)
            started = time.monotonic()
            sent.start()
            time.sleep(SHOWN_WAIT_SECONDS / 3)  # the feedback is looking
            assert requests.get(service.url + "/health", timeout=30).status_code == 200
            finished["health"] = time.monotonic()
            sent.join(timeout=30)

    (answer,) = refused
    assert answer.status_code == 400 and answer.json()["error"] == "unknown_card", answer.text
    assert finished["feedback"] - started >= SHOWN_WAIT_SECONDS  # it did look again
    assert finished["health"] < finished["feedback"]
