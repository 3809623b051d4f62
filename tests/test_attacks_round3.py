"""The attack suite, round three (issue 24): record text in the card's markdown, passwords
at startup, error bodies that echo the client, and clients without ``fhir_servers``.

As in ``test_attacks.py``: one gunicorn service in secure mode (real ES384 keys, a real
JWKS server, a site value set), attacked over real sockets; the password attacks start
their own service, or run ``report`` and ``audit-purge``, with real PostgreSQL and Redis
where the attack needs the service to start.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from markdown_it import MarkdownIt

from cds_service.discovery import load_discovery
from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
from cds_service.examples import Example, load_examples
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.audit_wait import eventually
from tests.support.jwks_server import JwksServer
from tests.support.link_server import LinkServer
from tests.support.pg_server import running_postgres
from tests.support.redis_server import running_redis

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
ISS = "https://ehr.example.org"
SITE_SYSTEM = "http://hospital.example.org/fhir/CodeSystem/local-problems"
SITE_CODE = "NEURO-7"  # a site's own neurologic-deficit code, listed without a name

# What someone who can write to the record puts in a display, a status or an intent
# (under the 200 characters a card quotes).
PAYLOAD = (
    "\u202ereversed\u2066\x1b[31m [open](https://evil.example/p) ![x](https://evil.example/i) "
    '<img src=x onerror="alert(1)"> **urgent** `code` | cell | &#x202e; www.evil.example'
    "\n# Heading"
)
SHORT = "[x](https://e.io) \u202erev\x1b[1m"  # short enough to be named in the summary
# Characters no card text may carry: ESC and the other C0/C1 controls, bidi overrides and
# isolates, zero-width and line separators.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


@dataclass
class Target:
    """The secure service under attack; its one client has no ``fhir_servers``."""

    service: ServiceProcess
    near: LinkServer  # a FHIR-like server on loopback that records every request
    key: ec.EllipticCurvePrivateKey
    kid: str
    log_path: Path
    db_path: Path

    @property
    def hook_url(self) -> str:
        return f"{self.service.url}/cds-services/{SELECT_ID}"

    def client_jwt(self) -> str:
        now = int(time.time())
        claims = {
            "iss": ISS,
            "aud": self.hook_url,
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self.kid, "typ": "JWT"}
        return jwt.encode(claims, self.key, algorithm="ES384", headers=headers)

    def call(self, body: dict[str, Any] | bytes) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.client_jwt()}"}
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/json"
            return requests.post(self.hook_url, data=body, headers=headers, timeout=30)
        return requests.post(self.hook_url, json=body, headers=headers, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("round3")
    key = ec.generate_private_key(ec.SECP384R1())
    kid = uuid.uuid4().hex
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "ES384"}
    site = tmp / "valuesets"
    site.mkdir()
    entry = {
        "system": SITE_SYSTEM,
        "code": SITE_CODE,
        "match": "exact",
        "category": "neuro-deficit",
        "verified": False,
    }
    site_file = {"valueSet": "conditions", "source": "a site's own list", "entries": [entry]}
    (site / "site-conditions.json").write_text(json.dumps(site_file))
    with JwksServer() as jwks, LinkServer() as near:
        jwks.publish({"keys": [jwk]})
        clients = tmp / "clients.json"
        clients.write_text(json.dumps([{"iss": ISS, "jwks_url": jwks.url()}]))
        env = {
            "HOME": str(tmp),
            "SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3"),
            "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
            "SPINE_CDS_VALUESET_DIR": str(site),
            "SPINE_CDS_FHIR_BUDGET_SECONDS": "3",
            "SPINE_CDS_FHIR_READ_TIMEOUT_SECONDS": "2",
            "SPINE_CDS_FHIR_CONNECT_TIMEOUT_SECONDS": "1",
        }
        log_path = tmp / "service.log"
        with ServiceProcess(env=env, args=(), log_path=log_path) as service:
            yield Target(service, near, key, kid, log_path, tmp / "db.sqlite3")


# --------------------------------------------------------------------------
# Medium 1. Text from the record is quoted in the card's markdown; no control or bidi
# character reaches any card text.


def _example(key: str) -> Example:
    """An example patient under a fresh id (so that runs do not meet)."""
    example = next(e for e in load_examples(date.today()) if e.key == key)
    patient = "pt-" + uuid.uuid4().hex[:16]
    bundle = json.loads(json.dumps(example.bundle).replace(example.patient_id, patient))
    order = json.loads(json.dumps(example.draft_order).replace(example.patient_id, patient))
    return dataclasses.replace(example, patient_id=patient, bundle=bundle, draft_order=order)


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _deficit_display(bundle: dict[str, Any], display: str = PAYLOAD) -> None:
    """The cauda equina Condition coded with the site's nameless code, its display the
    attacker's: the card names the deficit from the record."""
    for condition in _resources(bundle, "Condition"):
        if condition["code"]["coding"][0]["code"] == "G83.4":
            condition["code"] = {
                "coding": [{"system": SITE_SYSTEM, "code": SITE_CODE, "display": display}]
            }


def _observation_status(bundle: dict[str, Any]) -> None:
    """A CRP's status written by the attacker: the card says why it was not used."""
    crp = [o for o in _resources(bundle, "Observation") if "1988-5" in json.dumps(o["code"])]
    crp[0]["status"] = PAYLOAD


def _order_intent(bundle: dict[str, Any]) -> None:
    """An antibiotic order's intent written by the attacker."""
    _resources(bundle, "MedicationRequest")[0]["intent"] = PAYLOAD


POISONS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "condition-display": ("e02-cauda-equina", _deficit_display),
    "observation-status": ("e01-improving", _observation_status),
    "order-intent": ("e18-antibiotic-start", _order_intent),
}


def _body(example: Example) -> dict[str, Any]:
    request = build_request(
        "order-select", str(uuid.uuid4()), example.patient_id, example.draft_order
    )
    templates = load_discovery().services[SELECT_ID].prefetch
    request["prefetch"] = local_prefetch(
        templates, request["context"], bundle_resources(example.bundle)
    )
    return request


def _rendered(markdown: str) -> str:
    """The detail as an EHR that renders CommonMark with raw HTML on shows it."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def _all_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _all_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _all_strings(item)


@pytest.mark.parametrize("where", sorted(POISONS))
def test_record_text_is_quoted_in_the_detail_and_never_carries_controls(
    target: Target, where: str
) -> None:
    key, poison = POISONS[where]
    example = _example(key)
    poison(example.bundle)
    response = target.call(_body(example))
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    detail, summary = card["detail"], card["summary"]
    assert "reversed" in detail, "the record's text is on the card, quoted"
    html = _rendered(detail)
    assert "evil.example" in html  # shown as text ...
    assert 'href="https://evil.example' not in html  # ... never as a link
    assert "<img" not in html and "onerror=" not in html.replace("onerror=&quot;", "")
    assert "<h1>" not in html and "<code>code</code>" not in html
    assert "<strong>urgent</strong>" not in html
    for text in _all_strings(card):
        assert not FORBIDDEN.search(text), f"{where}: control or bidi character in {text!r}"
    assert "\\" not in summary, "the summary is plain text, without markdown escapes"


def test_a_condition_named_only_by_the_record_reads_plain_in_the_summary(
    target: Target,
) -> None:
    example = _example("e02-cauda-equina")
    _deficit_display(example.bundle, SHORT)
    response = target.call(_body(example))
    (card,) = response.json()["cards"]
    assert card["indicator"] == "critical"
    assert "[x](https://e.io) rev" in card["summary"], card["summary"]
    assert "\\[x\\]" in card["detail"]


# --------------------------------------------------------------------------
# Low. A 400 repeats a bounded part of what the client sent.


def test_a_huge_property_name_is_not_echoed_in_the_error_or_the_audit(target: Target) -> None:
    example = _example("e01-improving")
    body = _body(example)
    name = "n" * (4_600_000)
    body["prefetch"][name] = 5  # a prefetch entry must be an object: refused at its path
    raw = json.dumps(body).encode()
    response = target.call(raw)
    assert response.status_code == 400
    assert len(response.content) < 10_000, len(response.content)
    paths = [d["path"] for d in response.json()["details"]]
    assert any(p.startswith("$.prefetch.nnnn") for p in paths), paths  # which field ...
    assert any("expected" in d["message"] for d in response.json()["details"])  # ... and what

    def read() -> tuple[int, int]:
        with sqlite3.connect(target.db_path) as db:
            found: tuple[int, int] = db.execute(
                "SELECT count(*), max(length(detail)) FROM audit_log WHERE hook_instance = ?",
                (body["hookInstance"],),
            ).fetchone()
        return found

    count, longest = eventually(read, lambda found: found[0] > 0)
    assert count == 1  # the refused call is audited, its detail bounded
    assert longest < 20_000
    assert "n" * 1000 not in target.log()


def test_many_property_names_are_echoed_bounded(target: Target) -> None:
    example = _example("e01-improving")
    body = _body(example)
    for i in range(200):
        body["prefetch"][f"{i:05d}" + "m" * 10_000] = i
    response = target.call(json.dumps(body).encode())
    assert response.status_code == 400
    assert len(response.content) < 10_000, len(response.content)


# --------------------------------------------------------------------------
# Low. A client without fhir_servers: warned about at startup, and its EHR token never
# sent to a loopback, private or link-local address.


def test_startup_warns_about_a_client_without_fhir_servers(target: Target) -> None:
    assert f"trusted client {ISS} has no fhir_servers" in target.log()


@pytest.mark.parametrize(
    "server",
    [
        "http://127.0.0.1:{near}/fhir",
        "http://localhost:{near}/fhir",
        "http://127.1:{near}/fhir",
        "http://2130706433:{near}/fhir",
        "http://[::ffff:127.0.0.1]:{near}/fhir",
        # IPv6 forms that carry a private IPv4 address (an integration tester): IPv4-
        # compatible, NAT64 (well-known and local-use prefixes), 6to4
        "http://[::127.0.0.1]:{near}/fhir",
        "http://[64:ff9b::7f00:1]:{near}/fhir",
        "http://[64:ff9b:1::a00:1]/fhir",
        "http://[2002:a9fe:a9fe::]/latest/meta-data",
        # Teredo carrying 169.254.169.254 (its client address is stored inverted), and
        # the deprecated site-local prefix (an attack review)
        "http://[2001::5601:5601]/latest/meta-data",
        "http://[fec0::1]/fhir",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/fhir",
    ],
)
def test_a_client_without_fhir_servers_cannot_name_a_loopback_or_private_server(
    target: Target, server: str
) -> None:
    target.near.clear()
    example = _example("e01-improving")
    token = "ehr-access-" + uuid.uuid4().hex
    body = build_request(
        "order-select",
        str(uuid.uuid4()),
        example.patient_id,
        example.draft_order,
        None,  # no prefetch: the service would fetch with the EHR's token
        server.format(near=target.near.port),
        token,
    )
    response = target.call(body)
    assert response.status_code == 400, response.text
    (detail,) = response.json()["details"]
    assert detail["path"] == "$.fhirServer"
    assert "fhir_servers" in detail["message"]  # says what to do
    assert target.near.seen == []
    assert token not in target.log()


# --------------------------------------------------------------------------
# Medium 4. No password reaches the startup lines, report or audit-purge, whatever its form.

SECRET = "S3cret-" + uuid.uuid4().hex[:12]


def _serve_log(tmp_path: Path, env: dict[str, str]) -> tuple[bool, str]:
    """Start the service (secure mode, no client) with ``env``; whether it started, and its
    log (the startup lines or the refusal)."""
    clients = tmp_path / "clients.json"
    clients.write_text("[]")
    env = {
        "HOME": str(tmp_path),
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        **env,
    }
    log_path = tmp_path / "service.log"
    service = ServiceProcess(env=env, args=(), log_path=log_path)
    try:
        service.start(timeout=30)
        started = True
    except RuntimeError:
        started = False
    finally:
        service.stop()
    return started, log_path.read_text(encoding="utf-8", errors="replace")


def _command(tmp_path: Path, command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``spine-cds report`` or ``audit-purge`` with these settings."""
    full = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "cds_service", command],
        capture_output=True,
        text=True,
        env=full,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def _secrets_file(tmp_path: Path) -> str:
    path = tmp_path / "db-password"
    path.write_text(SECRET + "\n")
    return str(path)


# Forms that stop the service: (environment, what the refusal still says).
REFUSED: dict[str, tuple[Callable[[Path], dict[str, str]], str]] = {
    "database-query-password": (
        lambda _: {
            "SPINE_CDS_DATABASE_URL": f"postgresql://spine@127.0.0.1:1/db?password={SECRET}"
        },
        "cannot connect to PostgreSQL",
    ),
    "database-badly-encoded-password": (
        lambda _: {"SPINE_CDS_DATABASE_URL": f"postgresql://spine:p%zz{SECRET}@127.0.0.1:1/db"},
        "invalid percent-encoded token",
    ),
    "file-variable-with-another-secret": (
        lambda tmp: {"SPINE_CDS_FHIR_MAX_PAGES_FILE": _secrets_file(tmp)},
        "SPINE_CDS_FHIR_MAX_PAGES_FILE: expected an integer",
    ),
}


@pytest.mark.parametrize("form", sorted(REFUSED))
def test_a_refused_start_never_prints_the_password(tmp_path: Path, form: str) -> None:
    env, said = REFUSED[form]
    started, log = _serve_log(tmp_path, env(tmp_path))
    assert not started
    assert said in log  # the error still says what is wrong
    assert SECRET not in log


@pytest.mark.parametrize("command", ["report", "audit-purge"])
@pytest.mark.parametrize("form", sorted(REFUSED))
def test_report_and_audit_purge_never_print_the_password(
    tmp_path: Path, form: str, command: str
) -> None:
    env, said = REFUSED[form]
    result = _command(tmp_path, command, env(tmp_path))
    assert result.returncode != 0
    assert said in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_the_startup_configuration_line_hides_a_redis_password_in_the_query(
    tmp_path: Path,
) -> None:
    with running_redis(password=SECRET) as redis_url:
        started, log = _serve_log(
            tmp_path, {"SPINE_CDS_REDIS_URL": f"{redis_url}?password={SECRET}"}
        )
    assert started, log
    assert "effective configuration" in log and "password=***" in log
    assert SECRET not in log


def test_the_startup_configuration_line_hides_a_database_password_in_the_query(
    tmp_path: Path,
) -> None:
    with running_postgres() as pg:
        url = f"{pg.new_database()}?password={SECRET}"
        started, log = _serve_log(tmp_path, {"SPINE_CDS_DATABASE_URL": url})
        report = _command(tmp_path, "report", {"SPINE_CDS_DATABASE_URL": url})
        purge = _command(tmp_path, "audit-purge", {"SPINE_CDS_DATABASE_URL": url})
    assert started, log
    assert "effective configuration" in log and "password=***" in log
    assert SECRET not in log
    for result in (report, purge):
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr
