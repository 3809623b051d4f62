"""Secure mode as integrators meet it: tokens shaped like real EHRs' against real keys.

Each test runs the real service (gunicorn, secure mode) with a real JWKS served over
HTTP on 127.0.0.1 and reads its log file: a refusal must say, on a line that carries the
request id the client got in ``X-Request-Id``, which value differed and what was
expected, with the client's text quoted, escaped and bounded; the client itself gets the
bare 401. Shapes:

- Epic: RS384, ``jku`` equal to the URL the client's entry names as ``jwks_url``, an
  ``aud`` typed in by hand, extra ``sub`` and ``nbf``, a 900 s lifetime.
- Oracle Health: ES384, the allowed ``jku`` values published as a list at a URL
  (``jku_list_url``), re-read when a token names a new one (rotation without restart).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request
from tests.support.jwks_server import JwksServer

pytestmark = pytest.mark.integration

BASE = "https://cds.example.org"
HOOK = f"/cds-services/{SELECT_ID}"
EPIC_ISS = "https://fhir.epic-site.example.org/api/FHIR/R4"
ORACLE_ISS = "https://cds-hooks.oracle-health.example.org"
ORIGIN = "https://ehr-ui.example.org"


class Key:
    """A client's signing key and its public JWK."""

    def __init__(self, alg: str) -> None:
        self.alg = alg
        self.kid = uuid.uuid4().hex
        if alg.startswith("RS"):
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP384R1())
            public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**public, "kid": self.kid, "use": "sig", "alg": alg}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )


def claims(iss: str, aud: str, lifetime: int = 120, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": iss,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        **extra,
    }


def epic_token(key: Key, jku: str, aud: str = BASE + HOOK, **extra: Any) -> str:
    now = int(time.time())
    payload = claims(EPIC_ISS, aud, lifetime=900, sub="epic-client-id", nbf=now, **extra)
    return key.sign(payload, jku=jku, typ="JWT")


def call(svc: ServiceProcess, token: str, **headers: str) -> requests.Response:
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    return requests.post(
        svc.url + HOOK,
        json=body,
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=10,
    )


def lines_of(svc: ServiceProcess, request_id: str) -> list[str]:
    """The log lines written for one request (its id starts each of them)."""
    assert svc.log_path is not None
    deadline = time.monotonic() + 5
    while True:  # the worker writes the line as it answers: give it a moment
        text = svc.log_path.read_text(encoding="utf-8", errors="replace")
        found = [line for line in text.splitlines() if f"request_id={request_id}" in line]
        if any("request method=" in line for line in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def refusal_line(svc: ServiceProcess, response: requests.Response) -> str:
    assert response.status_code == 401
    request_id = response.headers["X-Request-Id"]
    found = [line for line in lines_of(svc, request_id) if "refused client JWT" in line]
    assert len(found) == 1, svc.log_tail()
    return found[0]


@pytest.fixture
def epic_key() -> Key:
    return Key("RS384")


@pytest.fixture
def oracle_key() -> Key:
    return Key("ES384")


@pytest.fixture
def keys_server(epic_key: Key, oracle_key: Key) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.publish({"keys": [epic_key.jwk]}, "/epic/jwks.json")
        server.publish({"keys": [oracle_key.jwk]}, "/oracle/keys-1.json")
        server.publish([server.url("/oracle/keys-1.json")], "/oracle/jku-list.json")
        yield server


def start(tmp_path: Path, clients: list[dict[str, Any]], **env: str) -> ServiceProcess:
    clients_file = tmp_path / "clients.json"
    clients_file.write_text(json.dumps(clients), encoding="utf-8")
    svc = ServiceProcess(
        env={
            "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients_file),
            "SPINE_CDS_PUBLIC_BASE_URL": BASE,
            "SPINE_CDS_DATABASE_PATH": str(tmp_path / "spine-cds.sqlite3"),
            "SPINE_CDS_CORS_ORIGINS": ORIGIN,
            "SPINE_CDS_JWKS_REFRESH_MIN_INTERVAL_SECONDS": "0",
            **env,
        },
        args=(),
        workers=1,
        log_path=tmp_path / "service.log",
    )
    svc.start()
    return svc


@pytest.fixture
def service(tmp_path: Path, keys_server: JwksServer) -> Iterator[ServiceProcess]:
    svc = start(
        tmp_path,
        [
            {"iss": EPIC_ISS, "jwks_url": keys_server.url("/epic/jwks.json")},
            {"iss": ORACLE_ISS, "jku_list_url": keys_server.url("/oracle/jku-list.json")},
        ],
    )
    try:
        yield svc
    finally:
        svc.stop()


def test_an_epic_shaped_token_with_jku_equal_to_the_jwks_url_is_accepted(
    service: ServiceProcess, keys_server: JwksServer, epic_key: Key
) -> None:
    response = call(service, epic_token(epic_key, jku=keys_server.url("/epic/jwks.json")))
    assert response.status_code == 200, service.log_tail()
    request_id = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
    request_line = [line for line in lines_of(service, request_id) if "request method=" in line]
    assert request_line and "status=200" in request_line[0]


def test_a_hand_typed_aud_that_differs_is_logged_beside_the_one_expected(
    service: ServiceProcess, keys_server: JwksServer, epic_key: Key
) -> None:
    typed = BASE + "/cds-services/"  # the integrator typed the base, not the service URL
    response = call(
        service,
        epic_token(epic_key, jku=keys_server.url("/epic/jwks.json"), aud=typed),
        Origin=ORIGIN,
    )
    line = refusal_line(service, response)
    assert "reason=wrong-audience" in line
    assert f'aud_presented="{typed}"' in line
    assert f'aud_expected="{BASE}{HOOK}"' in line
    # The client learns nothing more than the bare 401, but a browser can read it.
    assert response.json() == {
        "error": "unauthorized",
        "message": "a valid bearer JWT from a trusted CDS client is required",
    }
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert "X-Request-Id" in exposed
    assert typed not in response.text


def test_an_unknown_issuer_is_logged_escaped_and_bounded(
    service: ServiceProcess, epic_key: Key
) -> None:
    forged = "https://evil.example\nINFO forged line " + "x" * 5000
    response = call(service, epic_key.sign(claims(forged, BASE + HOOK)))
    line = refusal_line(service, response)
    assert "reason=unknown-issuer" in line
    assert 'iss="https://evil.example\\nINFO forged line xxx' in line
    assert f"...({len(forged)} chars)" in line
    assert len(line) < 1000
    log = service.log_tail(200_000)
    assert not any(row.startswith("INFO forged") for row in log.splitlines())


def test_a_jku_not_allowed_is_logged_with_what_is_allowed(
    service: ServiceProcess, keys_server: JwksServer, epic_key: Key
) -> None:
    elsewhere = "https://keys.elsewhere.example/jwks.json"
    response = call(service, epic_token(epic_key, jku=elsewhere), Origin=ORIGIN)
    line = refusal_line(service, response)
    assert "reason=jku-not-allowed" in line
    assert f'jku="{elsewhere}"' in line
    assert keys_server.url("/epic/jwks.json") in line  # what would have been accepted
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_jwks_that_cannot_be_fetched_is_named_with_its_status(
    service: ServiceProcess, keys_server: JwksServer, epic_key: Key
) -> None:
    keys_server.fail("/epic/jwks.json", 503)
    response = call(service, epic_token(epic_key, jku=keys_server.url("/epic/jwks.json")))
    line = refusal_line(service, response)
    assert "reason=jwks-unavailable" in line
    assert f'jwks_url="{keys_server.url("/epic/jwks.json")}"' in line
    assert 'jwks_error="HTTP 503"' in line

    # Readiness names it too; the other client's keys still serve, so still ready.
    ready = requests.get(service.url + "/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"]["keys"] == (
        f"cannot fetch {keys_server.url('/epic/jwks.json')}: HTTP 503"
    )


def test_a_tenant_configured_for_a_client_whose_tokens_carry_none_says_so(
    tmp_path: Path, keys_server: JwksServer, epic_key: Key
) -> None:
    svc = start(
        tmp_path,
        [{"iss": EPIC_ISS, "jwks_url": keys_server.url("/epic/jwks.json"), "tenant": "site-a"}],
    )
    try:
        jku = keys_server.url("/epic/jwks.json")
        line = refusal_line(svc, call(svc, epic_token(epic_key, jku=jku)))
        assert "reason=missing-claim:tenant" in line
        assert 'tenant_expected="site-a"' in line
        assert "the token carries none" in line

        line = refusal_line(svc, call(svc, epic_token(epic_key, jku=jku, tenant="site-b")))
        assert "reason=wrong-tenant" in line
        assert 'tenant_expected="site-a" tenant_presented="site-b"' in line

        assert call(svc, epic_token(epic_key, jku=jku, tenant="site-a")).status_code == 200
    finally:
        svc.stop()


def test_a_token_without_the_jku_an_oracle_shaped_entry_needs_says_so(
    service: ServiceProcess, keys_server: JwksServer, oracle_key: Key
) -> None:
    # An outside review: "reason=jku-required endpoint=hook claimed_issuer=..." and
    # nothing more, for an entry with only jku_list_url (Oracle Health's shape).
    response = call(service, oracle_key.sign(claims(ORACLE_ISS, BASE + HOOK)))
    line = refusal_line(service, response)
    assert "reason=jku-required" in line
    assert "names no jwks_url or jwks_file" in line
    assert "each token must carry a jku header" in line
    assert f'jku_list_url="{keys_server.url("/oracle/jku-list.json")}"' in line


@pytest.mark.parametrize(
    ("typ", "shown"),
    [
        ("at+jwt", 'typ="at+jwt"'),  # an OAuth access token sent for the client JWT
        ("JWT\nINFO forged line " + "x" * 300, 'typ_is="a string of 321 characters'),
        (7, 'typ_is="an integer, not a string"'),  # JSON's type names, as a 400's
        (["JWT"], 'typ_is="an array, not a string"'),
    ],
)
def test_a_typ_that_names_no_jwt_is_logged_with_what_came(
    service: ServiceProcess, keys_server: JwksServer, epic_key: Key, typ: object, shown: str
) -> None:
    jku = keys_server.url("/epic/jwks.json")
    now = int(time.time())
    token = epic_key.sign(claims(EPIC_ISS, BASE + HOOK, sub="s", nbf=now), jku=jku, typ=typ)
    line = refusal_line(service, call(service, token))
    assert "reason=bad-typ" in line
    assert shown in line
    assert 'typ_expected="JWT (or application/jwt)"' in line
    assert "INFO forged" not in line


@pytest.mark.parametrize("typ", ["application/jwt", "Application/JWT", "jwt"])
def test_a_typ_rfc_7515_reads_as_jwt_is_accepted(
    service: ServiceProcess, keys_server: JwksServer, epic_key: Key, typ: str
) -> None:
    # RFC 7515 section 4.1.9: "application/" may be left out of typ, so application/jwt
    # and JWT are one media type (compared without regard to case).
    jku = keys_server.url("/epic/jwks.json")
    now = int(time.time())
    token = epic_key.sign(claims(EPIC_ISS, BASE + HOOK, sub="s", nbf=now), jku=jku, typ=typ)
    assert call(service, token).status_code == 200, service.log_tail()


def test_oracle_shaped_tokens_follow_the_published_jku_list_without_a_restart(
    service: ServiceProcess, keys_server: JwksServer, oracle_key: Key
) -> None:
    first_jku = keys_server.url("/oracle/keys-1.json")
    token = oracle_key.sign(claims(ORACLE_ISS, BASE + HOOK, lifetime=300), jku=first_jku)
    assert call(service, token).status_code == 200, service.log_tail()

    # Rotation: a new key at a new URL, published on the list; no restart here.
    rotated = Key("ES384")
    second_jku = keys_server.url("/oracle/keys-2.json")
    keys_server.publish({"keys": [rotated.jwk]}, "/oracle/keys-2.json")
    token = rotated.sign(claims(ORACLE_ISS, BASE + HOOK), jku=second_jku)
    before = keys_server.request_count("/oracle/jku-list.json")
    refused = call(service, token)
    line = refusal_line(service, refused)
    assert f'jku="{second_jku}"' in line
    assert keys_server.request_count("/oracle/jku-list.json") == before + 1  # re-read it

    keys_server.publish([first_jku, second_jku], "/oracle/jku-list.json")
    token = rotated.sign(claims(ORACLE_ISS, BASE + HOOK), jku=second_jku)
    assert call(service, token).status_code == 200, service.log_tail()


def test_readiness_fails_when_no_client_key_can_be_had(
    tmp_path: Path, keys_server: JwksServer
) -> None:
    keys_server.fail("/epic/jwks.json", 404)
    svc = start(tmp_path, [{"iss": EPIC_ISS, "jwks_url": keys_server.url("/epic/jwks.json")}])
    try:
        ready = requests.get(svc.url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert "HTTP 404" in ready.json()["checks"]["keys"]
        assert keys_server.url("/epic/jwks.json") in ready.json()["message"]
        assert ready.headers["X-Request-Id"]
    finally:
        svc.stop()


def test_a_key_the_client_removes_stops_being_trusted_within_the_max_age(
    tmp_path: Path, keys_server: JwksServer, epic_key: Key
) -> None:
    """An integration review withdrew a key from a client's key set: tokens it signed were
    accepted 70 s later, as cached keys were read again only after an hour (a constant,
    not a setting). Now ``jwks_max_age_seconds`` (5 minutes by default) sets it."""
    jwks_url = keys_server.url("/epic/jwks.json")
    svc = start(
        tmp_path, [{"iss": EPIC_ISS, "jwks_url": jwks_url}], SPINE_CDS_JWKS_MAX_AGE_SECONDS="1"
    )
    try:
        assert call(svc, epic_token(epic_key, jku=jwks_url)).status_code == 200, svc.log_tail()
        replacement = Key("RS384")
        keys_server.publish({"keys": [replacement.jwk]}, "/epic/jwks.json")
        time.sleep(1.5)
        line = refusal_line(svc, call(svc, epic_token(epic_key, jku=jwks_url)))
        assert "reason=unknown-kid" in line, line
        assert call(svc, epic_token(replacement, jku=jwks_url)).status_code == 200
    finally:
        svc.stop()
