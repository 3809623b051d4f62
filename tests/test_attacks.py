"""The attack suite: every attack found from outside, run against the real thing.

One gunicorn service in secure mode (real ES384 keys, a real JWKS server, the real FHIR
test server, link servers that record who sends them what), attacked over real sockets.
Attacks that the service already withstood when the suite was written are here too, so
that they stay withstood. The last test searches the whole log and the database for
every token and patient id that any attack sent.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.examples import load_examples
from cds_service.tools.ehr import build_request
from tests.builders import EMPTY_PREFETCH, SELECT_ID
from tests.support.fhir_server import FhirTestServer
from tests.support.jwks_server import JwksServer
from tests.support.link_server import LinkServer
from tests.support.service_process import ServiceProcess

pytestmark = pytest.mark.integration
ISS = "https://ehr.example.org"
MAX_BODY = 64 * 1024


@dataclass
class Target:
    """The secure service under attack and everything the attacks need around it."""

    service: ServiceProcess
    fhir: FhirTestServer
    near: LinkServer  # the fhirServer the requests name
    far: LinkServer  # where a trick link would send the token
    key: ec.EllipticCurvePrivateKey
    kid: str
    log_path: Path
    db_path: Path
    secrets: list[str] = field(default_factory=list)  # every token and JWT sent
    patient_ids: set[str] = field(default_factory=set)

    @property
    def hook_url(self) -> str:
        return f"{self.service.url}/cds-services/{SELECT_ID}"

    def client_jwt(self, aud: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISS,
            "aud": aud or self.hook_url,
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        token = jwt.encode(
            payload, self.key, algorithm="ES384", headers={"kid": self.kid, "typ": "JWT"}
        )
        self.secrets.extend([token, token.split(".")[2]])
        return token

    def access_token(self) -> str:
        token = "ehr-access-" + uuid.uuid4().hex
        self.secrets.append(token)
        return token

    def patient_id(self) -> str:
        patient = "pt-" + uuid.uuid4().hex[:20]
        self.patient_ids.add(patient)
        return patient

    def order_body(
        self,
        patient_id: str | None = None,
        prefetch: dict[str, Any] | None = None,
        fhir_server: str | None = None,
        access_token: str | None = None,
    ) -> dict[str, Any]:
        patient = patient_id or self.patient_id()
        self.patient_ids.add(patient)
        order = {**EXAMPLE.draft_order, "subject": {"reference": f"Patient/{patient}"}}
        return build_request(
            "order-select",
            str(uuid.uuid4()),
            patient,
            order,
            prefetch,
            fhir_server,
            access_token,
        )

    def call(self, body: dict[str, Any], **headers: str) -> requests.Response:
        return requests.post(
            self.hook_url,
            json=body,
            timeout=15,
            headers={"Authorization": f"Bearer {self.client_jwt()}", **headers},
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


EXAMPLE = load_examples(date.today())[0]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("attacks")
    key = ec.generate_private_key(ec.SECP384R1())
    kid = uuid.uuid4().hex
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "ES384"}
    fhir_token = "ehr-access-" + uuid.uuid4().hex
    with (
        JwksServer() as jwks,
        FhirTestServer(token=fhir_token) as fhir,
        LinkServer() as near,
        LinkServer() as far,
    ):
        jwks.publish({"keys": [jwk]})
        fhir.load_bundle(EXAMPLE.bundle)
        clients = tmp / "clients.json"
        clients.write_text(json.dumps([{"iss": ISS, "jwks_url": jwks.url()}]))
        env = {
            "SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3"),
            "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
            "SPINE_CDS_LOG_LEVEL": "debug",
            "SPINE_CDS_FHIR_BUDGET_SECONDS": "3",
            "SPINE_CDS_FHIR_READ_TIMEOUT_SECONDS": "3",
            "SPINE_CDS_FHIR_CONNECT_TIMEOUT_SECONDS": "1",
            "SPINE_CDS_MAX_BODY_BYTES": str(MAX_BODY),
        }
        log_path = tmp / "service.log"
        with ServiceProcess(env=env, args=(), log_path=log_path) as service:
            t = Target(service, fhir, near, far, key, kid, log_path, tmp / "db.sqlite3")
            t.secrets.append(fhir_token)
            t.patient_ids.add(EXAMPLE.patient_id)
            yield t


# --------------------------------------------------------------------------
# 1. The EHR's access token must never leave for another host through a paging link.


def _tricks(near: int, far: int) -> dict[str, str]:
    """Links that name ``far`` so that some parser may read them as ``near``."""
    return {
        "backslash-userinfo": f"http://127.0.0.1:{far}\\@127.0.0.1:{near}/fhir/Condition?page=2",
        "double-backslash": f"http://127.0.0.1:{far}\\\\@127.0.0.1:{near}/fhir/Condition?page=2",
        "backslash-path": f"http://127.0.0.1:{far}\\fhir\\@127.0.0.1:{near}/fhir/x?page=2",
        "userinfo": f"http://127.0.0.1:{near}@127.0.0.1:{far}/fhir/Condition?page=2",
        "user-password": f"http://u:p@127.0.0.1:{far}/fhir/Condition?page=2",
        "scheme-relative": f"//127.0.0.1:{far}/fhir/Condition?page=2",
        "other-port": f"http://127.0.0.1:{far}/fhir/Condition?page=2",
        "localhost-other-port": f"http://localhost:{far}/fhir/Condition?page=2",
        "mixed-case": f"HtTp://LOCALHOST:{far}/fhir/Condition?page=2",
        "percent-backslash": f"http://127.0.0.1:{far}%5C@127.0.0.1:{near}/fhir/x?page=2",
        "percent-host": f"http://%31%32%37.0.0.1:{far}/fhir/Condition?page=2",
        "percent-at": f"http://127.0.0.1:{far}%40127.0.0.1:{near}/fhir/x?page=2",
        "tab-in-authority": f"http://127.0.0.1:{far}\t@127.0.0.1:{near}/fhir/x?page=2",
        "newline-in-authority": f"http://127.0.0.1:{far}\n@127.0.0.1:{near}/fhir/x?page=2",
        "space-in-authority": f"http://127.0.0.1:{far} @127.0.0.1:{near}/fhir/x?page=2",
        "fullwidth-digits-idn": f"http://\uff11\uff12\uff17.0.0.1:{far}/fhir/Condition?page=2",
        "idn-dot": f"http://127\u30020\u30020\u30021:{far}/fhir/Condition?page=2",
        "ipv6-mapped": f"http://[::ffff:127.0.0.1]:{far}/fhir/Condition?page=2",
        "ipv6-loopback": f"http://[::1]:{far}/fhir/Condition?page=2",
        "decimal-ip": f"http://2130706433:{far}/fhir/Condition?page=2",
        "short-ip": f"http://127.1:{far}/fhir/Condition?page=2",
        "hex-ip": f"http://0x7f.0.0.1:{far}/fhir/Condition?page=2",
        "trailing-dot": f"http://127.0.0.1.:{far}/fhir/Condition?page=2",
        "at-in-path": f"http://127.0.0.1:{far}/fhir/@127.0.0.1:{near}/x?page=2",
        "hash-userinfo": f"http://127.0.0.1:{far}#@127.0.0.1:{near}/fhir/x?page=2",
        "query-userinfo": f"http://127.0.0.1:{far}?@127.0.0.1:{near}/fhir/x?page=2",
        "backslash-scheme": f"http:\\\\127.0.0.1:{far}\\fhir\\Condition?page=2",
        "slash-backslash": f"/\\127.0.0.1:{far}/fhir/Condition?page=2",
        "https-downgrade-port": f"https://127.0.0.1:{far}/fhir/Condition?page=2",
        "default-port-other-host": f"http://127.0.0.2:80/fhir/Condition?page=2&p={far}",
    }


TRICKS = sorted(_tricks(1, 2))


def _far_requests(target: Target) -> list[str]:
    return [s.path for s in target.far.seen]


@pytest.mark.parametrize("trick", TRICKS)
def test_next_link_trick_never_carries_the_token_to_another_host(
    target: Target, trick: str
) -> None:
    target.near.clear()
    target.far.clear()
    target.near.next_link = _tricks(target.near.port, target.far.port)[trick]
    token = target.access_token()
    body = target.order_body(fhir_server=target.near.base_url, access_token=token)
    response = target.call(body)
    assert response.status_code in (200, 412), response.text
    assert any(s.authorization == f"Bearer {token}" for s in target.near.seen)
    assert _far_requests(target) == [], f"{trick}: the far host was contacted"


@pytest.mark.parametrize("trick", TRICKS)
def test_prefetch_bundle_link_trick_never_carries_the_token_to_another_host(
    target: Target, trick: str
) -> None:
    target.near.clear()
    target.far.clear()
    target.near.next_link = None
    link = _tricks(target.near.port, target.far.port)[trick]
    first_page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [],
        "link": [{"relation": "next", "url": link}],
    }
    prefetch = {**EMPTY_PREFETCH, "conditions": first_page}
    token = target.access_token()
    body = target.order_body(
        prefetch=prefetch, fhir_server=target.near.base_url, access_token=token
    )
    response = target.call(body)
    assert response.status_code in (200, 412), response.text
    assert _far_requests(target) == [], f"{trick}: the far host was contacted"


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.1:{near}/fhir/Condition?page=2",
        "HTTP://127.0.0.1:{near}/fhir/Condition?page=2",
        "/fhir/Condition?page=2",
        "Condition?page=2",
    ],
)
def test_next_links_to_the_same_server_are_still_followed(target: Target, link: str) -> None:
    target.near.clear()
    target.near.next_link = link.format(near=target.near.port)
    token = target.access_token()
    body = target.order_body(fhir_server=target.near.base_url, access_token=token)
    assert target.call(body).status_code == 200
    second = [s for s in target.near.seen if "page=2" in s.path]
    assert second and all(s.authorization == f"Bearer {token}" for s in second)
