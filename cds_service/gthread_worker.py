"""gunicorn's threaded worker, taking connections the way a sync worker does for the
calls that compute, and more only for the calls that wait on a FHIR server.

gunicorn's ``gthread`` worker accepts connections up to ``worker_connections`` (the
service sets it to ``threads``) whatever its threads are doing. With two workers
answering 8 connections, one could hold 6 calls and answer them one at a time
(``turns.py``: one call computes at a time in a process) while the other held 2: the
calls of the busier worker waited three times as long. A sync worker takes one
connection at a time, so the calls queue in the kernel's listen queue, shared by all
workers, and go to whichever is free first.

This worker takes a new connection only while fewer than ``AHEAD`` of its connections
are calls that are being read, computed or answered; a call waiting on a FHIR server
(it has given its turn away) does not count, nor does a connection gunicorn has put
aside because no bytes have come yet. So the calls that compute queue as with sync
workers, and a worker whose calls wait on a slow FHIR server keeps taking others, up to
``threads``. Measured side by side, (a) at 8 connections: p99 35 against 64 ms,
358 against 324 calls/s; (c): p99 15 against 23 ms (``bench/README.md``, round four).

It relies on gunicorn 27's gthread internals: the ``worker_connections`` its loop
compares ``nr_conns`` with, its ``pending_conns``, and ``method_queue``, which wakes its
loop (the loop also wakes by itself each second). ``pyproject.toml`` pins gunicorn 27.
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# Connections that are not waiting on a FHIR server: one computing, one read and
# waiting for its turn, so that a worker never idles between calls.
AHEAD = 2


def connections_allowed(limit: int, aside: int, waiting: int) -> int:
    """How many connections a worker may hold: at most ``limit`` (its threads), and at
    most ``AHEAD`` besides the ``aside`` ones gunicorn holds without a thread (no bytes
    yet) and the calls ``waiting`` on a FHIR server."""
    return min(limit, AHEAD + aside + waiting)


def _nothing() -> None:
    return None


class TurnWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """``gthread`` with the connection limit above (set as ``worker_class``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._limit = 0
        self._turns: Any = None
        super().__init__(*args, **kwargs)  # sets worker_connections (the setter below)

    @property
    def worker_connections(self) -> int:
        """Read by gunicorn's loop before each wait for events."""
        if self._turns is None:
            return self._limit
        aside = len(self.pending_conns)
        return connections_allowed(self._limit, aside, self._turns.waiting_calls)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._limit = value

    def run(self) -> None:
        runtime = getattr(self.wsgi, "extensions", {}).get("spine_cds")
        if runtime is not None:
            self._turns = runtime.turns
            # A call that starts waiting frees a place: wake the loop to take the next.
            self._turns.on_wait = lambda: self.method_queue.defer(_nothing)
        super().run()
