"""The FHIR client: fetch what the EHR did not prefetch, within the invocation's deadline.

See the package docstring for the rules it keeps; the pure reading of answers is in
``bundles``, URL safety in ``urls``, the socket deadline in ``deadline``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from cds_service.fhir.bundles import (
    FetchResult,
    FhirError,
    FirstPage,
    Problem,
    QueryShape,
    next_link,
    query_shape,
    unwrap_bundle,
)
from cds_service.fhir.deadline import _SocketWatch, _WatchedAdapter
from cds_service.fhir.exchange import BUDGET_REASON, _Exchange
from cds_service.fhir.probe import open_connection
from cds_service.fhir.session import FhirSession
from cds_service.fhir.settings import FhirSettings
from cds_service.fhir.urls import server_url_problem
from cds_service.turns import Turns

LOG = logging.getLogger("cds_service.fhir")

# One key's work in a fetch thread: its resources and the notes about them.
_Job = Callable[[], tuple[list[Any], list[Problem]]]
_Future = Future[tuple[list[Any], list[Problem]]]
# Told a key's resources as soon as they are all in (``FhirClient.fetch_all``).
OnResult = Callable[[str, list[Any]], None]


class FhirClient:
    """One per app; thread-safe. Holds the pooled session and the fetch threads."""

    def __init__(
        self,
        settings: FhirSettings,
        session: FhirSession | None = None,
        calls_at_once: int = 1,
        turns: Turns | None = None,
    ) -> None:
        """``calls_at_once``: the calls this process answers at the same time (its
        threads); each may fetch ``max_concurrency`` queries at once, so the fetch threads
        and pooled connections are sized for all of them, and a call never waits for
        another's fetches. ``turns``: the process's turn of hook calls, given away while
        a call waits for its fetches (``cds_service.turns``)."""
        self.settings = settings
        slots = settings.max_concurrency * max(1, calls_at_once)
        self._owns_session = session is None
        if session is None:
            session = FhirSession()
            adapter = _WatchedAdapter(pool_connections=4, pool_maxsize=slots, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="fhir-fetch")
        self._closed = threading.Event()
        self._turns = turns if turns is not None else Turns()

    def fetch_all(
        self,
        fhir_server: str,
        access_token: str | None,
        queries: Mapping[str, str],
        deadline: float,
        *,
        first_pages: Mapping[str, FirstPage] | None = None,
        on_result: OnResult | None = None,
    ) -> FetchResult:
        """Fetch each relative query (key -> query) and read on prefetched ``first_pages``.

        All of it runs concurrently and ends by ``deadline`` (``time.monotonic()``); a key
        not done by then is reported and its work abandoned. A failure to read further pages
        of a prefetched Bundle is a note (what was prefetched is kept), not an error.

        ``on_result(key, resources)`` runs in a fetch thread as soon as a key's resources
        are all in, while other keys are still on their way, and only when no call of
        this process is computing (``Turns.spare``): the caller may start reading them
        there, in time it would otherwise spend waiting. It must not rely on being called
        (``_Teller`` says when it is not); its errors are logged and dropped,
        and its time never counts against the deadline.
        """
        first_pages = first_pages or {}
        problem = server_url_problem(fhir_server)
        if problem is not None:
            return _fail_all(queries, first_pages, problem)
        exchange = _Exchange(self.session, self.settings, fhir_server, access_token, deadline)
        jobs: dict[str, _Job] = {}
        for key, query in queries.items():
            shape = query_shape(query)
            if urlsplit(query).scheme:
                reason = "prefetch template is an absolute URL; only relative queries are fetched"
                jobs[key] = _raiser(FhirError(key, reason))
            elif shape is None:
                jobs[key] = _raiser(
                    FhirError(key, "prefetch template is not a FHIR read or search")
                )
            else:
                jobs[key] = _bind_fetch(exchange, key, query, shape)
        for key, first in first_pages.items():
            jobs[key] = _bind_follow(exchange, key, first, self.settings.max_pages)
        return self._run(jobs, first_pages, deadline, exchange.watch, on_result)

    def follow_pages(
        self,
        fhir_server: str | None,
        access_token: str | None,
        first_pages: Mapping[str, FirstPage],
        deadline: float,
    ) -> FetchResult:
        """Read the further pages of prefetched Bundles; without a usable ``fhirServer`` keep
        the first pages as they are and note that more exists."""
        if fhir_server is not None and server_url_problem(fhir_server) is None:
            return self.fetch_all(fhir_server, access_token, {}, deadline, first_pages=first_pages)
        resources: dict[str, list[dict[str, Any]]] = {}
        notes: list[Problem] = []
        for key, first in first_pages.items():
            found, more = unwrap_bundle(key, first.bundle, first.resource_type)
            resources[key] = found
            notes.extend(more)
            if next_link(first.bundle):
                notes.append(
                    Problem(
                        key,
                        "prefetched Bundle has more pages; not read (no usable fhirServer)",
                        cut_off=True,
                    )
                )
        return FetchResult(resources, {}, tuple(notes))

    def _run(
        self,
        jobs: Mapping[str, _Job],
        first_pages: Mapping[str, FirstPage],
        deadline: float,
        watch: _SocketWatch,
        on_result: OnResult | None = None,
    ) -> FetchResult:
        resources: dict[str, list[dict[str, Any]]] = {}
        errors: dict[str, FhirError] = {}
        notes: list[Problem] = []
        if not jobs:
            return FetchResult(resources, errors, ())
        teller: _Teller | None = None
        # Each job runs in a copy of this thread's context (one copy each: a context is
        # entered by one thread at a time), so what it logs carries the call's request
        # id (logs.request_id_var) and nothing it sets outlives it in the fetch thread.
        context = contextvars.copy_context()
        if on_result is None:
            futures = {
                self._executor.submit(context.copy().run, job): key for key, job in jobs.items()
            }
        else:
            # Each job starts once every callback is attached: a callback attached to a
            # future already done would run at once, on this thread.
            attached = threading.Event()
            futures = {
                self._executor.submit(context.copy().run, _after(attached, job)): key
                for key, job in jobs.items()
            }
            try:
                teller = _Teller(futures, deadline, on_result, self._turns, context)
            finally:
                attached.set()
        with self._turns.waiting():
            done, late = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
            if teller is not None:
                teller.settle({futures[future] for future in done})
        if late:
            watch.abort()  # frees threads stuck reading headers that never end
        for future in late:
            future.cancel()  # not started yet: never will; running: abandoned, bounded by timeouts
            key = futures[future]
            LOG.warning("FHIR fetch abandoned at the deadline: key=%s", key)
            errors[key] = FhirError(key, BUDGET_REASON)
        for future in done:
            key = futures[future]
            try:
                found, more = future.result()
            except FhirError as exc:
                errors[key] = exc
                continue
            except Exception as exc:  # a bug, not the server: report it without details
                LOG.error("FHIR fetch crashed: key=%s error=%s", key, type(exc).__name__)
                errors[key] = FhirError(key, "an unexpected error occurred while fetching")
                continue
            resources[key] = found
            notes.extend(more)
        for key, error in list(errors.items()):
            if key in first_pages:  # keep what the client prefetched; note the rest
                del errors[key]
                first = first_pages[key]
                resources[key], more = unwrap_bundle(key, first.bundle, first.resource_type)
                notes.extend(more)
                notes.append(
                    Problem(
                        key,
                        f"further pages of the prefetched Bundle not read: {error.reason}",
                        cut_off=True,
                    )
                )
        # Report in the order the keys were given, not the order the fetches finished.
        position = {key: i for i, key in enumerate(jobs)}
        return FetchResult(
            {key: resources[key] for key in jobs if key in resources},
            {key: errors[key] for key in jobs if key in errors},
            tuple(sorted(notes, key=lambda p: position.get(p.key, len(position)))),
        )

    def open_connection(self, fhir_server: str) -> str:
        """Open the first pooled connection to ``fhir_server`` (a worker's warm-up): GET its
        CapabilityStatement within this client's timeouts and a small byte cap
        (``probe``), so the name lookup, TCP and TLS are paid before a call's budget
        starts. What happened, in words for the log (never raises)."""
        return open_connection(self.session, self.settings, fhir_server)

    def close(self) -> None:
        """Stop the threads (not waiting for abandoned fetches) and close our session."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._owns_session:
            self.session.close()


def _fail_all(
    queries: Mapping[str, str], first_pages: Mapping[str, FirstPage], reason: str
) -> FetchResult:
    errors = {key: FhirError(key, reason) for key in queries}
    resources: dict[str, list[dict[str, Any]]] = {}
    notes: list[Problem] = []
    for key, first in first_pages.items():
        resources[key], more = unwrap_bundle(key, first.bundle, first.resource_type)
        notes.extend(more)
        notes.append(
            Problem(key, f"further pages of the prefetched Bundle not read: {reason}", cut_off=True)
        )
    return FetchResult(resources, errors, tuple(notes))


class _Teller:
    """Tells ``on_result`` each key fetched, on a fetch thread, after its future is done:
    the caller's wait never counts the read as fetch time, so a read cannot make a key
    late. Only while a call is not computing (``Turns.spare``): a key that comes in then,
    or while another is being read, waits for the next key's thread. Never once the last
    key is in (reading then saves nothing: the caller is about to read), nor past the
    deadline (the call is answering)."""

    def __init__(
        self,
        futures: Mapping[_Future, str],
        deadline: float,
        on_result: OnResult,
        turns: Turns,
        context: contextvars.Context,
    ) -> None:
        # No reference from here to the futures: each holds its callback, and a cycle
        # would keep a call's fetched pages alive until a full collection (measured: the
        # workers grew by 42% over a benchmark run, against 13% without the cycle).
        self._deadline = deadline
        self._on_result = on_result
        self._turns = turns
        self._changed = threading.Condition()
        self._outstanding = len(futures)
        self._waiting: list[tuple[str, list[Any]]] = []  # in, not yet told
        self._settled: set[str] = set()  # keys whose callback has ended
        for future, key in futures.items():
            # a callback runs after its job's context is left: in a copy of the call's own
            future.add_done_callback(_in_context(context.copy(), partial(self._done, key)))

    def settle(self, keys: set[str]) -> None:
        """Wait until the callbacks of ``keys`` (their futures done) have ended, so that
        the caller never reads what a fetch thread is still reading (each is short: one
        mapper's work)."""
        with self._changed:
            self._changed.wait_for(lambda: keys <= self._settled)
            self._waiting.clear()  # what was not told early, the caller reads itself

    def _done(self, key: str, future: _Future) -> None:
        try:
            with self._changed:
                self._outstanding -= 1
                if not future.cancelled() and future.exception() is None:
                    self._waiting.append((key, future.result()[0]))
                if self._outstanding == 0 or time.monotonic() >= self._deadline:
                    return
            with self._turns.spare() as free:
                while free:
                    with self._changed:
                        if not self._waiting or self._outstanding == 0:
                            break
                        told, found = self._waiting.pop(0)
                    self._tell(told, found)
        finally:
            with self._changed:
                self._settled.add(key)
                self._changed.notify_all()

    def _tell(self, key: str, found: list[Any]) -> None:
        try:
            self._on_result(key, found)
        except Exception as exc:  # a bug in the reader: the caller reads again
            LOG.error("early read failed: key=%s error=%s", key, type(exc).__name__)


def _in_context(
    context: contextvars.Context, callback: Callable[[_Future], None]
) -> Callable[[_Future], None]:
    return lambda future: context.run(callback, future)


def _after(event: threading.Event, job: _Job) -> _Job:
    def run() -> tuple[list[Any], list[Problem]]:
        event.wait()
        return job()

    return run


def _raiser(error: FhirError) -> _Job:
    def job() -> tuple[list[dict[str, Any]], list[Problem]]:
        raise error

    return job


def _bind_fetch(exchange: _Exchange, key: str, query: str, shape: QueryShape) -> _Job:
    return lambda: exchange.fetch(key, query, shape)


def _bind_follow(exchange: _Exchange, key: str, first: FirstPage, max_pages: int) -> _Job:
    shape = QueryShape(first.resource_type, is_search=True)
    return lambda: exchange.pages(key, first.bundle, shape, None, max_pages)
