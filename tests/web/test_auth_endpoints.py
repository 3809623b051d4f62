"""The door: in the default (secure) mode no request passes without a valid client JWT.

Real EC keys generated here, a real JWKS served over HTTP on 127.0.0.1, the app built
from settings the way production builds it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from jwt.algorithms import ECAlgorithm

from cds_service.app import create_app
from cds_service.settings import SettingsError
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request
from tests.conftest import ConformanceCheckingClient, make_settings
from tests.support.ehr_calls import card_request
from tests.support.jwks_server import JwksServer

ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"


class Signer:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP384R1())
        self.kid = uuid.uuid4().hex
        jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": self.kid, "use": "sig", "alg": "ES384"}

    def token(self, path: str, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISS,
            "aud": BASE + path,
            "iat": now,
            "exp": now + 120,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        return jwt.encode(
            payload, self.private, algorithm="ES384", headers={"kid": self.kid, "typ": "JWT"}
        )


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def jwks(signer: Signer) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.publish({"keys": [signer.jwk]})
        yield server


def secure_app(tmp_path: Path, jwks: JwksServer, **overrides: Any) -> Flask:
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps([{"iss": ISS, "jwks_url": jwks.url()}]))
    settings = make_settings(
        tmp_path,
        dev_mode=False,
        trusted_clients_file=str(clients),
        public_base_url=BASE,
        **overrides,
    )
    app = create_app(settings)
    app.test_client_class = ConformanceCheckingClient
    return app


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


HOOK = f"/cds-services/{SELECT_ID}"
FEEDBACK = f"/cds-services/{SELECT_ID}/feedback"


def body() -> dict[str, Any]:
    return hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)


def test_valid_token_opens_every_endpoint(tmp_path: Path, jwks: JwksServer, signer: Signer) -> None:
    client = secure_app(tmp_path, jwks).test_client()
    assert (
        client.get("/cds-services", headers=auth(signer.token("/cds-services"))).status_code == 200
    )
    answer = client.post(HOOK, json=card_request(), headers=auth(signer.token(HOOK)))
    assert answer.status_code == 200
    feedback = {
        "feedback": [
            {
                "card": answer.get_json()["cards"][0]["uuid"],  # a card shown to this client
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-26T10:00:00Z",
            }
        ]
    }
    assert (
        client.post(FEEDBACK, json=feedback, headers=auth(signer.token(FEEDBACK))).status_code
        == 200
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer not.a.jwt"}],
    ids=["none", "basic", "garbage"],
)
def test_no_valid_token_is_a_bare_401(
    tmp_path: Path, jwks: JwksServer, headers: dict[str, str]
) -> None:
    client = secure_app(tmp_path, jwks).test_client()
    for method, path in (("get", "/cds-services"), ("post", HOOK), ("post", FEEDBACK)):
        kwargs: dict[str, Any] = {"headers": headers}
        if method == "post":
            kwargs["json"] = body()
        response = getattr(client, method)(path, **kwargs)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        payload = response.get_json()
        assert set(payload) == {"error", "message"}  # nothing that helps an attacker


def test_token_for_another_endpoint_is_refused(
    tmp_path: Path, jwks: JwksServer, signer: Signer
) -> None:
    client = secure_app(tmp_path, jwks).test_client()
    token = signer.token("/cds-services")  # aud is the discovery URL, not the hook
    assert client.post(HOOK, json=body(), headers=auth(token)).status_code == 401


def test_refusal_happens_before_the_body_is_read(tmp_path: Path, jwks: JwksServer) -> None:
    """An unauthenticated client learns nothing about validation either."""
    client = secure_app(tmp_path, jwks).test_client()
    response = client.post(HOOK, data=b"{broken", content_type="application/json")
    assert response.status_code == 401


def test_replay_to_another_instance_is_refused(
    tmp_path: Path, jwks: JwksServer, signer: Signer
) -> None:
    """Two app instances (as two gunicorn workers) share the replay cache in the database."""
    first = secure_app(tmp_path, jwks).test_client()
    second = secure_app(tmp_path, jwks).test_client()
    token = signer.token(HOOK)
    assert first.post(HOOK, json=body(), headers=auth(token)).status_code == 200
    assert second.post(HOOK, json=body(), headers=auth(token)).status_code == 401
    assert first.post(HOOK, json=body(), headers=auth(token)).status_code == 401


def test_new_key_is_picked_up_without_restart(
    tmp_path: Path, jwks: JwksServer, signer: Signer
) -> None:
    """Refreshes are rate limited (an attacker's random kids must not hammer the JWKS URL);
    once the interval has passed, a rotated key is fetched on first sight."""
    interval = 0.3
    client = secure_app(tmp_path, jwks, jwks_refresh_min_interval_seconds=interval).test_client()
    assert (
        client.get("/cds-services", headers=auth(signer.token("/cds-services"))).status_code == 200
    )
    rotated = Signer()
    jwks.publish({"keys": [signer.jwk, rotated.jwk]})
    time.sleep(interval * 1.5)
    assert (
        client.get("/cds-services", headers=auth(rotated.token("/cds-services"))).status_code == 200
    )


def test_discovery_can_be_left_open(tmp_path: Path, jwks: JwksServer) -> None:
    client = secure_app(tmp_path, jwks, auth_required_for_discovery=False).test_client()
    assert client.get("/cds-services").status_code == 200
    assert client.post(HOOK, json=body()).status_code == 401


def test_health_says_authentication_is_required(tmp_path: Path, jwks: JwksServer) -> None:
    health = secure_app(tmp_path, jwks).test_client().get("/health").get_json()
    assert health["devMode"] is False
    assert health["authentication"] == "required"


def test_no_cors_by_default_outside_development_mode(tmp_path: Path, jwks: JwksServer) -> None:
    client = secure_app(tmp_path, jwks).test_client()
    response = client.options(
        HOOK,
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_configured_cors_origin_only(tmp_path: Path, jwks: JwksServer) -> None:
    client = secure_app(tmp_path, jwks, cors_origins="https://ehr.example.org").test_client()
    ok = client.options(
        HOOK, headers={"Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST"}
    )
    other = client.options(
        HOOK, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert ok.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    assert "Access-Control-Allow-Origin" not in other.headers


def test_public_sandbox_issuer_cannot_be_trusted(tmp_path: Path) -> None:
    clients = tmp_path / "clients.json"
    clients.write_text(
        json.dumps(
            [
                {
                    "iss": "https://sandbox.cds-hooks.org",
                    "jku_allowlist": ["https://sandbox.cds-hooks.org/.well-known/jwks.json"],
                }
            ]
        )
    )
    settings = make_settings(tmp_path, dev_mode=False, trusted_clients_file=str(clients))
    with pytest.raises(SettingsError, match="public"):
        create_app(settings)


def test_refusals_are_logged_with_a_reason_but_never_the_token(
    tmp_path: Path, jwks: JwksServer, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    client = secure_app(tmp_path, jwks).test_client()
    token = signer.token("/cds-services")
    caplog.set_level(logging.DEBUG)
    client.post(HOOK, json=body(), headers=auth(token))  # wrong aud
    reasons = [r.getMessage() for r in caplog.records if r.name == "cds_service.auth"]
    assert any("wrong-audience" in message for message in reasons)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in everything
    assert token.split(".")[2] not in everything
    with sqlite3.connect(tmp_path / "spine-cds.sqlite3") as db:
        dump = "\n".join(db.iterdump())
    assert token not in dump


def test_readiness_counts_the_clients_the_runtime_was_built_with(
    tmp_path: Path, jwks: JwksServer
) -> None:
    ready = secure_app(tmp_path, jwks).test_client().get("/readyz").get_json()
    assert ready["checks"]["configuration"] == "ok"
    (tmp_path / "none").mkdir()
    clients = tmp_path / "none" / "clients.json"
    clients.write_text("[]")
    settings = make_settings(
        tmp_path / "none", dev_mode=False, trusted_clients_file=str(clients), public_base_url=BASE
    )
    ready = create_app(settings).test_client().get("/readyz").get_json()
    assert ready["checks"]["configuration"].startswith("no trusted CDS clients")
