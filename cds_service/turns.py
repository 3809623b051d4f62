"""One hook call computes at a time in a worker; a call waiting on a FHIR server gives
its turn to the next.

Threaded workers let a call that waits on a slow FHIR server hold a thread instead of
the whole worker. But the CPU work of calls in one process runs one thread at a time
anyway (Python's GIL), and without turns the threads' work is interleaved in 5 ms
slices: every call in the process then finishes late, as if the process were shared
equally, and the tail latency of the quick calls grew (measured: (c)'s p99 about twice
that of sync workers at the same throughput). With turns a call runs its CPU work
through, as on a sync worker, and only its waits overlap with other calls' work.

The turn is held from the moment the body has been read until the answer is built (the
web route, ``routes/hooks.py``), and given up while the FHIR client waits for its
fetches (``FhirClient``). Reading the request and writing the answer stay outside it, so
a slow client does not hold up the calls already read. The gunicorn worker
(``worker.py``) is told when a call starts such a wait: its thread then gives up its
place, and another thread takes the next connection. Work a waiting call may do early
(reading the data already fetched, ``patient_reads.py``) takes the turn only when it is
spare, never ahead of a call (``spare``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Turns:
    """The turn of one process's hook calls (one per ``Runtime``); thread-safe.

    First come, first served: a call that gives its turn up hands it to the call that
    has waited longest, as the listen queue of sync workers does (a plain lock lets a
    newly arrived call take it ahead of one that has waited, which lengthened the tail).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._busy = False
        self._waiting: deque[threading.Lock] = deque()
        self._local = threading.local()
        # Told when a call gives its turn away to wait on I/O (the gunicorn worker: another
        # thread may take a call now; cds_service/worker.py). Called on that call's thread.
        self.on_wait: Callable[[], None] | None = None

    def _holding(self) -> bool:
        return bool(getattr(self._local, "held", False))

    def _acquire(self) -> None:
        with self._mutex:
            if not self._busy:
                self._busy = True
                return
            handed = threading.Lock()
            handed.acquire()
            self._waiting.append(handed)
        handed.acquire()  # released by ``_release``, which hands the turn over as it is

    def _release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()  # still busy: it is that call's turn
            else:
                self._busy = False

    def _try_acquire(self) -> bool:
        """Take the turn if nobody holds it or waits for it; never waits."""
        with self._mutex:
            if self._busy:
                return False
            self._busy = True
            return True

    @contextmanager
    def _held(self) -> Iterator[None]:
        """The block of a turn this thread has just taken: released at its end."""
        self._local.held = True  # so that a turn() inside is re-entrant, not a deadlock
        try:
            yield
        finally:
            self._local.held = False
            self._release()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn for the block (re-entrant within one thread)."""
        if self._holding():
            yield
            return
        self._acquire()
        with self._held():
            yield

    @contextmanager
    def idle(self) -> Iterator[None]:
        """A wait of a call that holds no turn (feedback looking for a card another
        worker's writer may not have stored yet): the worker is told, so that its place
        goes to the next call instead of waiting with this one (an attack suite held a
        worker for 0.3 s per feedback call naming unknown cards)."""
        if self._holding():
            with self.waiting():
                yield
            return
        if self.on_wait is not None:
            self.on_wait()
        yield

    @contextmanager
    def spare(self) -> Iterator[bool]:
        """Hold the turn for the block when no call holds it or waits for it, and say so
        (True); else say False at once. For work a call may do early, in the time it
        would otherwise only wait (``FhirClient``'s ``on_result``), never ahead of
        another call."""
        if not self._try_acquire():
            yield False
            return
        with self._held():
            yield True

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Give the turn away for the block when this thread holds it (a wait on I/O),
        and take it back after (behind the calls that came first)."""
        if not self._holding():
            yield
            return
        self._local.held = False
        self._release()
        if self.on_wait is not None:
            self.on_wait()
        try:
            yield
        finally:
            self._acquire()
            self._local.held = True
