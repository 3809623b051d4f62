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
from collections.abc import Callable, Mapping, Sequence
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
MAX_LABEL_LENGTH = 100  # a refusal's endpoint, service, reason or issuer, as stored
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
    # Who was shown the cards: the trusted issuer (None: development mode). Kept in
    # ``audit_cards`` with each card uuid, not in ``audit_log``.
    client: str | None = None

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None or self.received_at.utcoffset() is None:
            raise ValueError("AuditRecord.received_at must be timezone-aware")
        if self.decision not in DECISIONS:
            raise ValueError(f"AuditRecord.decision {self.decision!r} is not one of {DECISIONS}")


@dataclass(frozen=True)
class Refusal:
    """A call refused before authentication (401): what is kept of it, as a count."""

    received_at: datetime
    endpoint: str
    service_id: str  # "-" when the path named no known service
    reason: str  # the verifier's reason code
    issuer: str  # a trusted issuer the token claimed, else "-" (never attacker text)
    status: int = 401


@dataclass(frozen=True)
class RefusalCount:
    """``audit_refusals``: how many refusals of one kind in one minute."""

    minute: datetime
    endpoint: str
    service_id: str
    reason: str
    issuer: str
    status: int
    count: int


def _label(value: str) -> str:
    """A refusal's label as stored: printable ASCII, bounded (never a new row per byte)."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in value)
    return clean[:MAX_LABEL_LENGTH] or "-"


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

    def record_refusal(self, refusal: Refusal) -> None:
        """Count one refused call in its minute; never raises."""
        ...

    def refusals(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[RefusalCount]:
        """The refusal counts of the minutes in ``[since, until)``, oldest first."""
        ...

    def card_shown_to(self, card_uuid: str, client: str | None, service_id: str) -> bool:
        """Whether the audit holds ``card_uuid`` as shown to ``client`` by ``service_id``."""
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


def _about_content(exc: Exception) -> bool:
    """Whether ``exc`` is about what a record holds (PEP 249's IntegrityError or DataError,
    as sqlite3 and psycopg name them), not about the database (locked, unreachable): only
    then is each record of a failed batch worth trying on its own."""
    return any(cls.__name__ in {"IntegrityError", "DataError"} for cls in type(exc).__mro__)


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
        """Store ``records`` in one transaction (the audit writer's batch); when that
        fails, each on its own, so one bad record costs only itself. How many were
        stored; never raises (a failure is logged and counted)."""
        stored = 0
        try:
            self._insert(records)
            stored = len(records)
        except Exception as exc:
            if len(records) == 1 or not _about_content(exc):
                for rec in records:
                    self._failed(rec, exc)
            else:
                for rec in records:
                    try:
                        self._insert([rec])
                        stored += 1
                    except Exception as each:
                        self._failed(rec, each)
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

    def _insert(self, records: Sequence[AuditRecord]) -> None:
        """One transaction: the records' rows, then every card shown, in key order (so
        that concurrent writers' upserts cannot deadlock)."""
        rows = [self._row(rec) for rec in records]
        cards = sorted(
            {
                (card, rec.client or ANONYMOUS_CLIENT, rec.service_id, row[3])
                for rec, row in zip(records, rows, strict=True)
                if rec.status == 200 and not rec.shadow
                for card in rec.card_uuids
            }
        )
        with self._db.transaction() as tx:
            tx.execute_many(_INSERT, rows)
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

    def record_refusal(self, refusal: Refusal) -> None:
        minute = refusal.received_at.replace(second=0, microsecond=0)
        row = (
            self._db.to_db_time(minute),
            _label(refusal.endpoint),
            _label(refusal.service_id),
            _label(refusal.reason),
            _label(refusal.issuer),
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
            detail=json.loads(detail),
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
