"""The decision audit: one row per invocation, what was decided and from what.

It answers "what did the service say for this hook instance, and why?" months
later: the decision, the rules that fired, how much data there was and where it came
from, the cards returned, timings and errors. It never holds tokens (any key that
names one is dropped from ``detail`` before storing) and names the patient only as
the ``PatientKeyer`` says (a keyed hash by default).

Recording must never break a request: ``record`` logs and counts a failure instead
of raising. Rows older than the retention period are purged at startup, at most once
an hour from ``record``, and on demand (``purge_expired``, for a CLI command).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from cds_service.stores.sql import Database

log = logging.getLogger("cds_service.audit")

DECISIONS = frozenset(
    {
        "advise-against",
        "support",
        "support-urgent",
        "insufficient-data",
        "not-applicable",
        "error",
    }
)
# Keys (compared in lower case) whose values are credentials and never stored.
TOKEN_KEYS = frozenset(
    {
        "access_token",
        "authorization",
        "fhirauthorization",
        "id_token",
        "refresh_token",
        "token",
        "jwt",
        "password",
        "client_secret",
    }
)
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
CREATE INDEX IF NOT EXISTS audit_log_hook_instance ON audit_log (hook_instance)
"""
COLUMNS = (
    "hook_instance, service_id, hook, received_at, patient_key, decision, reason,"
    " rules_fired, counts, data_sources, card_uuids, status, latency_ms, fhir_ms, shadow,"
    " detail"
)


@dataclass(frozen=True)
class AuditRecord:
    """One invocation as the audit keeps it; ``received_at`` must be timezone-aware."""

    hook_instance: str
    service_id: str
    hook: str
    received_at: datetime
    patient_key: str | None
    decision: str
    reason: str | None
    rules_fired: tuple[str, ...]
    counts: Mapping[str, int]
    data_sources: Mapping[str, str]
    card_uuids: tuple[str, ...]
    status: int
    latency_ms: float
    fhir_ms: float | None
    shadow: bool
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None or self.received_at.utcoffset() is None:
            raise ValueError("AuditRecord.received_at must be timezone-aware")
        if self.decision not in DECISIONS:
            raise ValueError(f"AuditRecord.decision {self.decision!r} is not one of {DECISIONS}")


class AuditStore(Protocol):
    def record(self, rec: AuditRecord) -> None:
        """Store one record; never raises (a failure is logged and counted)."""
        ...

    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRecord]:
        """Records with ``since <= received_at < until``, oldest first."""
        ...

    def purge(self, older_than: datetime) -> int:
        """Delete records received before ``older_than``; how many went."""
        ...


_LEAVES = frozenset({str, int, float, bool, type(None)})


def without_tokens(value: Any) -> Any:
    """``value`` with every mapping key that names a credential dropped, at any depth."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    # Leaves are tested inline: a detail holds thousands, and a call plus a Mapping
    # check for each made this walk cost more than the rest of the audit write.
    if kind is dict or isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = k if type(k) is str else str(k)
            if key.lower() not in TOKEN_KEYS:
                out[key] = v if type(v) in _LEAVES else without_tokens(v)
        return out
    if isinstance(value, list | tuple):
        return [v if type(v) in _LEAVES else without_tokens(v) for v in value]
    return value


_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _json(value: Any) -> str:
    """Compact JSON with sorted keys; orjson for speed (a detail is ~30 KB), the standard
    library for what orjson refuses (keys that are not strings, integers over 64 bits)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# The token keys that hold no other (a key containing "token" is caught by "token").
_TOKEN_WORDS = tuple(
    sorted(k for k in TOKEN_KEYS if not any(other != k and other in k for other in TOKEN_KEYS))
)


def _detail_json(detail: Mapping[str, Any]) -> str:
    """``detail`` as JSON without credentials. It is serialised first and walked only when
    the text holds a word that may be part of such a key, in any case: the walk costs
    several times the serialisation, and the engine's details never hold such a key."""
    text = _json(detail)
    lowered = text.lower()
    if any(word in lowered for word in _TOKEN_WORDS):
        text = _json(without_tokens(detail))
    return text


class SqlAuditStore:
    """The audit in the service's database (SQLite file or PostgreSQL)."""

    def __init__(
        self,
        db: Database,
        retention_days: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self._db = db
        self.retention = timedelta(days=retention_days)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_purge: float | None = None
        self.failures = 0  # records that could not be stored (for metrics)
        db.create_schema(SCHEMA)

    def record(self, rec: AuditRecord) -> None:
        try:
            self._insert(rec)
        except Exception as exc:
            with self._lock:
                self.failures += 1
            # The type and message only: no record contents in the log.
            log.error(
                "audit record not stored hook_instance=%s error=%s: %s",
                rec.hook_instance,
                type(exc).__name__,
                str(exc)[:200],
            )
        self._purge_if_due()

    def _insert(self, rec: AuditRecord) -> None:
        row = (
            rec.hook_instance,
            rec.service_id,
            rec.hook,
            self._db.to_db_time(rec.received_at),
            rec.patient_key,
            rec.decision,
            rec.reason,
            _json(list(rec.rules_fired)),
            _json(dict(rec.counts)),
            _json(dict(rec.data_sources)),
            _json(list(rec.card_uuids)),
            int(rec.status),
            float(rec.latency_ms),
            None if rec.fhir_ms is None else float(rec.fhir_ms),
            1 if rec.shadow else 0,
            _detail_json(rec.detail),
        )
        placeholders = ", ".join("?" * len(row))
        with self._db.transaction() as tx:
            tx.execute(f"INSERT INTO audit_log ({COLUMNS}) VALUES ({placeholders})", row)  # noqa: S608

    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRecord]:
        where: list[str] = []
        params: list[Any] = []
        if since is not None:
            where.append("received_at >= ?")
            params.append(self._db.to_db_time(since))
        if until is not None:
            where.append("received_at < ?")
            params.append(self._db.to_db_time(until))
        sql = f"SELECT {COLUMNS} FROM audit_log"  # noqa: S608 - constant column list
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY received_at, id"
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
            detail=json.loads(detail),
        )

    def purge(self, older_than: datetime) -> int:
        with self._db.transaction() as tx:
            return tx.execute(
                "DELETE FROM audit_log WHERE received_at < ?", (self._db.to_db_time(older_than),)
            )

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

    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRecord]:
        return []

    def purge(self, older_than: datetime) -> int:
        return 0

    def purge_expired(self) -> int:
        return 0
