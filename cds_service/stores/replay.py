"""JWT replay caches shared by every worker and, on a network store, every instance.

gunicorn runs several worker processes and a deployment may run several instances;
a cache per process would let a token replayed to another worker or instance through.
The default keeps the seen ``jti`` values in the service's database (the SQLite file,
or PostgreSQL when ``database_url`` is set); with ``redis_url`` they go to Redis,
where keys expire by themselves.

Both decide "first or replay" in one atomic operation in the store itself, so two
instances racing with the same token cannot both win.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from cds_service.redaction import redact_url
from cds_service.stores.sql import Database, StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS jwt_replay (
    key TEXT PRIMARY KEY,
    expires_at {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS jwt_replay_expiry ON jwt_replay (expires_at)
"""
# Insert the key, or take over an expired entry with the same key; a live entry wins.
UPSERT = (
    "INSERT INTO jwt_replay (key, expires_at) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at"
    " WHERE jwt_replay.expires_at <= ?"
)
PURGE_EVERY = 500  # inserts between sweeps of expired entries
REDIS_PREFIX = "spine-cds:jti:"
REDIS_TIMEOUT_SECONDS = 2.0


class ReplayCache(Protocol):
    def add_if_new(self, key: str, expires_at: float) -> bool:
        """Store ``key`` until ``expires_at`` (epoch seconds); False if already stored."""
        ...


class ReplayCacheFull(Exception):
    """The cache holds ``max_entries`` live entries; refusing beats forgetting."""


class MemoryReplayCache:
    """In-process replay cache: thread-safe, expired entries evicted, bounded.

    When full of live entries it raises ``ReplayCacheFull`` rather than drop a
    live entry (which would re-open a replay window); the verifier turns that
    into a refusal.  With several worker processes each has its own cache, so
    a replay to another worker is not caught: use a shared store there.
    """

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries: must be > 0")
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def _evict_expired(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires_at, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires_at:
                del self._expiry[key]

    def add_if_new(self, key: str, expires_at: float) -> bool:
        with self._lock:
            self._evict_expired(self._clock())
            if key in self._expiry:
                return False
            if len(self._expiry) >= self._max:
                raise ReplayCacheFull()
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return True


class SqlReplayCache:
    """Seen token ids in a table; the primary key decides who was first."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._inserts = 0
        db.create_schema(SCHEMA)

    def add_if_new(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        with self._db.transaction() as tx:
            stored = tx.execute(UPSERT, (key, float(expires_at), now)) == 1
        self._inserts += 1
        if self._inserts % PURGE_EVERY == 0:
            self.purge_expired(now)
        return stored

    def purge_expired(self, now: float | None = None) -> int:
        """Drop entries whose token has expired anyway; how many went."""
        cutoff = self._clock() if now is None else now
        with self._db.transaction() as tx:
            return tx.execute("DELETE FROM jwt_replay WHERE expires_at <= ?", (cutoff,))


class RedisReplayCache:
    """Seen token ids as Redis keys that expire with the token (SET NX PXAT)."""

    def __init__(self, url: str, prefix: str = REDIS_PREFIX) -> None:
        try:
            import redis
        except ImportError:  # pragma: no cover - depends on the installation
            raise StoreError("redis_url is set but the redis package is not installed") from None
        self.url = redact_url(url)
        self._prefix = prefix
        self._client: Any = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        try:
            self._client.ping()
        except redis.RedisError as exc:
            self._client.close()
            raise StoreError(f"cannot reach Redis at {self.url}: {type(exc).__name__}") from None

    def add_if_new(self, key: str, expires_at: float) -> bool:
        # Hashed: a bounded key length whatever the issuer and jti look like.
        name = self._prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()
        # PXAT must be positive; a time in the past makes Redis drop the key at once,
        # which is right: the verifier has already refused an expired token.
        result = self._client.set(name, b"1", nx=True, pxat=max(1, int(expires_at * 1000)))
        return bool(result)

    def close(self) -> None:
        self._client.close()
