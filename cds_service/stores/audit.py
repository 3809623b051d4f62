"""The decision audit: one row per invocation, what was decided and from what.

It answers "what did the service say for this hook instance, and why?" months
later: the decision, the rules that fired, how much data there was and where it came
from, the cards returned, timings and errors. It never holds tokens (any key that
names one is dropped from ``detail`` before storing) and names the patient only as
the ``PatientKeyer`` says (a keyed hash by default).

Three tables:

- ``audit_log``: one row per invocation by an authenticated client (or any caller in
  development mode);
- ``audit_cards``: each card uuid with the client it was shown to, so that feedback
  on a card is taken only from that client (``card_shown_to``);
- ``audit_refusals``: calls refused before authentication (401), only as counts per
  minute, endpoint, service, reason and trusted issuer. Anyone can send those calls,
  so a row each would let anyone fill the disk and skew the report; a count per
  minute and reason is bounded whatever the rate.

Recording must never break a request: ``record`` logs and counts a failure instead
of raising. Rows older than the retention period are purged at startup, at most once
an hour from ``record``, and on demand (``purge_expired``, for a CLI command); what is
kept with the audit (the feedback store) is purged with it (``also_purge``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cds_service.stores.audit_records import (
    DECISIONS,
    TOKEN_KEYS,
    AuditRecord,
    AuditStore,
    Refusal,
    RefusalCount,
    detail_json,
    label,
    to_json,
    without_tokens,
)
from cds_service.stores.sql import Database, about_content

# What callers import from here (the records live in audit_records.py).
__all__ = ["DECISIONS", "TOKEN_KEYS", "AuditRecord", "AuditStore", "NullAuditStore", "Refusal"]
__all__ += ["RefusalCount", "SqlAuditStore", "without_tokens"]

log = logging.getLogger("cds_service.audit")

PURGE_INTERVAL_SECONDS = 3600.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id {id},
    hook_instance TEXT NOT NULL,
    service_id TEXT NOT NULL,
    hook TEXT NOT NULL,
    received_at {ts} NOT NULL,
    patient_key TEXT,
    decision TEXT NOT NULL,
    reason TEXT,
    rules_fired TEXT NOT NULL,
    counts TEXT NOT NULL,
    data_sources TEXT NOT NULL,
    card_uuids TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms {float} NOT NULL,
    fhir_ms {float},
    shadow INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_received ON audit_log (received_at);
CREATE INDEX IF NOT EXISTS audit_log_hook_instance ON audit_log (hook_instance);
CREATE TABLE IF NOT EXISTS audit_cards (
    card_uuid TEXT NOT NULL,
    client TEXT NOT NULL,
    service_id TEXT NOT NULL,
    received_at {ts} NOT NULL,
    PRIMARY KEY (card_uuid, client, service_id)
);
CREATE INDEX IF NOT EXISTS audit_cards_received ON audit_cards (received_at);
CREATE TABLE IF NOT EXISTS audit_refusals (
    minute {ts} NOT NULL,
    endpoint TEXT NOT NULL,
    service_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    issuer TEXT NOT NULL,
    status INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (minute, endpoint, service_id, reason, issuer, status)
)
"""
# The name a card's client goes by in development mode, where callers are not identified.
ANONYMOUS_CLIENT = "-"
REFUSAL_UPSERT = (
    "INSERT INTO audit_refusals (minute, endpoint, service_id, reason, issuer, status, count)"
    " VALUES (?, ?, ?, ?, ?, ?, 1)"
    " ON CONFLICT (minute, endpoint, service_id, reason, issuer, status)"
    " DO UPDATE SET count = audit_refusals.count + 1"
)
CARD_UPSERT = (
    "INSERT INTO audit_cards (card_uuid, client, service_id, received_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (card_uuid, client, service_id) DO UPDATE SET received_at = ?"
)
COLUMNS = (
    "hook_instance, service_id, hook, received_at, patient_key, decision, reason,"
    " rules_fired, counts, data_sources, card_uuids, status, latency_ms, fhir_ms, shadow,"
    " detail"
)
_INSERT = f"INSERT INTO audit_log ({COLUMNS}) VALUES ({', '.join('?' * 16)})"  # noqa: S608


class SqlAuditStore:
    """The audit in the service's database (SQLite file or PostgreSQL)."""

    def __init__(
        self,
        db: Database,
        retention_days: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        also_purge: Sequence[Callable[[datetime], int]] = (),
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self._db = db
        # What is kept with the audit and goes with it (the feedback store's purge).
        self._also_purge = tuple(also_purge)
        self.retention = timedelta(days=retention_days)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_purge: float | None = None
        self.failures = 0  # records that could not be stored (for metrics)
        db.create_schema(SCHEMA)

    def record(self, rec: AuditRecord) -> None:
        self.record_many([rec])

    def record_many(self, records: Sequence[AuditRecord]) -> int:
        """Store ``records`` in one transaction (the audit writer's batch). A record that
        cannot be written as a row fails alone; when the database refuses the batch for
        what a record holds, each is tried on its own, so one bad record costs only
        itself. How many were stored; never raises (a failure is logged and counted)."""
        rows: list[tuple[AuditRecord, tuple[Any, ...]]] = []
        for rec in records:
            try:
                rows.append((rec, self._row(rec)))
            except Exception as exc:
                self._failed(rec, exc)
        stored = 0
        try:
            self._insert(rows)
            stored = len(rows)
        except Exception as exc:
            if len(rows) == 1 or not about_content(exc):
                for rec, _ in rows:
                    self._failed(rec, exc)
            else:
                for pair in rows:
                    try:
                        self._insert([pair])
                        stored += 1
                    except Exception as each:
                        self._failed(pair[0], each)
        self._purge_if_due()
        return stored

    def _failed(self, rec: AuditRecord, exc: Exception) -> None:
        with self._lock:
            self.failures += 1
        # The type and message only: no record contents in the log.
        log.error(
            "audit record not stored hook_instance=%s error=%s: %s",
            rec.hook_instance,
            type(exc).__name__,
            str(exc)[:200],
        )

    def _insert(self, rows: Sequence[tuple[AuditRecord, tuple[Any, ...]]]) -> None:
        """One transaction: the records' rows, then every card shown, in key order (so
        that concurrent writers' upserts cannot deadlock)."""
        if not rows:
            return
        cards = sorted(
            {
                (card, rec.client or ANONYMOUS_CLIENT, rec.service_id, row[3])
                for rec, row in rows
                if rec.status == 200 and not rec.shadow
                for card in rec.card_uuids
            }
        )
        with self._db.transaction() as tx:
            tx.execute_many(_INSERT, [row for _, row in rows])
            if cards:
                tx.execute_many(CARD_UPSERT, [(*card, card[3]) for card in cards])

    def _row(self, rec: AuditRecord) -> tuple[Any, ...]:
        return (
            rec.hook_instance,
            rec.service_id,
            rec.hook,
            self._db.to_db_time(rec.received_at),
            rec.patient_key,
            rec.decision,
            rec.reason,
            to_json(list(rec.rules_fired)),
            to_json(dict(rec.counts)),
            to_json(dict(rec.data_sources)),
            to_json(list(rec.card_uuids)),
            int(rec.status),
            float(rec.latency_ms),
            None if rec.fhir_ms is None else float(rec.fhir_ms),
            1 if rec.shadow else 0,
            # the client it answered ("to whom"), in the detail: no column to migrate
            detail_json({**rec.detail, "client": rec.client} if rec.client else rec.detail),
        )

    def record_refusal(self, refusal: Refusal) -> None:
        minute = refusal.received_at.replace(second=0, microsecond=0)
        row = (
            self._db.to_db_time(minute),
            label(refusal.endpoint),
            label(refusal.service_id),
            label(refusal.reason),
            label(refusal.issuer),
            int(refusal.status),
        )
        try:
            with self._db.transaction() as tx:
                tx.execute(REFUSAL_UPSERT, row)
        except Exception as exc:
            with self._lock:
                self.failures += 1
            log.error("audit refusal count not stored error=%s", type(exc).__name__)
        self._purge_if_due()

    def refusals(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[RefusalCount]:
        where, params = self._period("minute", since, until)
        sql = (
            "SELECT minute, endpoint, service_id, reason, issuer, status, count"  # noqa: S608
            f" FROM audit_refusals{where} ORDER BY minute, endpoint, service_id, reason"
        )
        with self._db.transaction(write=False) as tx:
            rows = tx.query(sql, params)
        return [
            RefusalCount(
                self._db.from_db_time(minute), endpoint, service, reason, issuer, int(status), n
            )
            for minute, endpoint, service, reason, issuer, status, n in rows
        ]

    def card_shown_to(self, card_uuid: str, client: str | None, service_id: str) -> bool:
        with self._db.transaction(write=False) as tx:
            rows = tx.query(
                "SELECT 1 FROM audit_cards WHERE card_uuid = ? AND client = ? AND service_id = ?",
                (card_uuid, client or ANONYMOUS_CLIENT, service_id),
            )
        return bool(rows)

    def _period(
        self, column: str, since: datetime | None, until: datetime | None
    ) -> tuple[str, list[Any]]:
        """`` WHERE column >= since AND column < until`` (the parts given) and its params."""
        where: list[str] = []
        params: list[Any] = []
        if since is not None:
            where.append(f"{column} >= ?")
            params.append(self._db.to_db_time(since))
        if until is not None:
            where.append(f"{column} < ?")
            params.append(self._db.to_db_time(until))
        return (" WHERE " + " AND ".join(where) if where else ""), params

    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRecord]:
        where, params = self._period("received_at", since, until)
        sql = f"SELECT {COLUMNS} FROM audit_log{where} ORDER BY received_at, id"  # noqa: S608
        with self._db.transaction(write=False) as tx:
            rows = tx.query(sql, params)
        return [self._from_row(row) for row in rows]

    def _from_row(self, row: tuple[Any, ...]) -> AuditRecord:
        (
            hook_instance,
            service_id,
            hook,
            received_at,
            patient_key,
            decision,
            reason,
            rules_fired,
            counts,
            data_sources,
            card_uuids,
            status,
            latency_ms,
            fhir_ms,
            shadow,
            detail,
        ) = row
        return AuditRecord(
            hook_instance=hook_instance,
            service_id=service_id,
            hook=hook,
            received_at=self._db.from_db_time(received_at),
            patient_key=patient_key,
            decision=decision,
            reason=reason,
            rules_fired=tuple(json.loads(rules_fired)),
            counts=json.loads(counts),
            data_sources=json.loads(data_sources),
            card_uuids=tuple(json.loads(card_uuids)),
            status=int(status),
            latency_ms=float(latency_ms),
            fhir_ms=None if fhir_ms is None else float(fhir_ms),
            shadow=bool(shadow),
            detail=(read := json.loads(detail)),
            client=read.get("client") if isinstance(read.get("client"), str) else None,
        )

    def purge(self, older_than: datetime) -> int:
        """Delete what was received before ``older_than``: invocations, cards shown,
        refusal counts and what is kept with the audit; the invocations deleted."""
        cutoff = self._db.to_db_time(older_than)
        with self._db.transaction() as tx:
            deleted = tx.execute("DELETE FROM audit_log WHERE received_at < ?", (cutoff,))
            tx.execute("DELETE FROM audit_cards WHERE received_at < ?", (cutoff,))
            tx.execute("DELETE FROM audit_refusals WHERE minute < ?", (cutoff,))
        for purge in self._also_purge:
            purge(older_than)
        return deleted

    def purge_expired(self) -> int:
        """Delete records older than the retention period; how many went."""
        deleted = self.purge(self._clock() - self.retention)
        with self._lock:
            self._last_purge = self._monotonic()
        if deleted:
            log.info("audit retention: purged %d record(s) older than %s", deleted, self.retention)
        return deleted

    def _purge_if_due(self) -> None:
        with self._lock:
            last = self._last_purge
            due = last is None or self._monotonic() - last >= PURGE_INTERVAL_SECONDS
            if due:
                self._last_purge = self._monotonic()  # one thread purges, the others go on
        if not due:
            return
        try:
            self.purge_expired()
        except Exception as exc:
            log.error("audit retention purge failed error=%s: %s", type(exc).__name__, exc)


class NullAuditStore:
    """``audit_enabled = false``: nothing is recorded, nothing is kept."""

    failures = 0

    def record(self, rec: AuditRecord) -> None:
        return None

    def record_many(self, records: Sequence[AuditRecord]) -> int:
        return len(records)

    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRecord]:
        return []

    def purge(self, older_than: datetime) -> int:
        return 0

    def purge_expired(self) -> int:
        return 0

    def record_refusal(self, refusal: Refusal) -> None:
        return None

    def refusals(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[RefusalCount]:
        return []

    def card_shown_to(self, card_uuid: str, client: str | None, service_id: str) -> bool:
        """Nothing is kept, so nothing can be checked: feedback is taken as sent."""
        return True
