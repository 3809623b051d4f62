"""What ``spine-cds report`` and ``audit-purge`` read: the audit and feedback stores of
the database ``serve`` uses, the period asked for, and how to name the source."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cds_service.settings import Settings
from cds_service.stores.audit import SqlAuditStore
from cds_service.stores.feedback import SqlFeedbackStore
from cds_service.stores.sql import StoreError, open_database

__all__ = ["ReportStores", "describe_source", "open_stores", "period_bounds"]


@dataclass(frozen=True)
class ReportStores:
    audit: SqlAuditStore
    feedback: SqlFeedbackStore


@contextmanager
def open_stores(settings: Settings) -> Iterator[ReportStores]:
    """The audit and feedback stores of the database ``serve`` uses with these settings.

    Not ``build_stores``: that one purges on opening (``audit-purge`` could not count what
    it deleted), connects to Redis and may create the patient-hash key, none of which a
    report or a purge needs. A missing SQLite file is an error, not a new empty database
    (a mistyped path must not look like "nothing recorded"). Raises StoreError.
    """
    if not settings.database_url and settings.database_path != ":memory:":
        if not Path(settings.database_path).is_file():
            raise StoreError(
                f"no database at {settings.database_path} (database_path): nothing has been "
                "recorded there; give the settings file the service runs with (--config)"
            )
    db = open_database(settings.database_url, settings.database_path)
    try:
        feedback = SqlFeedbackStore(db)
        audit = SqlAuditStore(db, settings.audit_retention_days, also_purge=(feedback.purge,))
        yield ReportStores(audit, feedback)
    finally:
        db.close()


def describe_source(settings: Settings) -> str:
    """The database the report reads, for its title: never a password."""
    if settings.database_url:
        parts = urlsplit(settings.database_url)
        where = parts.hostname or "localhost"
        if parts.port:
            where += f":{parts.port}"
        return f"PostgreSQL {where}{parts.path}"
    if settings.database_path == ":memory:":
        return "an in-memory database"
    return f"SQLite {Path(settings.database_path).resolve()}"


def period_bounds(
    since: date | None, until: date | None
) -> tuple[datetime | None, datetime | None]:
    """``--since``/``--until`` as UTC instants: from the start of ``since`` to the end of
    ``until`` (both days included)."""
    start = datetime.combine(since, time(0), UTC) if since else None
    if until is None or until == date.max:  # the last day there is: no end
        return start, None
    return start, datetime.combine(until + timedelta(days=1), time(0), UTC)
