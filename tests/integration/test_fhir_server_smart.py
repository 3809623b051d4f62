"""The FHIR test server's minimal SMART authorization server, without a browser.

An EHR launch as the trend app's browser test runs it, step by step, and each thing the
server must refuse: a missing or wrong PKCE verifier, a reused code, a redirect to
another origin, an unknown launch, a token it never issued. And the open-server case:
with --no-smart there is no discovery document and no launch endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from spine_cds_dev.fhir_server import FhirTestServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "smart-static-" + uuid.uuid4().hex
APP = "http://127.0.0.1:5999/trend/launch"
REDIRECT = "http://127.0.0.1:5999/trend/"


@pytest.fixture(scope="module")
def server() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as running:
        running.load_bundle(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {"resourceType": "Patient", "id": "smart-p1"},
                        "request": {"method": "PUT", "url": "Patient/smart-p1"},
                    }
                ],
            }
        )
        yield running


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _authorize(server: FhirTestServer, **override: str) -> requests.Response:
    config = requests.get(f"{server.base_url}/.well-known/smart-configuration", timeout=10).json()
    params = {
        "response_type": "code",
        "client_id": "spine-cds-trend",
        "redirect_uri": REDIRECT,
        "scope": "launch patient/Observation.read",
        "state": "s1",
        "aud": server.base_url,
        "launch": server.create_launch(APP, "smart-p1", '{"v":1}'),
        "code_challenge_method": "S256",
    }
    params.update(override)
    return requests.get(
        config["authorization_endpoint"], params=params, allow_redirects=False, timeout=10
    )


def _code(response: requests.Response) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def _token(server: FhirTestServer, code: str, verifier: str, **override: str) -> requests.Response:
    origin = server.base_url.rsplit("/fhir", 1)[0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": "spine-cds-trend",
        "code_verifier": verifier,
    }
    form.update(override)
    return requests.post(f"{origin}/auth/token", data=form, timeout=10)


def test_discovery_names_the_endpoints_and_requires_s256(server: FhirTestServer) -> None:
    config: dict[str, Any] = requests.get(
        f"{server.base_url}/.well-known/smart-configuration", timeout=10
    ).json()
    origin = server.base_url.rsplit("/fhir", 1)[0]
    assert config["authorization_endpoint"] == f"{origin}/auth/authorize"
    assert config["token_endpoint"] == f"{origin}/auth/token"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "launch-ehr" in config["capabilities"]


def test_an_ehr_launch_gives_a_token_the_fhir_front_accepts(server: FhirTestServer) -> None:
    verifier, challenge = _pkce()
    code = _code(_authorize(server, code_challenge=challenge))
    answer = _token(server, code, verifier)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["patient"] == "smart-p1"
    assert body["appContext"] == '{"v":1}'  # a string, as CDS Hooks passes it on
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    read = requests.get(f"{server.base_url}/Patient/smart-p1", headers=headers, timeout=10)
    assert read.status_code == 200
    refused = requests.get(
        f"{server.base_url}/Patient/smart-p1", headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert refused.status_code == 401


def test_a_wrong_verifier_and_a_reused_code_are_refused(server: FhirTestServer) -> None:
    verifier, challenge = _pkce()
    code = _code(_authorize(server, code_challenge=challenge))
    wrong = _token(server, code, verifier + "x")
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    # The code was spent by the failed attempt: the right verifier cannot use it either.
    assert _token(server, code, verifier).status_code == 400
    verifier, challenge = _pkce()
    code = _code(_authorize(server, code_challenge=challenge))
    assert _token(server, code, verifier).status_code == 200
    assert _token(server, code, verifier).status_code == 400  # single use


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"code_challenge": ""}, "PKCE"),
        ({"code_challenge": "abc", "code_challenge_method": "plain"}, "PKCE"),
        ({"code_challenge": "abc", "launch": "unknown"}, "launch"),
        ({"code_challenge": "abc", "redirect_uri": "http://127.0.0.1:1/x"}, "redirect_uri"),
        ({"code_challenge": "abc", "aud": "http://127.0.0.1:1/fhir"}, "aud"),
    ],
)
def test_authorize_refuses(server: FhirTestServer, override: dict[str, str], why: str) -> None:
    response = _authorize(server, **override)
    assert response.status_code == 400
    assert why in response.text


def test_the_token_must_come_with_the_same_redirect_and_client(server: FhirTestServer) -> None:
    verifier, challenge = _pkce()
    code = _code(_authorize(server, code_challenge=challenge))
    assert _token(server, code, verifier, client_id="other").status_code == 400
    verifier, challenge = _pkce()
    code = _code(_authorize(server, code_challenge=challenge))
    assert _token(server, code, verifier, redirect_uri=REDIRECT + "x").status_code == 400


def test_no_smart_is_an_open_server_without_discovery_or_launches() -> None:
    with FhirTestServer(smart=False) as open_server:
        base = open_server.base_url
        discovery = requests.get(f"{base}/.well-known/smart-configuration", timeout=10)
        assert discovery.status_code == 404
        launch = requests.post(
            f"{base}/_services/smart/Launch", json={"launchUrl": APP, "parameters": {}}, timeout=10
        )
        assert launch.status_code == 404
        security = requests.get(f"{base}/metadata", timeout=10).json()["rest"][0]["security"]
        assert "extension" not in security
