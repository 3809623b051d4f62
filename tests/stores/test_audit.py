"""The decision audit and the patient keyer on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cds_service.settings import SettingsError
from cds_service.stores import AuditRecord, Database, PatientKeyer, SqlAuditStore, SqliteDatabase
from cds_service.stores.patientkey import stored_hash_key
from cds_service.stores.sql import PostgresDatabase
from tests.conftest import Opener
from tests.support.pg_server import running_postgres

CONFIGURED_KEY = "configured-patient-hash-key-0123456789abcdef"
NOW = datetime(2024, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def record(**changes: Any) -> AuditRecord:
    base = AuditRecord(
        hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        service_id="spine-imaging-nvo",
        hook="order-sign",
        received_at=NOW,
        patient_key="3f2a",
        decision="advise-against",
        reason=None,
        rules_fired=("R1", "R4"),
        counts={"orders": 1, "conditions": 2, "measurements": 5, "issues": 0},
        data_sources={"conditions": "prefetch", "observations": "fetched", "patient": "null"},
        card_uuids=("5b0bb8a0-0d3e-4b0a-9a8c-7d1d0c4f0a01",),
        status=200,
        latency_ms=12.5,
        fhir_ms=None,
        shadow=False,
        detail={"decision": "advise-against", "thresholds": {"crp_fall": 0.5}},
    )
    return replace(base, **changes)


def audit_store(db: Database, retention_days: int = 90) -> SqlAuditStore:
    """A store whose wall clock reads NOW, so retention keeps the records written here."""
    return SqlAuditStore(db, retention_days=retention_days, clock=lambda: NOW)


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_record_reads_back_as_it_was_written(open_db: Opener) -> None:
    store = audit_store(open_db())
    written = [
        record(),
        record(
            hook_instance="h-2",
            received_at=NOW + timedelta(seconds=1),
            patient_key=None,
            decision="error",
            reason="412",
            rules_fired=(),
            counts={},
            data_sources={},
            card_uuids=(),
            status=412,
            latency_ms=3.0,
            fhir_ms=250.75,
            shadow=True,
            detail={},
        ),
    ]
    for rec in written:
        store.record(rec)

    assert audit_store(open_db()).records() == written
    assert store.failures == 0


def test_times_in_other_zones_are_kept_as_the_same_instant(open_db: Opener) -> None:
    store = audit_store(open_db())
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    store.record(record(received_at=plus_two))

    (read,) = store.records()
    assert read.received_at == NOW
    assert read.received_at.utcoffset() == timedelta(0)


def test_records_between_since_and_until(open_db: Opener) -> None:
    store = audit_store(open_db())
    for minutes in (0, 10, 20, 30):
        store.record(
            record(hook_instance=f"h{minutes}", received_at=NOW + timedelta(minutes=minutes))
        )

    found = store.records(since=NOW + timedelta(minutes=10), until=NOW + timedelta(minutes=30))
    assert [r.hook_instance for r in found] == ["h10", "h20"]
    assert [r.hook_instance for r in store.records(since=NOW + timedelta(minutes=25))] == ["h30"]
    assert [r.hook_instance for r in store.records(until=NOW + timedelta(minutes=1))] == ["h0"]


def test_purge_deletes_only_older_records(open_db: Opener) -> None:
    store = audit_store(open_db(), retention_days=365)  # retention itself does not purge here
    for days in (100, 91, 89, 0):
        store.record(record(hook_instance=f"d{days}", received_at=NOW - timedelta(days=days)))

    deleted = store.purge(NOW - timedelta(days=90))

    assert deleted == 2
    assert [r.hook_instance for r in store.records()] == ["d89", "d0"]


def test_retention_is_applied_on_demand_and_at_most_hourly_from_record(open_db: Opener) -> None:
    ticker = Ticker()
    store = SqlAuditStore(open_db(), retention_days=30, clock=lambda: NOW, monotonic=ticker)
    assert store.purge_expired() == 0  # as at startup

    store.record(record(hook_instance="old", received_at=NOW - timedelta(days=31)))
    ticker.now += 3599
    store.record(record(hook_instance="new", received_at=NOW))
    assert [r.hook_instance for r in store.records()] == ["old", "new"]  # not due yet

    ticker.now += 2
    store.record(record(hook_instance="newer", received_at=NOW))
    assert [r.hook_instance for r in store.records()] == ["new", "newer"]


def test_tokens_are_never_stored(open_db: Opener) -> None:
    db = open_db()
    store = audit_store(db)
    detail = {
        "fhirAuthorization": {"access_token": "secret-token-1", "token_type": "Bearer"},
        "requests": [{"Authorization": "Bearer secret-token-2", "url": "Observation"}],
        "kept": {"status": "ok"},
    }
    store.record(record(detail=detail))

    (read,) = store.records()
    assert read.detail == {"requests": [{"url": "Observation"}], "kept": {"status": "ok"}}
    with db.transaction(write=False) as tx:
        raw = repr(tx.query("SELECT * FROM audit_log"))
    assert "secret-token" not in raw


def test_a_failed_record_is_logged_and_counted_not_raised(
    open_db: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    db = open_db()
    store = audit_store(db)
    with db.transaction() as tx:
        tx.execute("DROP TABLE audit_log")

    with caplog.at_level(logging.ERROR, logger="cds_service.audit"):
        store.record(record(patient_key="patient-key-xyz"))

    assert store.failures == 1
    assert "audit record not stored" in caplog.text
    assert "patient-key-xyz" not in caplog.text


def test_a_record_needs_an_aware_time_and_a_known_decision() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        record(received_at=datetime(2024, 6, 1, 12, 0))
    with pytest.raises(ValueError, match="decision"):
        record(decision="maybe")


# ---------------------------------------------------------------- patient keyer


def test_the_same_id_gets_the_same_key_on_every_instance(open_db: Opener) -> None:
    first = PatientKeyer.for_database("hash", "", open_db(), dev_mode=True)
    second = PatientKeyer.for_database("hash", "", open_db(), dev_mode=True)

    key = first("patient-123")
    assert key is not None and key != "patient-123"
    assert second("patient-123") == key
    assert first("patient-124") != key
    assert len(key) == 64 and int(key, 16) >= 0


def test_instances_racing_to_create_the_key_agree(open_db: Opener) -> None:
    databases = [open_db() for _ in range(6)]
    keys: list[str] = []
    barrier = threading.Barrier(len(databases))

    def create(db: Database) -> None:
        barrier.wait()
        keys.append(stored_hash_key(db))

    threads = [threading.Thread(target=create, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(keys) == len(databases)
    assert len(set(keys)) == 1


def test_separate_databases_get_separate_keys(tmp_path: Path) -> None:
    one = PatientKeyer.for_database(
        "hash", "", SqliteDatabase(tmp_path / "one.sqlite3"), dev_mode=True
    )
    two = PatientKeyer.for_database(
        "hash", "", SqliteDatabase(tmp_path / "two.sqlite3"), dev_mode=True
    )
    assert one("patient-123") != two("patient-123")


def test_a_configured_key_is_used_instead_of_the_stored_one(open_db: Opener) -> None:
    db = open_db()
    keyer = PatientKeyer.for_database("hash", CONFIGURED_KEY, db)
    expected = hmac.new(CONFIGURED_KEY.encode(), b"patient-123", hashlib.sha256).hexdigest()
    assert keyer("patient-123") == expected
    assert PatientKeyer.for_database("hash", "", db, dev_mode=True)("patient-123") != expected


def test_outside_development_mode_no_key_is_generated_into_the_database(
    open_db: Opener,
) -> None:
    db = open_db()
    with pytest.raises(SettingsError, match="audit_hash_key must be set outside development"):
        PatientKeyer.for_database("hash", "", db)
    assert PatientKeyer.for_database("omit", "", db)("patient-123") is None  # no key needed


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("x", "is 1 characters long; at least 32"),
        ("CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME", "placeholder"),
        ("a" * 64, "fewer than 10 different characters"),
    ],
)
def test_short_placeholder_and_uniform_keys_are_refused(
    open_db: Opener, key: str, why: str
) -> None:
    with pytest.raises(SettingsError, match=why) as info:
        PatientKeyer.for_database("hash", key, open_db(), dev_mode=True)
    assert len(key) < 8 or key not in str(info.value)  # never quoted


def test_plain_and_omit_modes(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "stores.sqlite3")
    assert PatientKeyer.for_database("plain", "", db)("patient-123") == "patient-123"
    assert PatientKeyer.for_database("omit", "", db)("patient-123") is None
    with db.transaction(write=False) as tx:
        tables = tx.query("SELECT name FROM sqlite_master WHERE name = 'store_meta'")
    assert tables == [], "no key is generated unless ids are hashed"
    with pytest.raises(ValueError, match="audit_patient_id"):
        PatientKeyer("encrypt")


def test_the_key_is_not_shown(open_db: Opener) -> None:
    keyer = PatientKeyer.for_database("hash", CONFIGURED_KEY, open_db())
    assert CONFIGURED_KEY not in repr(keyer)


def test_an_outage_of_postgresql_does_not_break_the_request() -> None:
    with running_postgres() as server:
        db = PostgresDatabase(server.new_database())
        try:
            store = audit_store(db)
            store.record(record(hook_instance="before"))
            server.stop()

            started = time.monotonic()
            store.record(record(hook_instance="during"))
            assert store.failures == 1
            assert time.monotonic() - started < 10
        finally:
            db.close()
