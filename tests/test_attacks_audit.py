"""The attack suite, round three: the audit, the feedback endpoint, the report, the hash key.

Each attack runs against the real thing: ``spine-cds serve`` under gunicorn in secure
mode (real ES384 client keys, a real JWKS server) over real sockets, and the real
``spine-cds report`` and ``audit-purge`` commands in a child process. The service runs
once on SQLite and once on a real PostgreSQL, the two audit backends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

import cds_service
from cds_service.cards.identity import REMOVE_IMAGING, suggestion_uuid
from cds_service.stores import Database, PostgresDatabase, SqliteDatabase
from cds_service.stores.patientkey import hash_key_problem
from spine_cds_dev.service_process import ServiceProcess, ServiceStartError
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request
from tests.support.audit_wait import eventually, settled
from tests.support.ehr_calls import card_request
from tests.support.jwks_server import JwksServer

pytestmark = pytest.mark.integration
ISS_A = "https://ehr-a.example.org"
ISS_B = "https://ehr-b.example.org"
HOOK = f"/cds-services/{SELECT_ID}"
FEEDBACK = f"{HOOK}/feedback"
RETENTION_DAYS = 30


@dataclass
class Client:
    iss: str
    key: ec.EllipticCurvePrivateKey
    kid: str

    @classmethod
    def new(cls, iss: str) -> Client:
        return cls(iss, ec.generate_private_key(ec.SECP384R1()), uuid.uuid4().hex)

    def jwk(self) -> dict[str, Any]:
        public = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": "ES384"}

    def headers(self, url: str) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": self.iss, "aud": url, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
        token = jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": self.kid})
        return {"Authorization": f"Bearer {token}"}


@dataclass
class Target:
    service: ServiceProcess
    backend: str
    env: dict[str, str]  # the database settings, for the CLI
    a: Client
    b: Client
    open_db: Any

    def post(self, path: str, body: Any, client: Client | None = None) -> requests.Response:
        url = self.service.url + path
        headers = client.headers(url) if client else {}
        return requests.post(url, json=body, headers=headers, timeout=30)

    def card_for(self, client: Client, example: str) -> str:
        """The uuid of the card the service shows ``client`` for example patient ``example``
        (a card's uuid is stable: each test takes its own patient)."""
        answer = self.post(HOOK, card_request(example), client)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["cards"][0]["uuid"])

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db: Database = self.open_db()
        try:
            with db.transaction(write=False) as tx:
                return tx.query(sql, params)
        finally:
            db.close()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        db: Database = self.open_db()
        try:
            with db.transaction() as tx:
                tx.execute(sql, params)
        finally:
            db.close()

    def db_time(self, moment: datetime) -> Any:
        """``moment`` as the backend stores a timestamp column."""
        db: Database = self.open_db()
        try:
            return db.to_db_time(moment)
        finally:
            db.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args)


def run_cli(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``spine-cds <args>`` in a child process, with only these SPINE_CDS_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_CDS_")}
    env["PYTHONPATH"] = str(Path(cds_service.__file__).resolve().parent.parent)
    env.update(settings_env)
    return subprocess.run(
        [sys.executable, "-m", "cds_service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp(f"audit-{request.param}")
    a, b = Client.new(ISS_A), Client.new(ISS_B)
    if request.param == "sqlite":
        path = tmp / "db.sqlite3"
        db_env = {"SPINE_CDS_DATABASE_PATH": str(path)}

        def open_db() -> Database:
            return SqliteDatabase(path)
    else:
        url = request.getfixturevalue("pg_server").new_database()
        db_env = {"SPINE_CDS_DATABASE_URL": url, "SPINE_CDS_DATABASE_PATH": str(tmp / "unused")}

        def open_db() -> Database:
            return PostgresDatabase(url)

    db_env["SPINE_CDS_AUDIT_RETENTION_DAYS"] = str(RETENTION_DAYS)
    with JwksServer() as jwks:
        jwks.publish({"keys": [a.jwk(), b.jwk()]})
        clients = tmp / "clients.json"
        clients.write_text(
            json.dumps([{"iss": c.iss, "jwks_url": jwks.url()} for c in (a, b)]), encoding="utf-8"
        )
        env = {**db_env, "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients)}
        with ServiceProcess(env=env, args=(), log_path=tmp / "service.log") as service:
            yield Target(service, request.param, db_env, a, b, open_db)


# --------------------------------------------------------------------------
# Medium 3: calls refused before authentication are counted, never a row each.


def _metric(target: Target, name: str, **labels: str) -> float:
    text = requests.get(target.service.url + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_unauthenticated_calls_are_counted_per_minute_not_stored_one_row_each(
    target: Target,
) -> None:
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    before = _metric(target, "spine_cds_refusals_total", endpoint="hook", reason="malformed")
    # the records of earlier tests' calls have all arrived (they are stored after the answer)
    rows_before = settled(lambda: target.query("SELECT count(*) FROM audit_log")[0][0])
    url = target.service.url + HOOK
    with requests.Session() as session:
        for _ in range(150):
            answer = session.post(
                url, json=body, headers={"Authorization": "Bearer not-a-jwt"}, timeout=10
            )
            assert answer.status_code == 401
        for _ in range(50):
            assert session.post(url, json=body, timeout=10).status_code == 401

    assert target.query("SELECT count(*) FROM audit_log")[0][0] == rows_before
    counts = target.query(
        "SELECT reason, count FROM audit_refusals WHERE endpoint = 'hook' AND status = 401"
    )
    by_reason: dict[str, int] = {}
    for reason, count in counts:
        by_reason[reason] = by_reason.get(reason, 0) + int(count)
    assert by_reason["malformed"] >= 150 and by_reason["missing-token"] >= 50
    assert len(counts) <= 2 * 3 * 2  # two reasons, the minutes the burst spanned, each way
    after = _metric(target, "spine_cds_refusals_total", endpoint="hook", reason="malformed")
    assert after - before == 150


def test_refusals_count_neither_as_invocations_nor_in_the_latency_of_the_report(
    target: Target,
) -> None:
    # An older version's row for a refusal: the report must not count it either.
    target.execute(
        "INSERT INTO audit_log (hook_instance, service_id, hook, received_at, patient_key,"
        " decision, reason, rules_fired, counts, data_sources, card_uuids, status, latency_ms,"
        " fhir_ms, shadow, detail) VALUES ('-', ?, 'order-select', ?, NULL, 'error',"
        " 'unauthorized', '[]', '{}', '{}', '[]', 401, 0.0, NULL, 0, '{}')",
        (SELECT_ID, target.db_time(datetime.now(UTC))),
    )
    for _ in range(30):
        assert target.post(HOOK, {"hook": "order-select"}).status_code == 401
    body = card_request()
    answered = target.post(HOOK, body, target.a)
    assert answered.status_code == 200
    stored = "SELECT count(*) FROM audit_log WHERE hook_instance = ?"
    eventually(lambda: target.query(stored, (body["hookInstance"],))[0][0], lambda n: n == 1)

    done = target.cli("report", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    invocations = target.query("SELECT count(*) FROM audit_log WHERE status <> 401")[0][0]
    assert report["invocations"] == invocations
    assert "unauthorized" not in report["errorReasons"]
    assert report["latencyMs"]["p50"] > 0.0


# --------------------------------------------------------------------------
# Low, feedback: bounded, only the spec's fields, purged with the audit, one client's own.


def test_a_huge_feedback_body_is_refused_and_nothing_stored(target: Target) -> None:
    card = target.card_for(target.a, "e02-cauda-equina")
    entry = {"card": card, "outcome": "accepted", "outcomeTimestamp": "2026-11-26T10:00:00Z"}
    huge = {"feedback": [{**entry, "padding": "x" * (4_500_000)}]}
    answer = target.post(FEEDBACK, huge, target.a)
    assert answer.status_code == 413, answer.text[:300]
    assert "at most" in answer.json()["message"]
    longest = target.query("SELECT max(length(entry_json)) FROM feedback")[0][0]
    assert longest is None or longest < 10_000


def test_feedback_keeps_only_the_fields_of_the_spec(target: Target) -> None:
    card = target.card_for(target.a, "e03-plateau")
    entry = {
        "card": card,
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-26T10:01:00Z",
        "overrideReason": {
            "reason": {"system": "urn:x", "code": "c", "display": "d", "smuggled": "s1"},
            "userComment": "fine",
            "hidden": "s2",
        },
        "stash": "s4",
    }
    taken = target.card_for(target.a, "e01-improving")
    accepted = {
        "card": taken,
        "outcome": "accepted",
        "outcomeTimestamp": "2026-11-26T10:01:00Z",
        "acceptedSuggestions": [{"id": suggestion_uuid(taken, REMOVE_IMAGING), "extra": "s3"}],
    }
    answer = target.post(FEEDBACK, {"feedback": [entry, accepted]}, target.a)
    assert answer.status_code == 200, answer.text
    (stored,) = target.query("SELECT entry_json FROM feedback WHERE card_uuid = ?", (card,))
    kept = json.loads(stored[0])
    assert set(kept) == {"card", "outcome", "outcomeTimestamp", "overrideReason"}
    assert kept["overrideReason"] == {
        "reason": {"system": "urn:x", "code": "c", "display": "d"},
        "userComment": "fine",
    }
    (other,) = target.query("SELECT entry_json FROM feedback WHERE card_uuid = ?", (taken,))
    assert json.loads(other[0])["acceptedSuggestions"] == [
        {"id": suggestion_uuid(taken, REMOVE_IMAGING)}
    ]
    assert all(word not in stored[0] + other[0] for word in ("s1", "s2", "s3", "s4"))


def test_feedback_fields_are_bounded(target: Target) -> None:
    card = target.card_for(target.a, "e05-mixed-units")
    entry = {
        "card": card,
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-26T10:02:00Z",
        "overrideReason": {"reason": {"system": "urn:x", "code": "c", "display": "d" * 5000}},
    }
    answer = target.post(FEEDBACK, {"feedback": [entry]}, target.a)
    assert answer.status_code == 400
    paths = [d["path"] for d in answer.json()["details"]]
    assert any(p.endswith(".overrideReason.reason.display") for p in paths), paths


def test_a_client_cannot_give_feedback_on_another_clients_card(target: Target) -> None:
    card = target.card_for(target.a, "e06-single-crp")
    entry = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:03:00Z"}
    refused = target.post(FEEDBACK, {"feedback": [entry]}, target.b)
    assert refused.status_code == 400, refused.text
    problem = refused.json()
    assert problem["error"] == "unknown_card"
    assert problem["details"][0]["path"] == "$.feedback[0].card"
    assert "shown to your client" in problem["details"][0]["message"]
    assert target.query("SELECT count(*) FROM feedback WHERE card_uuid = ?", (card,)) == [(0,)]
    # A card nobody was shown is refused the same way; the owner's feedback is taken.
    unknown = dict(entry, card=str(uuid.uuid4()))
    assert target.post(FEEDBACK, {"feedback": [unknown]}, target.a).status_code == 400
    assert target.post(FEEDBACK, {"feedback": [entry]}, target.a).status_code == 200


def test_a_card_shown_to_the_client_is_known_in_upper_case_too(target: Target) -> None:
    """An attack review: the upper-case form of a card this client was shown got 400
    ``unknown_card`` (the audit keeps the card as the service wrote it, in lower case),
    while suggestion ids were compared in any case. Both are read in lower case now."""
    answer = target.post(HOOK, card_request("e01-improving"), target.a)
    assert answer.status_code == 200, answer.text
    card = answer.json()["cards"][0]
    assert card.get("suggestions"), card  # the improving patient's card offers one
    entry = {
        "card": card["uuid"].upper(),
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": s["uuid"].upper()} for s in card.get("suggestions", [])],
        "outcomeTimestamp": "2026-11-26T10:07:00Z",
    }
    taken = target.post(FEEDBACK, {"feedback": [entry]}, target.a)
    assert taken.status_code == 200, taken.text
    assert taken.json() == {"stored": 1, "duplicates": 0}
    lower = dict(
        entry,
        card=card["uuid"],
        acceptedSuggestions=[{"id": s["uuid"]} for s in card.get("suggestions", [])],
    )
    assert target.post(FEEDBACK, {"feedback": [lower]}, target.a).json() == {
        "stored": 0,
        "duplicates": 1,
    }
    assert target.query(
        "SELECT card_uuid FROM feedback WHERE outcome_timestamp = ?", ("2026-11-26T10:07:00Z",)
    ) == [(card["uuid"],)]
    # and another client is still refused, in any case
    refused = target.post(FEEDBACK, {"feedback": [entry]}, target.b)
    assert refused.status_code == 400 and refused.json()["error"] == "unknown_card"


def test_audit_purge_deletes_feedback_and_card_records_with_the_audit(target: Target) -> None:
    card = target.card_for(target.a, "e11-epidural-abscess")
    entry = {"card": card, "outcome": "accepted", "outcomeTimestamp": "2026-11-26T10:04:00Z"}
    assert target.post(FEEDBACK, {"feedback": [entry]}, target.a).status_code == 200
    old = datetime.now(UTC) - timedelta(days=RETENTION_DAYS + 5)
    target.execute(
        "UPDATE feedback SET received_at = ? WHERE card_uuid = ?",
        (old.isoformat(), card),
    )
    target.execute(
        "UPDATE audit_cards SET received_at = ? WHERE card_uuid = ?", (target.db_time(old), card)
    )
    target.execute("UPDATE audit_refusals SET minute = ?", (target.db_time(old),))

    done = target.cli("audit-purge")
    assert done.returncode == 0, done.stderr
    assert target.query("SELECT count(*) FROM feedback WHERE card_uuid = ?", (card,)) == [(0,)]
    assert target.query("SELECT count(*) FROM audit_cards WHERE card_uuid = ?", (card,)) == [(0,)]
    assert target.query("SELECT count(*) FROM audit_refusals") == [(0,)]
    assert "feedback" in done.stdout


# --------------------------------------------------------------------------
# Low, report: what a client sent is printed and drawn as text, never as commands.

HOSTILE_DISPLAY = (
    "\x1b[2J\x1b[31mPWNED\x1b[0m\nInvocations: 99999 (forged)\u202etxt.exe $\\undefinedcommand$"
)


def test_the_report_prints_and_draws_feedback_text_inert(target: Target, tmp_path: Path) -> None:
    card = target.card_for(target.a, "e01-improving")
    entry = {
        "card": card,
        "outcome": "overridden",
        # after this module's other feedback on the card: the report counts it with this
        "outcomeTimestamp": "2026-11-26T10:59:00Z",
        "overrideReason": {
            "reason": {
                "system": "urn:ehr:own-list",
                "code": "x\x1b]0;t\x07",
                "display": HOSTILE_DISPLAY,
            }
        },
    }
    assert target.post(FEEDBACK, {"feedback": [entry]}, target.a).status_code == 200

    text = target.cli("report")
    assert text.returncode == 0, text.stderr
    assert "PWNED" in text.stdout  # the reason is in the report, made inert
    for unsafe in ("\x1b", "\x07", "\u202e"):
        assert unsafe not in text.stdout
    assert not any(line.startswith("Invocations: 99999") for line in text.stdout.splitlines())
    as_json = target.cli("report", "--json")
    assert as_json.returncode == 0 and "\u202e" not in as_json.stdout

    png = tmp_path / "report.png"
    drawn = target.cli("report", "--png", str(png))
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------
# Low, audit hash key: never kept in the database outside development mode, never weak.


def _start_refused(tmp_path: Path, key_env: dict[str, str]) -> str:
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"), **key_env}
    service = ServiceProcess(env=env, args=(), log_path=tmp_path / "service.log")
    with pytest.raises(ServiceStartError) as refused:
        service.start()
    return str(refused.value)


def test_secure_mode_without_a_hash_key_refuses_to_start(tmp_path: Path) -> None:
    message = _start_refused(tmp_path, {"SPINE_CDS_AUDIT_HASH_KEY": ""})
    assert "audit_hash_key must be set outside development mode" in message
    assert "SPINE_CDS_AUDIT_HASH_KEY_FILE" in message
    db = SqliteDatabase(tmp_path / "db.sqlite3")
    try:
        with db.transaction(write=False) as tx:
            tables = tx.query("SELECT name FROM sqlite_master WHERE name = 'store_meta'")
    finally:
        db.close()
    assert tables == []  # no key was generated into the database


@pytest.mark.parametrize(
    ("key", "why"),
    [("CHANGE-ME", "at least 32"), ("k", "at least 32"), ("CHANGE-ME-" * 4, "placeholder")],
)
def test_a_placeholder_or_short_hash_key_refuses_to_start(
    tmp_path: Path, key: str, why: str
) -> None:
    secret = tmp_path / "audit-hash-key"
    secret.write_text(key + "\n", encoding="utf-8")
    message = _start_refused(tmp_path, {"SPINE_CDS_AUDIT_HASH_KEY_FILE": str(secret)})
    assert "audit_hash_key" in message and why in message
    assert len(key) < 3 or key not in message.replace("such as CHANGE-ME or", "")  # not quoted


def test_the_shipped_deploy_files_give_a_usable_key_or_a_refused_placeholder(
    tmp_path: Path,
) -> None:
    """compose's key, made on first run by make-secrets.sh, must pass; the Kubernetes
    example's placeholder must stop a deployment that applies it unchanged."""
    root = Path(__file__).resolve().parents[1]
    compose = yaml.safe_load((root / "deploy/compose/compose.yaml").read_text(encoding="utf-8"))
    secrets = tmp_path / "secrets"
    subprocess.run(
        ["sh", str(root / "deploy/compose/make-secrets.sh"), str(secrets)],
        check=True,
        capture_output=True,
    )
    key_file = secrets / Path(compose["secrets"]["audit-hash-key"]["file"]).name
    assert hash_key_problem(key_file.read_text(encoding="utf-8").rstrip("\n")) is None
    example = yaml.safe_load(
        (root / "deploy/kubernetes/secret.example.yaml").read_text(encoding="utf-8")
    )
    problem = hash_key_problem(example["stringData"]["audit-hash-key"])
    assert problem is not None and "placeholder" in problem
