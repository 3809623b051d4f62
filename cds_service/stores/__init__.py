"""Everything the service keeps between requests: feedback, decision audit, JWT replay.

The service is otherwise stateless, so several instances behind a load balancer
agree as long as they share these stores:

- feedback and audit (and the patient-hash key) live in one SQL database: the
  SQLite file at ``database_path`` by default, PostgreSQL when ``database_url`` is set;
- the JWT replay cache lives in that same database, or in Redis when ``redis_url`` is
  set.

Build once per process (``build_stores``) and close at shutdown. Stores must be built
after gunicorn forks its workers (connections must not cross a fork), which is how
the app factory runs today.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cds_service.settings import Settings
from cds_service.stores.audit import (
    AuditRecord,
    AuditStore,
    NullAuditStore,
    SqlAuditStore,
    without_tokens,
)
from cds_service.stores.audit_queue import AuditQueue, Counts
from cds_service.stores.feedback import FeedbackStore, SqlFeedbackStore, StoreResult, dedupe_key
from cds_service.stores.patientkey import PatientKeyer
from cds_service.stores.replay import RedisReplayCache, ReplayCache, SqlReplayCache
from cds_service.stores.sql import (
    Database,
    PostgresDatabase,
    SqliteDatabase,
    StoreError,
    open_database,
)

__all__ = [
    "AuditQueue",
    "AuditRecord",
    "AuditStore",
    "Database",
    "FeedbackStore",
    "NullAuditStore",
    "PatientKeyer",
    "PostgresDatabase",
    "RedisReplayCache",
    "ReplayCache",
    "SqlAuditStore",
    "SqlFeedbackStore",
    "SqlReplayCache",
    "SqliteDatabase",
    "StoreError",
    "StoreResult",
    "Stores",
    "build_stores",
    "dedupe_key",
    "without_tokens",
]

log = logging.getLogger("cds_service.stores")


@dataclass(frozen=True)
class Stores:
    feedback: FeedbackStore
    # Written by a thread of its own, reads through it see this process's writes
    # (audit_queue.py); the store underneath is ``audit.store``.
    audit: AuditQueue
    replay: ReplayCache
    patient_key: PatientKeyer
    database: Database

    def close(self) -> None:
        self.audit.close()  # first: what was handed over is stored before the database goes
        if isinstance(self.replay, RedisReplayCache):
            self.replay.close()
        self.database.close()


def build_stores(settings: Settings, count: Counts | None = None) -> Stores:
    """Open (and create if needed) every store; a store that cannot open raises StoreError.
    ``count`` counts audit records queued, stored and failed (the service's metrics)."""
    db = open_database(settings.database_url, settings.database_path)
    try:
        feedback = SqlFeedbackStore(db)
        patient_key = PatientKeyer.for_database(
            settings.audit_patient_id, settings.audit_hash_key, db, settings.dev_mode
        )
        store: SqlAuditStore | NullAuditStore = (
            SqlAuditStore(db, settings.audit_retention_days, also_purge=(feedback.purge,))
            if settings.audit_enabled
            else NullAuditStore()
        )
        audit = AuditQueue(store, count, linger=settings.audit_batch_ms / 1000)
        replay: ReplayCache = (
            RedisReplayCache(settings.redis_url) if settings.redis_url else SqlReplayCache(db)
        )
    except BaseException:
        db.close()
        raise
    try:
        audit.purge_expired()
    except Exception as exc:  # a failed purge must not stop the service
        log.error("audit retention purge at startup failed error=%s: %s", type(exc).__name__, exc)
    log.info(
        "stores: %s database%s, replay cache on %s, audit %s",
        db.dialect,
        f" {getattr(db, 'url', '')}" if settings.database_url else f" {settings.database_path}",
        "redis" if settings.redis_url else db.dialect,
        "on" if settings.audit_enabled else "off",
    )
    return Stores(
        feedback=feedback, audit=audit, replay=replay, patient_key=patient_key, database=db
    )
