"""The attack suite: every attack found from outside, run against the real thing.

One gunicorn service in secure mode (real ES384 keys, a real JWKS server, the real FHIR
test server, link servers that record who sends them what), attacked over real sockets.
Attacks that the service already withstood when the suite was written are here too, so
that they stay withstood. The last test searches the whole log and the database for
every token and patient id that any attack sent.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import sqlite3
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.ehr_requests import build_request
from cds_service.examples import Example, load_examples
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, SELECT_ID
from tests.support.audit_wait import eventually
from tests.support.ehr_calls import prefetch_from_server
from tests.support.jwks_server import JwksServer
from tests.support.link_server import LinkServer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
ISS = "https://ehr.example.org"
ORIGIN = "https://ehr-web.example.org"
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
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    jwks_url: str = ""
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


def _example_with_fresh_ids() -> Example:
    """The first example patient under a random id, its resources' ids not derived from it
    (the patient id must be findable in the log and database by a plain search)."""
    example = load_examples(date.today())[0]
    old = example.patient_id
    patient = "pt-" + uuid.uuid4().hex[:20]
    text = json.dumps(example.bundle).replace(f"{old}-", f"r{uuid.uuid4().hex[:8]}-")
    order = {**example.draft_order, "id": "order-" + uuid.uuid4().hex[:8]}
    return dataclasses.replace(
        example,
        patient_id=patient,
        bundle=json.loads(text.replace(old, patient)),
        draft_order=order,
    )


EXAMPLE = _example_with_fresh_ids()


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
        # The servers the attacks name are on loopback: a client may name them only when
        # they are listed (the attacks on the list itself use ``limited``).
        servers = [near.base_url, fhir.base_url]
        clients.write_text(
            json.dumps([{"iss": ISS, "jwks_url": jwks.url(), "fhir_servers": servers}])
        )
        home = tmp / "home"
        home.mkdir()
        env = {
            "HOME": str(home),  # where gunicorn would put its control socket
            "XDG_RUNTIME_DIR": str(tmp / "no-such-dir"),
            "SPINE_CDS_CORS_ORIGINS": ORIGIN,
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
            t = Target(service, fhir, near, far, key, kid, log_path, tmp / "db.sqlite3", home)
            t.secrets.append(fhir_token)
            t.patient_ids.add(EXAMPLE.patient_id)
            t.env, t.jwks_url = env, jwks.url()
            yield t


@pytest.fixture(scope="module")
def limited(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A second instance whose one client may name only the FHIR test server."""
    tmp = tmp_path_factory.mktemp("limited")
    clients = tmp / "clients.json"
    entry = {"iss": ISS, "jwks_url": target.jwks_url, "fhir_servers": [target.fhir.base_url]}
    clients.write_text(json.dumps([entry]))
    env = {
        **target.env,
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        "SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3"),
    }
    log_path = tmp / "service.log"
    with ServiceProcess(env=env, args=(), log_path=log_path) as service:
        yield dataclasses.replace(
            target, service=service, log_path=log_path, db_path=tmp / "db.sqlite3"
        )


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


# --------------------------------------------------------------------------
# 2 and 3. Chunked bodies: no 5xx for broken framing, no silent truncation, and no
# request bytes in any log.


def _raw_exchange(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send ``request`` as is on a fresh socket; the whole answer (until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def _chunked_request(target: Target, body: bytes, framing: bytes) -> bytes:
    head = (
        f"POST /cds-services/{SELECT_ID} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{target.service.port}\r\n"
        f"Authorization: Bearer {target.client_jwt()}\r\n"
        "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    return head + framing.replace(b"BODY", body)


def test_malformed_chunked_framing_is_refused_without_5xx_or_logging_the_body(
    target: Target,
) -> None:
    token = target.access_token()
    body = json.dumps(
        target.order_body(fhir_server=target.fhir.base_url, access_token=token)
    ).encode()
    framings = {
        "body-as-size-line": b"BODY\r\n0\r\n\r\n",
        "size-too-small": b"5\r\nBODY\r\n0\r\n\r\n",
        "no-terminator": b"%x\r\nBODY" % len(body),
        "bad-extension": b"%x;\x00x\r\nBODY\r\n0\r\n\r\n" % len(body),
        "negative-size": b"-1\r\nBODY\r\n0\r\n\r\n",
    }
    for name, framing in framings.items():
        answer = _raw_exchange(target.service.port, _chunked_request(target, body, framing))
        status = _status(answer)
        assert 400 <= status < 500, f"{name}: {answer[:200]!r}"
    assert token not in target.log()
    assert b'"hook"' not in target.log_path.read_bytes()


def test_chunked_body_over_max_body_bytes_is_not_truncated_and_answered(target: Target) -> None:
    body = target.order_body(prefetch=EMPTY_PREFETCH)
    raw = json.dumps(body).encode()
    padded = raw + b" " * (MAX_BODY + 1024)  # valid JSON up to the limit, then more
    framing = b"%x\r\n%s\r\n0\r\n\r\n" % (len(padded), padded)
    answer = _raw_exchange(target.service.port, _chunked_request(target, b"", framing))
    assert _status(answer) in (411, 413), answer[:200]


def test_a_chunked_body_of_any_size_is_refused_with_411(target: Target) -> None:
    raw = json.dumps(target.order_body(prefetch=EMPTY_PREFETCH)).encode()
    framing = b"%x\r\n%s\r\n0\r\n\r\n" % (len(raw), raw)
    answer = _raw_exchange(target.service.port, _chunked_request(target, b"", framing))
    assert _status(answer) == 411, answer[:200]
    assert b"Content-Length" in answer


def test_a_body_over_max_body_bytes_with_content_length_is_413(target: Target) -> None:
    raw = json.dumps(target.order_body(prefetch=EMPTY_PREFETCH)).encode()
    response = requests.post(
        target.hook_url,
        data=raw + b" " * MAX_BODY,
        timeout=15,
        headers={
            "Authorization": f"Bearer {target.client_jwt()}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 413


# --------------------------------------------------------------------------
# 4. The accepted audience never comes from the request.


def test_a_token_for_another_deployment_is_refused_whatever_the_host_header(
    target: Target,
) -> None:
    other = "http://cds.other-deployment.example"
    body = target.order_body(prefetch=EMPTY_PREFETCH)
    for host, aud in [
        ("cds.other-deployment.example", f"{other}/cds-services/{SELECT_ID}"),
        ("evil.example:443", f"https://evil.example/cds-services/{SELECT_ID}"),
    ]:
        response = requests.post(
            target.hook_url,
            json=body,
            timeout=15,
            headers={"Authorization": f"Bearer {target.client_jwt(aud=aud)}", "Host": host},
        )
        assert response.status_code == 401


def test_forwarded_proto_from_loopback_does_not_change_the_audience(target: Target) -> None:
    https_aud = target.hook_url.replace("http://", "https://")
    for header in ("X-Forwarded-Proto", "X-Forwarded-Protocol", "X-Forwarded-Ssl"):
        value = "on" if header == "X-Forwarded-Ssl" else "https"
        response = requests.post(
            target.hook_url,
            json=target.order_body(prefetch=EMPTY_PREFETCH),
            timeout=15,
            headers={"Authorization": f"Bearer {target.client_jwt(aud=https_aud)}", header: value},
        )
        assert response.status_code == 401, header


def test_secure_mode_without_public_base_url_refuses_to_start(tmp_path: Path) -> None:
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps([{"iss": ISS, "jwks_url": "http://127.0.0.1:9/jwks.json"}]))
    env = {
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        "SPINE_CDS_PUBLIC_BASE_URL": "",
    }
    log_path = tmp_path / "service.log"
    service = ServiceProcess(env=env, args=(), log_path=log_path)
    try:
        with pytest.raises(RuntimeError, match="exited"):
            service.start(timeout=20)
    finally:
        service.stop()
    assert "public_base_url" in log_path.read_text()


# --------------------------------------------------------------------------
# 5. No client-supplied value can start a line of the log.


def _lines_starting_with(target: Target, marker: str) -> list[str]:
    return [line for line in target.log().splitlines() if line.startswith(marker)]


def test_a_newline_in_the_path_cannot_forge_a_log_line(target: Target) -> None:
    marker = "FORGED-" + uuid.uuid4().hex[:8]
    for path in (
        f"/cds-services/x%0A{marker}%20INFO%20admin%20login",
        f"/cds-services/x%0D%0A{marker}",
        f"/x%0A{marker}",
        f"/cds-services/x%E2%80%A8{marker}",
    ):
        requests.get(target.service.url + path, timeout=10)
        requests.post(target.service.url + path, json={}, timeout=10)
    assert _lines_starting_with(target, marker) == []


def test_a_newline_in_hook_instance_cannot_forge_a_log_line(target: Target) -> None:
    marker = "FORGED-" + uuid.uuid4().hex[:8]
    body = target.order_body(prefetch=EMPTY_PREFETCH)
    body["hookInstance"] = f"x\n{marker} INFO forged"
    response = target.call(body)
    assert response.status_code == 400
    assert _lines_starting_with(target, marker) == []


def test_nul_never_reaches_the_log(target: Target) -> None:
    body = target.order_body(prefetch=EMPTY_PREFETCH)
    body["hookInstance"] = "x\x00y"
    target.call(body)
    requests.get(target.service.url + "/cds-services/a%00b", timeout=10)
    assert b"\x00" not in target.log_path.read_bytes()


# --------------------------------------------------------------------------
# 6. Data about someone else is never used, however the subject is written.


def _with_subject(bundle: dict[str, Any], subject: dict[str, Any]) -> dict[str, Any]:
    entries = [
        {**entry, "resource": {**entry["resource"], "subject": subject}}
        for entry in bundle.get("entry", [])
    ]
    return {**bundle, "entry": entries}


@pytest.mark.parametrize(
    "subject",
    [
        {"identifier": {"system": "urn:oid:1.2.3", "value": "123"}, "display": "Someone Else"},
        {"display": "Someone Else"},
        {"reference": "Patient/someone-else"},
        {"reference": "Group/ward-7"},
        {},
        "Patient/{patient}",
    ],
    ids=["identifier-only", "display-only", "other-patient", "group", "empty", "not-an-object"],
)
def test_resources_whose_subject_is_not_this_patient_are_ignored_and_reported(
    target: Target, subject: Any
) -> None:
    patient = EXAMPLE.patient_id
    if isinstance(subject, str):
        subject = subject.format(patient=patient)
    prefetch = prefetch_from_server(
        target.fhir.base_url,
        {"patientId": patient, "userId": "Practitioner/example"},
        SELECT_ID,
        headers=target.fhir.auth_headers,
    )
    honest = target.call(target.order_body(patient_id=patient, prefetch=prefetch))
    assert honest.status_code == 200
    assert honest.json()["cards"], "the example patient's own data gives a card"
    forged = {k: _with_subject(v, subject) if v else v for k, v in prefetch.items()}
    body = target.order_body(patient_id=patient, prefetch=forged)
    response = target.call(body)
    # every resource of a key someone else's: read as not prefetched, and with no
    # fhirServer to fetch them from, the keys are named (never "no infection", no card)
    assert response.status_code == 412, response.text
    forged_keys = {k for k, v in forged.items() if v and v.get("entry")}
    missing = {m["key"]: m["reason"] for m in response.json()["missing"]}
    assert forged_keys and forged_keys <= set(missing)
    assert all("no resource linked to this patient" in missing[k] for k in forged_keys)

    def read() -> tuple[str] | None:
        with sqlite3.connect(target.db_path) as db:
            row: tuple[str] | None = db.execute(
                "SELECT detail FROM audit_log WHERE hook_instance = ?", (body["hookInstance"],)
            ).fetchone()
        return row

    row = eventually(read, lambda found: found is not None)
    assert row is not None
    (detail,) = row
    assert "no resource linked to this patient" in detail


# --------------------------------------------------------------------------
# Found on the way: fhirServer allowlist, refusals in the audit, preflights in metrics,
# gunicorn's control socket.


@pytest.mark.parametrize(
    "server",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:{near}/fhir",
        "http://localhost:{fhir_port}/fhir",  # the same server by another name: not listed
    ],
)
def test_a_client_with_a_fhir_server_allowlist_cannot_name_another_server(
    limited: Target, server: str
) -> None:
    target = limited
    target.near.clear()
    fhir_port = target.fhir.base_url.split(":")[2].split("/")[0]
    url = server.format(near=target.near.port, fhir_port=fhir_port)
    body = target.order_body(fhir_server=url, access_token=target.access_token())
    response = target.call(body)
    assert response.status_code == 400
    assert [d["path"] for d in response.json()["details"]] == ["$.fhirServer"]
    assert target.near.seen == []


def test_a_client_with_a_fhir_server_allowlist_may_name_a_listed_one(limited: Target) -> None:
    target = limited
    body = target.order_body(
        patient_id=EXAMPLE.patient_id,
        fhir_server=target.fhir.base_url + "/",  # the listed URL spelled with a slash
        access_token=target.secrets[0],  # the FHIR test server's own token
    )
    response = target.call(body)
    assert response.status_code == 200, response.text


def test_refusals_are_audited_with_reason_and_trusted_issuer_never_the_token(
    target: Target,
) -> None:
    wrong_aud = target.client_jwt(aud=target.service.url + "/elsewhere")
    forged_iss = target.client_jwt(iss="https://evil.example/" + uuid.uuid4().hex)
    for token in (wrong_aud, forged_iss, "not-a-jwt"):
        response = target.call(
            target.order_body(prefetch=EMPTY_PREFETCH), Authorization=f"Bearer {token}"
        )
        assert response.status_code == 401
    with sqlite3.connect(target.db_path) as db:
        rows = db.execute("SELECT reason, issuer FROM audit_refusals WHERE status = 401").fetchall()
    reasons = set(rows)  # counted per minute and reason (tests/test_attacks_audit.py)
    assert ("wrong-audience", ISS) in reasons
    assert ("unknown-issuer", "-") in reasons
    assert ("malformed", "-") in reasons
    assert "evil.example" not in json.dumps(rows)


def test_cors_preflights_are_counted_apart_from_hook_calls(target: Target) -> None:
    def invoke_200s() -> float:
        text = requests.get(target.service.url + "/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("spine_cds_requests_total{")
            and 'endpoint="hooks.invoke"' in line
            and 'status="200"' in line
        )

    before = invoke_200s()
    for _ in range(3):
        preflight = requests.options(
            target.hook_url,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=10,
        )
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert invoke_200s() == before
    text = requests.get(target.service.url + "/metrics", timeout=10).text
    assert 'endpoint="cors.preflight"' in text


def test_gunicorn_opens_no_control_socket(target: Target) -> None:
    assert list(target.home.rglob("*")) == []


# --------------------------------------------------------------------------
# Attacks the service withstood from the start, kept so that it goes on withstanding them.


def test_unsigned_symmetric_and_foreign_key_tokens_are_refused(target: Target) -> None:
    now = int(time.time())
    claims = {"iss": ISS, "aud": target.hook_url, "iat": now, "exp": now + 60}
    public_pem = target.key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    forged = [
        jwt.encode({**claims, "jti": str(uuid.uuid4())}, None, algorithm="none"),
        _hs256({**claims, "jti": str(uuid.uuid4())}, public_pem, target.kid),
        jwt.encode(
            {**claims, "jti": str(uuid.uuid4())},
            ec.generate_private_key(ec.SECP384R1()),
            algorithm="ES384",
            headers={"kid": target.kid},
        ),
    ]
    for token in forged:
        target.secrets.append(token)
        response = target.call(
            target.order_body(prefetch=EMPTY_PREFETCH), Authorization=f"Bearer {token}"
        )
        assert response.status_code == 401


@pytest.mark.parametrize("length", [9_000, 16_384])
def test_a_long_token_is_refused_by_the_service_in_its_words(target: Target, length: int) -> None:
    """Up to the longest token the verifier reads, gunicorn passes the header on and the
    refusal is the service's (JSON, a request id). Tokens over 8 KB once got gunicorn's
    own HTML 431."""
    token = "a" * (length - 2) + ".."
    response = target.call(
        target.order_body(prefetch=EMPTY_PREFETCH), Authorization=f"Bearer {token}"
    )
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers.get("X-Request-Id")


def test_nginx_passes_on_an_authorization_header_as_long_as_the_service_reads() -> None:
    from cds_service.server import AUTHORIZATION_FIELD_BYTES

    conf = (ROOT / "deploy" / "nginx" / "spine-cds.conf").read_text(encoding="utf-8")
    match = re.search(r"large_client_header_buffers\s+\d+\s+(\d+)k;", conf)
    assert match is not None
    assert int(match.group(1)) * 1024 >= AUTHORIZATION_FIELD_BYTES


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token keyed with the public key's PEM (key confusion), built by hand:
    PyJWT refuses to use a PEM as an HMAC secret."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def test_a_replayed_token_is_refused(target: Target) -> None:
    token = target.client_jwt()
    body = target.order_body(prefetch=EMPTY_PREFETCH)
    headers = {"Authorization": f"Bearer {token}"}
    first = requests.post(target.hook_url, json=body, headers=headers, timeout=15)
    again = requests.post(target.hook_url, json=body, headers=headers, timeout=15)
    assert (first.status_code, again.status_code) == (200, 401)


def test_cors_from_an_unlisted_origin_gets_no_allow_origin(target: Target) -> None:
    preflight = requests.options(
        target.hook_url,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


# --------------------------------------------------------------------------
# After every attack: no token, JWT or patient id in the log or the database.


def test_zz_after_all_attacks_no_token_or_patient_id_in_log_or_database(
    target: Target,
) -> None:
    assert len(target.secrets) > 50 and len(target.patient_ids) > 20  # the suite ran first
    logged = target.log()
    assert "refused client JWT" in logged  # the log does say what happened
    with sqlite3.connect(target.db_path) as db:
        stored = "\n".join(db.iterdump())
    for secret in target.secrets:
        assert secret not in logged
        assert secret not in stored
    for patient in target.patient_ids:
        assert patient not in logged, patient
        assert patient not in stored, patient
