"""build_stores: the backends the settings choose, and two instances sharing them."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_service.settings import Settings, load_settings
from cds_service.stores import (
    AuditRecord,
    NullAuditStore,
    PostgresDatabase,
    RedisReplayCache,
    SqlAuditStore,
    SqliteDatabase,
    SqlReplayCache,
    StoreError,
    Stores,
    build_stores,
)
from spine_cds_dev.service_process import free_port
from tests.support.pg_server import PostgresServer


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    # Development mode: the patient-hash key may be generated into the database.
    values: dict[str, Any] = {
        "database_path": str(tmp_path / "spine-cds.sqlite3"),
        "dev_mode": True,
    }
    values.update(overrides)
    return load_settings(environ={}, overrides=values)


@pytest.fixture
def opened() -> Iterator[list[Stores]]:
    stores: list[Stores] = []
    yield stores
    for s in stores:
        s.close()


def audit_record(received_at: datetime, hook_instance: str) -> AuditRecord:
    return AuditRecord(
        hook_instance=hook_instance,
        service_id="spine-imaging-nvo",
        hook="order-select",
        received_at=received_at,
        patient_key=None,
        decision="not-applicable",
        reason="no-spine-imaging-order",
        rules_fired=(),
        counts={"orders": 0},
        data_sources={},
        card_uuids=(),
        status=200,
        latency_ms=1.0,
        fhir_ms=None,
        shadow=False,
    )


def feedback(card: str) -> dict[str, Any]:
    return {"card": card, "outcome": "accepted", "outcomeTimestamp": "2024-03-01T10:00:00Z"}


def test_the_default_is_one_sqlite_file_for_everything(
    tmp_path: Path, opened: list[Stores]
) -> None:
    stores = build_stores(settings(tmp_path))
    opened.append(stores)

    assert isinstance(stores.database, SqliteDatabase)
    assert isinstance(stores.replay, SqlReplayCache)
    assert isinstance(stores.audit.store, SqlAuditStore)
    assert stores.patient_key.mode == "hash"
    assert (tmp_path / "spine-cds.sqlite3").exists()


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # what most hosts give: files 0644 unless told otherwise
    yield
    os.umask(previous)


def test_the_sqlite_files_are_for_the_owner_only(
    tmp_path: Path, opened: list[Stores], usual_umask: None
) -> None:
    """They hold the audit (ids that often embed the patient's), the feedback, the replay
    cache and here the patient-hash key: an attack suite found them 0644, readable by any
    local user. SQLite gives its -wal and -shm files the database file's mode."""
    stores = build_stores(settings(tmp_path))
    opened.append(stores)
    stores.audit.record(audit_record(datetime.now(UTC), "h-1"))
    stores.audit.records()  # written: the -wal and -shm files exist
    names = ["spine-cds.sqlite3", "spine-cds.sqlite3-wal", "spine-cds.sqlite3-shm"]
    modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in names}
    assert modes == dict.fromkeys(names, 0o600)


def test_an_existing_sqlite_file_keeps_its_mode(
    tmp_path: Path, opened: list[Stores], usual_umask: None
) -> None:
    path = tmp_path / "spine-cds.sqlite3"
    path.touch(mode=0o640)  # an operator's choice (a backup job's group, say)
    opened.append(build_stores(settings(tmp_path)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_audit_can_be_switched_off(tmp_path: Path, opened: list[Stores]) -> None:
    stores = build_stores(settings(tmp_path, audit_enabled=False))
    opened.append(stores)
    stores.audit.record(audit_record(datetime.now(UTC), "h-1"))
    assert isinstance(stores.audit.store, NullAuditStore)
    assert stores.audit.records() == []


def test_retention_is_applied_at_startup(tmp_path: Path, opened: list[Stores]) -> None:
    first = build_stores(settings(tmp_path, audit_retention_days=30))
    opened.append(first)
    now = datetime.now(UTC)
    first.audit.record(audit_record(now - timedelta(days=31), "old"))
    first.audit.record(audit_record(now, "new"))
    assert len(first.audit.records()) == 2  # the first instance purged when it started

    second = build_stores(settings(tmp_path, audit_retention_days=30))
    opened.append(second)
    assert [r.hook_instance for r in second.audit.records()] == ["new"]
    assert second.audit.purge_expired() == 0  # as audit-purge asks it


def test_the_patient_key_is_the_same_after_a_restart(tmp_path: Path) -> None:
    first = build_stores(settings(tmp_path))
    key = first.patient_key("patient-1")
    first.close()
    second = build_stores(settings(tmp_path))
    try:
        assert second.patient_key("patient-1") == key
    finally:
        second.close()


def test_an_unreachable_database_stops_startup_with_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://spine:hunter2@127.0.0.1:{free_port()}/spine"
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as info:
        build_stores(settings(tmp_path, database_url=url))
    assert "hunter2" not in str(info.value)
    assert time.monotonic() - started < 30


def test_two_instances_share_postgresql_and_redis(
    tmp_path: Path, pg_server: PostgresServer, redis_url: str, opened: list[Stores]
) -> None:
    shared = {"database_url": pg_server.new_database(), "redis_url": redis_url}
    one = build_stores(settings(tmp_path / "one", **shared))
    two = build_stores(settings(tmp_path / "two", **shared))
    opened.extend([one, two])
    assert isinstance(one.database, PostgresDatabase)
    assert isinstance(one.replay, RedisReplayCache)

    # A token id used against the first instance is refused by the second.
    key = '["https://ehr.example.org", "jti-shared"]'
    assert one.replay.add_if_new(key, time.time() + 60) is True
    assert two.replay.add_if_new(key, time.time() + 60) is False

    # The patient hash agrees, and each sees the other's audit records.
    assert one.patient_key("patient-7") == two.patient_key("patient-7")
    one.audit.record(audit_record(datetime.now(UTC), "from-one"))
    assert [r.hook_instance for r in two.audit.records()] == ["from-one"]

    # Concurrent, overlapping feedback through both loses nothing.
    cards = [feedback(f"card-{i}") for i in range(30)]
    errors: list[BaseException] = []

    def send(stores: Stores, batch: list[dict[str, Any]]) -> None:
        try:
            for entry in batch:
                stores.feedback.add("spine-imaging-nvo", [entry])
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=send, args=(one, cards[:20])),
        threading.Thread(target=send, args=(two, cards[10:])),
        threading.Thread(target=send, args=(two, list(reversed(cards)))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    stored = sorted(row["entry"]["card"] for row in one.feedback.all())
    assert stored == sorted(c["card"] for c in cards)
