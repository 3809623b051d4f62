"""The database plumbing shared by the stores: SQLite by default, PostgreSQL on request.

The stores write their SQL once, with ``?`` placeholders and a few type names in
braces (``{id}``, ``{ts}``, ``{float}``) that each dialect fills in. Everything they
need (upserts with ``ON CONFLICT``, ``CREATE ... IF NOT EXISTS``) exists in both
SQLite 3.24+ and PostgreSQL, so one statement serves both and the stores stay small.

SQLite: one connection per thread and per process (a connection must not cross a
fork), WAL mode so readers never wait for the writer, and ``BEGIN IMMEDIATE`` for
writes so concurrent writers queue on the busy timeout instead of failing.

PostgreSQL: psycopg 3 with a small pool of connections, each checked before use so
a restarted server costs one reconnect rather than a failed request.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from cds_service.redaction import redact_url

log = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgresql"]

TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"id": "INTEGER PRIMARY KEY", "ts": "TEXT", "float": "REAL"},
    "postgresql": {
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "ts": "TIMESTAMPTZ",
        "float": "DOUBLE PRECISION",
    },
}
BUSY_TIMEOUT_SECONDS = 10.0
PG_POOL_MIN = 1
PG_POOL_MAX = 4
PG_CONNECT_TIMEOUT_SECONDS = 5
PG_CHECKOUT_TIMEOUT_SECONDS = 3.0  # a request waits no longer for a connection
# Any constant; it serialises schema creation when several instances start at once
# (concurrent CREATE TABLE IF NOT EXISTS can otherwise fail in PostgreSQL).
PG_SCHEMA_LOCK = 0x5350494E45


class StoreError(RuntimeError):
    """A store that cannot be opened; the message is safe to log (no passwords)."""


def about_content(exc: Exception) -> bool:
    """Whether ``exc`` is about what a statement's values hold (PEP 249's IntegrityError
    or DataError, as sqlite3 and psycopg name them), not about the database (locked,
    unreachable): only then is each row of a refused batch worth trying on its own."""
    return any(cls.__name__ in {"IntegrityError", "DataError"} for cls in type(exc).__mro__)


class Tx(Protocol):
    """One transaction: statements with ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query; all its rows."""
        ...

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows`` in one call to the driver (PostgreSQL:
        one round trip; the audit writer's batches, stores/audit_queue.py)."""
        ...


class Database(Protocol):
    dialect: Dialect

    def transaction(self, write: bool = True) -> AbstractContextManager[Tx]:
        """Commit on normal exit, roll back on an exception."""
        ...

    def create_schema(self, ddl: str) -> None:
        """Run ``;``-separated DDL with the dialect's type names filled in; idempotent."""
        ...

    def to_db_time(self, moment: datetime) -> Any:
        """A timezone-aware datetime as the ``{ts}`` column stores it."""
        ...

    def from_db_time(self, value: Any) -> datetime:
        """A ``{ts}`` column's value as an aware UTC datetime."""
        ...

    def close(self) -> None: ...


def _statements(ddl: str, dialect: Dialect) -> list[str]:
    filled = ddl.format(**TYPES[dialect])
    return [part.strip() for part in filled.split(";") if part.strip()]


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return moment.astimezone(UTC)


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql, tuple(params)).fetchall())

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, [tuple(r) for r in rows])


def _create_private(path: str) -> None:
    """Create the database file for its owner only (0600), if it does not exist yet.

    It holds the audit (whose records name the resources behind each decision, ids that
    often embed the patient's), the feedback, the JWT replay cache and, in development
    mode without ``audit_hash_key``, the key of the patient hashes: created with the
    process's umask (0644 as a rule) any local user could read them. SQLite creates the
    ``-wal`` and ``-shm`` files with the database file's mode. A file that exists keeps
    the mode it has (an operator's choice, or an earlier version's 0644: docs/deployment.md)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SqliteDatabase:
    """One SQLite file, shared by threads and by gunicorn's worker processes."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path not in {":memory:", ""}:
            parent = Path(self.path).parent
            if not parent.is_dir():
                # said, so a typo in database_path does not quietly start an empty audit
                # in a new directory (an integrator's review)
                log.warning("database_path: created the directory %s for %s", parent, self.path)
            parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[int, sqlite3.Connection]] = []
        try:
            self._connection()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite database {self.path}: {exc}") from None

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # only so close() may close it from another thread
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL still commits every transaction before returning and keeps
            # the file consistent; it skips the fsync per commit (0.3-4 ms here, and the
            # workers queue behind it), so a power cut may lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            self._local.conn = conn
            self._local.pid = os.getpid()
            with self._lock:
                self._open.append((os.getpid(), conn))
        return conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield _SqliteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def transaction(self, write: bool = True) -> AbstractContextManager[Tx]:
        return self._transaction(write)

    def create_schema(self, ddl: str) -> None:
        with self.transaction() as tx:
            for statement in _statements(ddl, self.dialect):
                tx.execute(statement)

    def to_db_time(self, moment: datetime) -> Any:
        # Fixed width, always with microseconds: text order is time order.
        return _aware(moment).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

    def from_db_time(self, value: Any) -> datetime:
        return datetime.fromisoformat(str(value)).astimezone(UTC)

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for pid, conn in connections:
            if pid == os.getpid():  # a parent's connection is the parent's to close
                conn.close()
        self._local = threading.local()


class _PgTx:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        rowcount: int = self._cursor.rowcount
        return rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        return list(self._cursor.fetchall())

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])


class PostgresDatabase:
    """A PostgreSQL database through a small psycopg pool; fails at startup, not later."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, min_size: int = PG_POOL_MIN, max_size: int = PG_POOL_MAX) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:  # pragma: no cover - depends on the installation
            raise StoreError(
                "database_url is set but psycopg is not installed "
                "(pip install 'psycopg[binary,pool]')"
            ) from None
        self.url = redact_url(url)
        # One plain connection first: a wrong host, database or password fails at once
        # with the server's reason, instead of after the pool's retries.
        try:
            psycopg.connect(url, connect_timeout=PG_CONNECT_TIMEOUT_SECONDS).close()
        except psycopg.Error as exc:
            reason = (str(exc).strip().splitlines() or [""])[0]
            raise StoreError(
                f"cannot connect to PostgreSQL at {self.url}: {type(exc).__name__}: {reason}"
            ) from None
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS},
            check=ConnectionPool.check_connection,
            timeout=PG_CHECKOUT_TIMEOUT_SECONDS,
            name="spine-cds",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=PG_CONNECT_TIMEOUT_SECONDS * 2)
        except Exception as exc:
            self._pool.close()
            raise StoreError(
                f"cannot connect to PostgreSQL at {self.url}: {type(exc).__name__}"
            ) from None

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield _PgTx(cursor)

    def transaction(self, write: bool = True) -> AbstractContextManager[Tx]:
        return self._transaction(write)

    def create_schema(self, ddl: str) -> None:
        with self.transaction() as tx:
            tx.query("SELECT pg_advisory_xact_lock(?)", (PG_SCHEMA_LOCK,))
            for statement in _statements(ddl, self.dialect):
                tx.execute(statement)

    def to_db_time(self, moment: datetime) -> Any:
        return _aware(moment)

    def from_db_time(self, value: Any) -> datetime:
        if not isinstance(value, datetime):
            raise TypeError(f"expected a timestamp from PostgreSQL, got {type(value).__name__}")
        return _aware(value)

    def close(self) -> None:
        self._pool.close()


def open_database(database_url: str, database_path: str | Path) -> Database:
    """PostgreSQL when a URL is given, else the SQLite file (the default)."""
    if database_url:
        return PostgresDatabase(database_url)
    return SqliteDatabase(database_path)
