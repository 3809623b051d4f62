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
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.stores.audit_queue import SHOWN_WAIT_SECONDS
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.ehr_calls import card_request
from tests.support.jwks_server import JwksServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"


def _secure_env(tmp_path: Path, jwks: JwksServer) -> dict[str, str]:
    """Secure mode with one trusted client whose keys ``jwks`` publishes."""
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps([{"iss": ISS, "jwks_url": jwks.url()}]))
    return {
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        "SPINE_CDS_PUBLIC_BASE_URL": BASE,
        "SPINE_CDS_AUDIT_HASH_KEY": secrets.token_hex(32),
    }


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
        env = _secure_env(tmp_path, jwks)
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


def test_feedback_sent_as_the_card_is_shown_is_never_refused_as_unknown(tmp_path: Path) -> None:
    """An integration review: with 8 EHR threads each posting feedback the moment its card
    came back, a few were refused 400 ``unknown_card``: the card's audit record was still
    in the other worker's batch and only two feedback calls per worker wait for it. An
    EHR does not send a 400 again, so that feedback was lost. Now a call that could not
    wait is answered 503 with ``Retry-After``, and sent again it is stored. Through
    gunicorn, 2 workers, secure mode, real signed tokens."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "alg": "ES384"}

    def token(path: str) -> str:
        now = int(time.time())
        claims = {"iss": ISS, "aud": BASE + path, "iat": now, "exp": now + 120}
        claims["jti"] = str(uuid.uuid4())
        return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1"})

    hook_path = f"/cds-services/{SELECT_ID}"
    path = f"{hook_path}/feedback"
    template = json.dumps(card_request("e01-improving"))
    patient = json.loads(template)["context"]["patientId"]
    with JwksServer() as jwks:
        jwks.publish({"keys": [jwk]})
        env = _secure_env(tmp_path, jwks)
        with ServiceProcess(env=env, args=(), log_path=tmp_path / "service.log") as service:

            def card_then_feedback(i: int) -> list[requests.Response]:
                # a patient of its own, so that each card has its own uuid
                body = json.loads(template.replace(patient, f"{patient}-{i}"))
                body["hookInstance"] = str(uuid.uuid4())
                with requests.Session() as session:
                    shown = session.post(
                        service.url + hook_path,
                        json=body,
                        headers={"Authorization": f"Bearer {token(hook_path)}"},
                        timeout=30,
                    )
                    assert shown.status_code == 200, shown.text
                    (card,) = shown.json()["cards"]
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    entry = {"card": card["uuid"], "outcome": "overridden"}
                    entry["outcomeTimestamp"] = stamp
                    answers = []
                    for _ in range(3):  # as an EHR that honours Retry-After
                        answer = session.post(
                            service.url + path,
                            json={"feedback": [entry]},
                            headers={"Authorization": f"Bearer {token(path)}"},
                            timeout=30,
                        )
                        answers.append(answer)
                        if answer.status_code != 503:
                            break
                        time.sleep(float(answer.headers["Retry-After"]))
                    return answers

            with ThreadPoolExecutor(max_workers=8) as pool:
                rounds = list(pool.map(card_then_feedback, range(80)))
    statuses = [[a.status_code for a in answers] for answers in rounds]
    assert all(s[-1] == 200 for s in statuses), statuses
    for answer in (a for answers in rounds for a in answers if a.status_code == 503):
        assert answer.json()["error"] == "card_not_yet_recorded", answer.text
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        (stored,) = db.execute("SELECT count(DISTINCT card_uuid) FROM feedback").fetchone()
    assert stored == 80
