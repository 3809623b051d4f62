"""The JWT replay cache shared by instances: on SQLite, PostgreSQL and a real Redis.

Each test opens two caches on one store, as two service instances would: a token id
seen by one must be refused by the other, and exactly one of many racing wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cds_service.stores import (
    Database,
    RedisReplayCache,
    ReplayCache,
    SqliteDatabase,
    SqlReplayCache,
    StoreError,
)
from cds_service.stores.sql import PostgresDatabase
from spine_cds_dev.service_process import free_port

Opener = Callable[[], ReplayCache]
KEY = '["https://ehr.example.org", "jti-1"]'


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def open_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another cache (another 'instance') on one fresh store per test."""
    closers: list[Callable[[], None]] = []
    prefix = f"test:{request.node.name}:"  # Redis is shared by the module: keep tests apart
    url = (
        request.getfixturevalue("pg_server").new_database() if request.param == "postgresql" else ""
    )

    def opener() -> ReplayCache:
        if request.param == "redis":
            cache = RedisReplayCache(request.getfixturevalue("redis_url"), prefix=prefix)
            closers.append(cache.close)
            return cache
        db: Database
        if request.param == "sqlite":
            db = SqliteDatabase(tmp_path / "stores.sqlite3")
        else:
            db = PostgresDatabase(url)
        closers.append(db.close)
        return SqlReplayCache(db)

    yield opener
    for close in closers:
        close()


def test_a_token_id_seen_by_one_instance_is_refused_by_another(open_cache: Opener) -> None:
    first, second = open_cache(), open_cache()
    expires = time.time() + 300

    assert first.add_if_new(KEY, expires) is True
    assert second.add_if_new(KEY, expires) is False
    assert first.add_if_new(KEY, expires) is False
    assert second.add_if_new('["https://ehr.example.org", "jti-2"]', expires) is True
    assert first.add_if_new('["https://other.example.org", "jti-1"]', expires) is True


def test_exactly_one_of_many_racing_requests_wins(open_cache: Opener) -> None:
    caches = [open_cache(), open_cache()]
    outcomes: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def attempt(cache: ReplayCache) -> None:
        try:
            barrier.wait()
            outcomes.append(cache.add_if_new(KEY, time.time() + 300))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(caches[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(outcomes) == [False] * 7 + [True]


def test_an_expired_entry_no_longer_blocks_its_key(open_cache: Opener) -> None:
    first, second = open_cache(), open_cache()
    assert first.add_if_new(KEY, time.time() + 0.3) is True
    assert second.add_if_new(KEY, time.time() + 300) is False
    time.sleep(0.5)
    assert second.add_if_new(KEY, time.time() + 300) is True
    assert first.add_if_new(KEY, time.time() + 300) is False


def test_expired_entries_are_swept(tmp_path: Path) -> None:
    now = [1_000_000.0]
    db = SqliteDatabase(tmp_path / "stores.sqlite3")
    cache = SqlReplayCache(db, clock=lambda: now[0])
    for n in range(5):
        cache.add_if_new(f"k{n}", now[0] + 10 * (n + 1))
    now[0] += 25

    assert cache.purge_expired() == 2
    with db.transaction(write=False) as tx:
        left = tx.query("SELECT key FROM jwt_replay ORDER BY key")
    assert left == [("k2",), ("k3",), ("k4",)]


def test_redis_keys_expire_with_the_token_and_hold_no_token_text(redis_url: str) -> None:
    import redis

    cache = RedisReplayCache(redis_url, prefix="test:ttl:")
    client = redis.Redis.from_url(redis_url)
    try:
        cache.add_if_new(KEY, time.time() + 60)
        (name,) = client.keys("test:ttl:*")
        assert b"jti-1" not in name
        assert 55_000 <= client.pttl(name) <= 60_000
    finally:
        client.close()
        cache.close()


def test_an_unreachable_redis_stops_startup_with_a_clear_error() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreError, match="cannot reach Redis") as info:
        RedisReplayCache(url)
    assert "hunter2" not in str(info.value)
