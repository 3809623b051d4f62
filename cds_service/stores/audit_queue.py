"""Audit records written off the request path: one writer thread per worker, in batches.

Storing a record took about a tenth of a hook call's time in a worker (an INSERT and a
COMMIT on SQLite; with PostgreSQL a network round trip too), all of it inside the call's
turn (``turns.py``), so every other call of the worker waited for it. A call now hands
its record over (``submit``) and answers; the worker's writer thread stores what has
been handed over, as many records as are waiting in one transaction and one call to
the driver per statement (a thread that needs the GIL back after each statement waits
up to 5 ms for it while the calls compute: one statement per record left the writer
behind on PostgreSQL, measured).

The writer lingers: after the first record of a batch it waits ``linger`` seconds
(``audit_batch_ms``) for more before it writes. Under gunicorn each record used to be
its own transaction, since the writer woke for every call: the BEGIN, the COMMIT, the
WAL's locks and the thread's wake-up cost a worker about 0.45 ms of CPU per call, about
a fifth of what a non-spine order costs in all (bench/README.md, round fourteen). A read
through this object, a full batch and ``close`` cut the wait short.

Durability (``docs/deployment.md``, "Where the state lives"):

- A record is handed over before its answer is sent, and stored within ``linger`` and
  the write's own time after.
- A worker that stops the usual way (SIGTERM, a restart after ``max_requests``, the
  service stopping) stores every record handed over before it exits (``close``, called
  from gunicorn's ``worker_exit``).
- A worker killed outright (SIGKILL, out of memory, a crash) loses what it had not
  stored yet: at most the records of the calls it answered in the last ``linger`` and
  the write's time (more while the database is slow, never more than ``capacity``).
  Each is counted: ``spine_cds_audit_records_total`` has ``state="queued"`` for every
  record handed over and ``"stored"``/``"failed"`` as each one ends, counted per worker
  and kept after the worker is gone, so ``queued - stored - failed`` is the number lost
  (plus, on a live service, the few still on their way).
- When records come faster than the database takes them (more than ``capacity``
  waiting), the calls store their own records again, as before: the queue never drops
  a record, and its size (so the memory it holds, and what a kill can lose) is bounded.

Reads of the audit through this object (the report, feedback's "was this card shown to
this client") first wait for the records already handed over in this process.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from cds_service.stores.audit import (
    AuditRecord,
    NullAuditStore,
    Refusal,
    RefusalCount,
    SqlAuditStore,
)

log = logging.getLogger("cds_service.stores")

# Records waiting, at most; past it a call stores its own. This bounds the memory the
# queue holds and what a kill can lose: well under a second of a busy worker's calls.
DEFAULT_CAPACITY = 256
DEFAULT_BATCH = 200  # records per transaction at most
DEFAULT_LINGER_SECONDS = 0.05  # how long a batch waits for more records (audit_batch_ms)
SHOWN_WAIT_SECONDS = 0.3  # how long feedback waits, per call, for another worker's writer
MAX_SHOWN_WAITERS = 2  # calls per process in that wait at once; the rest look once
_SHOWN_WAITERS = threading.BoundedSemaphore(MAX_SHOWN_WAITERS)
FLUSH_SECONDS = 5.0  # how long a read waits for this process's writer


class Counts(Protocol):
    """Where the writer counts records: queued, stored, failed (``metrics.py``)."""

    def __call__(self, state: str, amount: int) -> None: ...


def _not_counted(state: str, amount: int) -> None:
    return None


class NotShown(NamedTuple):
    """The cards not found as shown, and whether they were waited for: one that was not
    may yet be stored by another worker's writer."""

    missing: set[str]
    waited: bool


class AuditQueue:
    """The audit store of a serving process: ``submit`` hands a record to the writer
    thread; everything else reads and purges through the store underneath."""

    def __init__(
        self,
        store: SqlAuditStore | NullAuditStore,
        count: Counts | None = None,
        capacity: int = DEFAULT_CAPACITY,
        batch: int = DEFAULT_BATCH,
        linger: float = DEFAULT_LINGER_SECONDS,
    ) -> None:
        """``linger``: seconds the writer waits after a batch's first record for more
        (0: it writes what is there as soon as it runs)."""
        self.store = store
        self.count = count or _not_counted
        self._capacity = capacity
        self._batch = batch
        self._linger = linger
        self._hurry = threading.Event()  # write the waiting batch now
        self._queue: queue.SimpleQueue[AuditRecord | None] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._pending = 0  # handed over, not yet stored or failed
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False

    @property
    def failures(self) -> int:
        return self.store.failures

    # -- writing ---------------------------------------------------------------------

    def submit(self, rec: AuditRecord) -> None:
        """Hand a record over; the writer thread stores it. Never raises."""
        self.count("queued", 1)
        full = False
        with self._done:
            inline = self._closed or self._pending >= self._capacity
            if not inline:
                self._pending += 1
                full = self._pending >= self._batch
        if inline:  # full (the database is slow) or shutting down: store it here
            self._write([rec])
            return
        self._ensure_writer()
        self._queue.put(rec)
        if full:
            self._hurry.set()

    def _ensure_writer(self) -> None:
        # Started on first use, in the process that uses it: threads do not cross a fork.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._done:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="spine-cds-audit-writer", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            if self._linger > 0:
                self._hurry.wait(self._linger)
            # Cleared before the queue is drained: haste asked for after this point is
            # for records this batch takes, or it cuts the next batch's wait short.
            self._hurry.clear()
            while len(batch) < self._batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._write(batch)
            with self._done:
                self._pending -= len(batch)
                self._done.notify_all()
            if stop:
                return

    def _write(self, records: list[AuditRecord]) -> None:
        """Store ``records``; count each as stored or failed. Never raises."""
        stored = self.store.record_many(records)
        self.count("stored", stored)
        if stored < len(records):
            self.count("failed", len(records) - stored)

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait until every record handed over in this process is stored (or failed)."""
        deadline = time.monotonic() + timeout
        with self._done:
            if self._pending > 0:  # never when none wait: the next batch would not linger
                self._hurry.set()
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    def close(self, timeout: float = FLUSH_SECONDS) -> None:
        """Store what was handed over, then stop the writer (a worker's last act)."""
        with self._done:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
        if thread is None:
            return
        self._queue.put(None)
        self._hurry.set()
        thread.join(timeout)
        if thread.is_alive():
            with self._done:
                left = self._pending
            log.error("audit writer did not finish: %d records not stored", left)

    # -- reading, purging, refusals: the store's, after this process's writes ---------

    def record(self, rec: AuditRecord) -> None:
        """Store one record now (tools and tests; calls use ``submit``)."""
        self.count("queued", 1)
        self._write([rec])

    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRecord]:
        self.flush()
        return self.store.records(since, until)

    def purge(self, older_than: datetime) -> int:
        self.flush()
        return self.store.purge(older_than)

    def purge_expired(self) -> int:
        self.flush()
        return self.store.purge_expired()

    def record_refusal(self, refusal: Refusal) -> None:
        self.store.record_refusal(refusal)

    def refusals(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[RefusalCount]:
        return self.store.refusals(since, until)

    def card_shown_to(self, card_uuid: str, client: str | None, service_id: str) -> bool:
        return not self.cards_not_shown([card_uuid], client, service_id).missing

    def cards_not_shown(
        self, card_uuids: Sequence[str], client: str | None, service_id: str
    ) -> NotShown:
        """Those of ``card_uuids`` not shown to ``client`` by ``service_id``. Feedback may
        reach another worker than the card did, a moment after it: that worker's writer
        may not have stored the card yet, so cards not found are looked for again, for
        at most ``SHOWN_WAIT_SECONDS`` in all, however many the body names. At most
        ``MAX_SHOWN_WAITERS`` calls of the process wait so at once; the others look once
        and answer: with as many feedback streams of unknown cards as threads, every
        thread sat in this wait and the worker stalled (an attack suite). Those say they
        did not wait (``NotShown.waited``): a card not found at one look may still be on
        its way, and calling it "not shown" lost feedback on cards of a moment ago under
        ordinary concurrency (an integration review)."""
        self.flush()
        missing = self._not_shown(set(card_uuids), client, service_id)
        if not missing:
            return NotShown(missing, waited=True)
        if not _SHOWN_WAITERS.acquire(blocking=False):
            return NotShown(missing, waited=False)
        try:
            deadline = time.monotonic() + SHOWN_WAIT_SECONDS
            while missing and time.monotonic() < deadline:
                time.sleep(0.05)
                missing = self._not_shown(missing, client, service_id)
            return NotShown(missing, waited=True)
        finally:
            _SHOWN_WAITERS.release()

    def _not_shown(self, cards: set[str], client: str | None, service_id: str) -> set[str]:
        return {c for c in cards if not self.store.card_shown_to(c, client, service_id)}
