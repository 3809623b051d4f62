"""The feedback store: what clinicians did with the cards (accepted, overridden and why).

SQLite by default, so a fresh install needs no database server. Feedback may arrive
more than once (the spec allows retries): each entry gets a key derived from its whole
content and a repeat is recognised and not stored twice. The whole entry is kept as
JSON so nothing a client sends is lost, with the fields a report needs in columns.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    service_id TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL,
    override_system TEXT,
    override_code TEXT,
    override_display TEXT,
    accepted_suggestions TEXT,
    entry_json TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card_uuid);
"""


@dataclass(frozen=True)
class StoreResult:
    stored: int
    duplicates: int


def dedupe_key(service_id: str, entry: dict[str, Any]) -> str:
    """Same service and same entry content -> same key, whatever the key order."""
    canonical = json.dumps([service_id, entry], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class SqliteFeedbackStore:
    """Feedback in one SQLite file; safe across threads and gunicorn worker processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=10000")
            with conn:
                yield conn
        finally:
            conn.close()

    def add(
        self, service_id: str, entries: Sequence[dict[str, Any]], now: datetime | None = None
    ) -> StoreResult:
        """Store entries that were not seen before; report how many were repeats."""
        received = (now or datetime.now(UTC)).isoformat()
        stored = 0
        with self._lock, self._connect() as conn:
            for entry in entries:
                reason = entry.get("overrideReason", {}).get("reason", {})
                accepted = entry.get("acceptedSuggestions")
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO feedback (dedupe_key, service_id, card_uuid, outcome,"
                    " outcome_timestamp, override_system, override_code, override_display,"
                    " accepted_suggestions, entry_json, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        dedupe_key(service_id, entry),
                        service_id,
                        entry["card"],
                        entry["outcome"],
                        entry["outcomeTimestamp"],
                        reason.get("system"),
                        reason.get("code"),
                        reason.get("display"),
                        json.dumps(accepted) if accepted is not None else None,
                        json.dumps(entry, sort_keys=True),
                        received,
                    ),
                )
                stored += cursor.rowcount
        return StoreResult(stored=stored, duplicates=len(entries) - stored)

    def all(self) -> list[dict[str, Any]]:
        """Every stored entry with its service, oldest first (for reports and tests)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT service_id, entry_json, received_at FROM feedback ORDER BY id"
            ).fetchall()
        return [
            {"service_id": service, "entry": json.loads(entry), "received_at": received}
            for service, entry, received in rows
        ]
