"""The audit writer (stores/audit_queue.py) against real databases: nothing handed over is
lost, every record is counted, a bad record costs only itself, reads see the writes.
A busy database is a real one: another connection holds the audit table's write lock.

The worker-level guarantees (a worker stopped the usual way stores everything; one
killed outright loses only what it counted as queued) run through gunicorn in
tests/integration/test_audit_durability.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.settings import SettingsError, load_settings
from cds_service.stores import AuditQueue, Database, build_stores
from cds_service.stores.audit import AuditRecord, SqlAuditStore
from cds_service.stores.audit_queue import MAX_SHOWN_WAITERS, SHOWN_WAIT_SECONDS, NotShown
from tests.conftest import Opener
from tests.stores.test_audit import audit_store, record
from tests.support.audit_wait import eventually


class Tally:
    """The counts the writer reports (the service's metrics in production)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, state: str, amount: int) -> None:
        with self._lock:
            self.counts[state] += amount


def instances(store: SqlAuditStore) -> list[str]:
    return sorted(r.hook_instance for r in store.records())


@contextmanager
def writes_held(db: Database) -> Iterator[Callable[[], None]]:
    """Another connection holds the audit's write lock until the function given is
    called (or the block ends): writers wait, as behind a busy database."""
    release = threading.Event()
    locked = threading.Event()

    def hold() -> None:
        with db.transaction() as tx:  # SQLite: BEGIN IMMEDIATE takes the write lock
            if db.dialect == "postgresql":
                tx.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(5)
    try:
        yield release.set
    finally:
        release.set()
        holder.join()


def test_records_from_many_threads_are_all_stored_and_counted(open_db: Opener) -> None:
    store = audit_store(open_db())
    tally = Tally()
    audit = AuditQueue(store, tally)
    sent = [f"h-{t}-{i}" for t in range(8) for i in range(50)]

    def send(thread: int) -> None:
        for i in range(50):
            audit.submit(record(hook_instance=f"h-{thread}-{i}", card_uuids=(f"c-{thread}-{i}",)))

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert audit.flush()
    assert instances(store) == sorted(sent)
    assert tally.counts == {"queued": 400, "stored": 400}
    assert store.card_shown_to("c-3-7", None, "spine-imaging-nvo")
    audit.close()


def test_the_call_does_not_wait_for_a_busy_database(open_db: Opener) -> None:
    store = audit_store(open_db())
    audit = AuditQueue(store, Tally())
    with writes_held(open_db()) as release:
        for i in range(20):
            audit.submit(record(hook_instance=f"h-{i}"))  # returns: the writer waits
        assert instances(store) == []
        release()
        assert audit.flush()
    assert len(instances(store)) == 20
    audit.close()


@pytest.mark.parametrize(
    "bad",
    [
        {"service_id": None, "card_uuids": ()},  # the database refuses it: NOT NULL
        {"latency_ms": None},  # no number to store: it cannot become a row
    ],
    ids=["refused-by-the-database", "cannot-become-a-row"],
)
def test_a_bad_record_fails_alone_and_is_counted(open_db: Opener, bad: dict[str, Any]) -> None:
    store = audit_store(open_db())
    tally = Tally()
    audit = AuditQueue(store, tally)
    with writes_held(open_db()) as release:
        audit.submit(record(hook_instance="good-0"))  # the writer takes it and waits
        audit.submit(record(hook_instance="good-1"))  # these wait in one batch
        audit.submit(record(hook_instance="bad", **bad))
        audit.submit(record(hook_instance="good-2"))
        release()
        assert audit.flush()

    assert instances(store) == ["good-0", "good-1", "good-2"]
    assert tally.counts == {"queued": 4, "stored": 3, "failed": 1}
    assert store.failures == 1
    audit.close()


def test_close_stores_everything_handed_over_before_it(open_db: Opener) -> None:
    store = audit_store(open_db())
    tally = Tally()
    audit = AuditQueue(store, tally)
    with writes_held(open_db()) as release:
        threading.Timer(0.5, release).start()
        for i in range(250):  # more than a batch, fewer than the queue holds
            audit.submit(record(hook_instance=f"h-{i}"))
        audit.close()  # waits for the database, then for the writer

    assert len(instances(store)) == 250
    assert tally.counts == {"queued": 250, "stored": 250}
    audit.submit(record(hook_instance="after-close"))  # stored by the caller now
    assert "after-close" in instances(store)


def test_when_the_queue_is_full_the_call_stores_its_own_record(open_db: Opener) -> None:
    store = audit_store(open_db())
    tally = Tally()
    audit = AuditQueue(store, tally, capacity=1)
    with writes_held(open_db()) as release:
        audit.submit(record(hook_instance="held"))  # waiting: the capacity
        threading.Timer(0.3, release).start()
        audit.submit(record(hook_instance="overflow"))  # stored before submit returns
        assert "overflow" in instances(store)
    assert audit.flush()
    assert instances(store) == ["held", "overflow"]
    assert tally.counts == {"queued": 2, "stored": 2}
    audit.close()


def test_reads_through_the_queue_see_the_records_handed_over(open_db: Opener) -> None:
    store = audit_store(open_db())
    audit = AuditQueue(store, Tally())
    with writes_held(open_db()) as release:
        audit.submit(record(hook_instance="slow", card_uuids=("card-slow",)))
        threading.Timer(0.2, release).start()
        # Not yet written when asked: the read waits for this process's writer.
        assert audit.card_shown_to("card-slow", None, "spine-imaging-nvo")
    assert [r.hook_instance for r in audit.records()] == ["slow"]
    assert not audit.card_shown_to("card-never", None, "spine-imaging-nvo")
    audit.close()


def test_a_card_stored_by_another_worker_a_moment_later_is_found(open_db: Opener) -> None:
    """Feedback may reach a worker other than the one that showed the card."""
    here = AuditQueue(audit_store(open_db()), Tally())
    other = audit_store(open_db())  # the other worker's store, on its own connection
    later = replace(record(), hook_instance="other", card_uuids=("card-other",))
    writer = threading.Timer(0.2, other.record, args=(later,))
    writer.start()

    assert here.card_shown_to("card-other", None, "spine-imaging-nvo")
    # the other store goes on to purge after its insert: wait for it before the fixture
    # closes its connection (closed under it, SQLite crashed the test run once)
    writer.join(timeout=10)
    here.close()


def test_unknown_cards_cost_one_short_wait_per_call_not_one_each(open_db: Opener) -> None:
    """A feedback body may name 100 cards: the wait for another worker's writer is shared,
    so a body of unknown cards is refused in about SHOWN_WAIT_SECONDS, not 100 times it."""
    store = audit_store(open_db())
    audit = AuditQueue(store, Tally())
    audit.submit(record(hook_instance="h", card_uuids=("card-known",)))
    asked = ["card-known", *(f"card-unknown-{i}" for i in range(100))]

    started = time.monotonic()
    missing, waited = audit.cards_not_shown(asked, None, "spine-imaging-nvo")
    took = time.monotonic() - started

    assert missing == set(asked[1:]) and waited
    assert took < 100 * SHOWN_WAIT_SECONDS / 4  # one wait, never one per card
    audit.close()


def test_beyond_the_cap_feedback_for_unknown_cards_looks_once_and_answers(
    open_db: Opener,
) -> None:
    """An attack suite sent as many feedback streams of unknown cards as the worker had
    threads: each sat in the short wait and the worker stalled. Only MAX_SHOWN_WAITERS
    calls of a process wait at once; the others look once and answer at once."""
    audit = AuditQueue(audit_store(open_db()), Tally())
    audit.submit(record(hook_instance="h", card_uuids=("card-known",)))
    audit.flush()
    callers = MAX_SHOWN_WAITERS + 4
    start = threading.Barrier(callers)
    took: list[float] = []
    answers: list[NotShown] = []

    def ask(i: int) -> None:
        start.wait()
        began = time.monotonic()
        answers.append(
            audit.cards_not_shown(["card-known", f"card-unknown-{i}"], None, "spine-imaging-nvo")
        )
        took.append(time.monotonic() - began)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(len(a.missing) for a in answers) == [1] * callers  # the known card found by all
    # those that could not wait say so: their unknown card may yet be stored elsewhere
    assert sorted(a.waited for a in answers) == [False] * 4 + [True] * MAX_SHOWN_WAITERS
    waited = [t for t in took if t >= SHOWN_WAIT_SECONDS * 0.8]
    assert len(waited) == MAX_SHOWN_WAITERS, took
    assert all(t < SHOWN_WAIT_SECONDS / 2 for t in took if t not in waited), took
    # the cap is per process, not for ever: once those are done, a call waits again
    began = time.monotonic()
    later = audit.cards_not_shown(["card-later"], None, "spine-imaging-nvo")
    assert later.missing == {"card-later"} and later.waited
    assert time.monotonic() - began >= SHOWN_WAIT_SECONDS * 0.8
    audit.close()


class BatchSizes(SqlAuditStore):
    """A real store that also notes how many records each of its transactions held."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, retention_days=90, clock=lambda: record().received_at)
        self.batches: list[int] = []

    def record_many(self, records: Sequence[AuditRecord]) -> int:
        self.batches.append(len(records))
        return super().record_many(records)


def stored_soon(store: SqlAuditStore, count: int, within: float = 5.0) -> list[str]:
    """The store's records (read on its own connection, not through the queue, which
    would cut the writer's wait short) once ``count`` are in, or after ``within`` s."""
    return eventually(lambda: instances(store), lambda found: len(found) >= count, within)


def test_records_handed_over_within_the_linger_share_one_transaction(open_db: Opener) -> None:
    """Under gunicorn the writer used to wake for each call and write its record alone:
    a transaction per call. It now waits ``linger`` for more."""
    store = BatchSizes(open_db())
    tally = Tally()
    audit = AuditQueue(store, tally, linger=0.5)
    for i in range(10):
        audit.submit(record(hook_instance=f"h-{i}"))

    assert len(stored_soon(store, 10)) == 10
    assert store.batches == [10]
    assert tally.counts == {"queued": 10, "stored": 10}
    audit.close()


def test_a_record_waits_the_linger_and_no_longer(open_db: Opener) -> None:
    store = audit_store(open_db())
    audit = AuditQueue(store, Tally(), linger=1.0)
    audit.submit(record(hook_instance="h"))
    time.sleep(0.2)
    assert instances(store) == []  # still in the writer's wait
    assert stored_soon(store, 1) == ["h"]  # stored once the wait is over, with no read
    audit.close()


@pytest.mark.parametrize("cut_short_by", ["flush", "close", "a full batch"])
def test_reads_close_and_a_full_batch_do_not_wait_the_linger(
    open_db: Opener, cut_short_by: str
) -> None:
    """The report and feedback read through ``flush``; a stopping worker has its graceful
    timeout; a burst fills a batch: none waits out a long linger."""
    store = audit_store(open_db())
    audit = AuditQueue(store, Tally(), batch=5, linger=60.0)
    started = time.monotonic()
    for i in range(5 if cut_short_by == "a full batch" else 1):
        audit.submit(record(hook_instance=f"h-{i}"))
    if cut_short_by == "flush":
        assert audit.flush()
    elif cut_short_by == "close":
        audit.close()
    found = stored_soon(store, 5 if cut_short_by == "a full batch" else 1, within=20)

    assert time.monotonic() - started < 10
    assert len(found) == (5 if cut_short_by == "a full batch" else 1)
    audit.close()


def test_the_linger_is_a_setting(tmp_path: Path) -> None:
    """``audit_batch_ms``: 0 writes as soon as the writer runs; over 1000 is refused."""
    refused = r"SPINE_CDS_AUDIT_BATCH_MS: .*less than or equal to 1000"
    with pytest.raises(SettingsError, match=refused):
        load_settings(environ={"SPINE_CDS_AUDIT_BATCH_MS": "5000"})
    settings = load_settings(
        environ={},
        overrides={"dev_mode": True, "database_path": str(tmp_path / "a.sqlite3"),
                   "audit_batch_ms": 1000},
    )  # fmt: skip
    stores = build_stores(settings)
    try:  # received now: the store's retention purge runs on the real clock here
        stores.audit.submit(record(hook_instance="h", received_at=datetime.now(UTC)))
        time.sleep(0.3)
        assert stores.audit.store.records() == []  # a second's wait, as set
    finally:
        stores.close()  # stores it on the way out
    reopened = build_stores(settings)
    try:
        assert [r.hook_instance for r in reopened.audit.records()] == ["h"]
    finally:
        reopened.close()
