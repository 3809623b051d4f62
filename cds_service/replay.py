"""A JWT replay cache shared by every worker process, kept in the service's SQLite file.

gunicorn runs several worker processes; an in-memory cache per process would let a
token replayed to another worker through. SQLite is already the service's embedded
store, so the default needs no extra server. (Several hosts need a network store.)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jwt_replay (
    key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jwt_replay_expiry ON jwt_replay (expires_at);
"""
PURGE_EVERY = 500  # inserts between sweeps of expired entries


class SqliteReplayCache:
    """``add_if_new`` is atomic across processes: the primary key decides who was first."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self._local = threading.local()
        self._inserts = 0
        with self._connection() as conn:
            conn.executescript(SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn

    def add_if_new(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM jwt_replay WHERE key = ? AND expires_at <= ?", (key, now))
            cursor = conn.execute(
                "INSERT OR IGNORE INTO jwt_replay (key, expires_at) VALUES (?, ?)",
                (key, expires_at),
            )
            stored = cursor.rowcount == 1
            self._inserts += 1
            if self._inserts % PURGE_EVERY == 0:
                conn.execute("DELETE FROM jwt_replay WHERE expires_at <= ?", (now,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return stored
