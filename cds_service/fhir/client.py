"""The FHIR client: fetch what the EHR did not prefetch, within the invocation's deadline.

See the package docstring for the rules it keeps; the pure reading of answers is in
``bundles``, URL safety in ``urls``, the socket deadline in ``deadline``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import urllib3.exceptions

from cds_service.fhir.bundles import (
    FetchResult,
    FhirError,
    FirstPage,
    Problem,
    QueryShape,
    _link,
    _status_reason,
    next_link,
    query_shape,
    read_search_page,
    shape_mismatch,
    unwrap_bundle,
)
from cds_service.fhir.combine import SEPARATOR
from cds_service.fhir.deadline import _IN_FLIGHT, _SocketWatch, _WatchedAdapter
from cds_service.fhir.urls import connect_origin, server_url_problem
from cds_service.settings import FhirSettings

LOG = logging.getLogger("cds_service.fhir")

MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # one page; a patient's search page is far smaller
_CHUNK_BYTES = 64 * 1024
BUDGET_REASON = "the FHIR server did not answer within the time budget"


class _Exchange:
    """The FHIR traffic of one invocation: one server, one token, one deadline.

    Lives for one call of ``fetch_all``; holds the token only in the request headers, which
    are dropped with it.
    """

    def __init__(
        self,
        client: FhirClient,
        fhir_server: str,
        access_token: str | None,
        deadline: float,
    ) -> None:
        self.client = client
        self.base = fhir_server.rstrip("/")
        self.origin = connect_origin(fhir_server)
        self.host = urlsplit(fhir_server).netloc
        self.deadline = deadline
        self.headers = {"Accept": "application/fhir+json"}
        self.watch = _SocketWatch()
        if access_token:
            self.headers["Authorization"] = f"Bearer {access_token}"

    def fetch(
        self, key: str, query: str, shape: QueryShape
    ) -> tuple[list[dict[str, Any]], list[Problem]]:
        """One template query, all its pages; raises FhirError."""
        url = f"{self.base}/{query.lstrip('/')}"
        first = self.get(key, url, shape)
        if not shape.is_search:
            return [first], []
        return self.pages(key, first, shape, url, max_pages=self.client.settings.max_pages)

    def pages(
        self,
        key: str,
        first: dict[str, Any],
        shape: QueryShape,
        first_url: str | None,
        max_pages: int,
    ) -> tuple[list[dict[str, Any]], list[Problem]]:
        """Unwrap a search Bundle and the pages its ``next`` links lead to; raises FhirError."""
        resources, notes = unwrap_bundle(key, first, shape.resource_type)
        seen: set[str] = set()
        current = first_url or self.base + "/"
        page = first
        pages = 1
        while True:
            seen.add(current)
            self_link = _link(page, "self")
            if self_link:
                seen.add(urljoin(current, self_link))
            link = next_link(page)
            if link is None:
                return resources, notes
            target = urljoin(current, link)
            if target in seen:
                notes.append(
                    Problem(
                        key,
                        f"paging stopped after {pages} pages: "
                        "the next link leads back to a page already read",
                        cut_off=True,
                    )
                )
                return resources, notes
            if pages >= max_pages:
                notes.append(
                    Problem(
                        key,
                        f"paging stopped after {pages} pages (fhir_max_pages); "
                        "further results were not read",
                        cut_off=True,
                    )
                )
                return resources, notes
            if connect_origin(target) != self.origin:
                reason = (
                    "a next link points away from fhirServer (or is not a plain URL); "
                    "it was not followed"
                )
                self.log_failure(key, shape.resource_type, None, None, reason)
                raise FhirError(key, reason)
            page = self.get(key, target, shape)
            found, more = unwrap_bundle(key, page, shape.resource_type)
            resources.extend(found)
            notes.extend(more)
            pages += 1
            current = target

    def get(self, key: str, url: str, shape: QueryShape) -> dict[str, Any]:
        """GET one URL within the deadline; the answer must be what ``shape`` asks for.

        Raises FhirError.
        """
        resource_type = shape.resource_type
        settings = self.client.settings
        if self.origin is None or connect_origin(url) != self.origin:
            # Checked again where the token leaves, whatever the caller checked before.
            reason = "a URL that does not lead to fhirServer was not contacted"
            self.log_failure(key, resource_type, None, None, reason)
            raise FhirError(key, reason)
        started = time.monotonic()
        remaining = self.deadline - started
        if remaining <= 0:
            raise FhirError(key, BUDGET_REASON)
        timeout = (
            min(settings.connect_timeout_seconds, remaining),
            min(settings.read_timeout_seconds, remaining),
        )
        status: int | None = None
        _IN_FLIGHT.watch = self.watch
        try:
            with self.client.session.get(
                url, headers=self.headers, timeout=timeout, stream=True, allow_redirects=False
            ) as response:
                status = response.status_code
                if status != 200:
                    raise FhirError(key, _status_reason(status))
                body = self._read_body(key, response)
        except FhirError as exc:
            self.log_failure(key, resource_type, status, started, exc.reason)
            raise
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            reason = BUDGET_REASON if time.monotonic() >= self.deadline else _timeout_reason(exc)
            self.log_failure(key, resource_type, status, started, reason, type(exc).__name__)
            raise FhirError(key, reason) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            reason = "the connection to the FHIR server failed (refused, reset or closed)"
            self.log_failure(key, resource_type, status, started, reason, type(exc).__name__)
            raise FhirError(key, reason) from None
        finally:
            _IN_FLIGHT.watch = None
        # An Observation search page is read typed, as prefetch is; not yet a combined
        # search's, which combine.split divides by the codes of dicts.
        data = read_search_page(body, shape) if SEPARATOR not in key else None
        if data is None:
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                reason = "FHIR server sent a response that is not valid JSON"
                self.log_failure(key, resource_type, status, started, reason)
                raise FhirError(key, reason) from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            reason = "FHIR server sent JSON that is not a FHIR resource"
            self.log_failure(key, resource_type, status, started, reason)
            raise FhirError(key, reason)
        mismatch = shape_mismatch(data, shape, "FHIR server sent")
        if mismatch:
            self.log_failure(key, resource_type, status, started, mismatch)
            raise FhirError(key, mismatch)
        LOG.debug(
            "FHIR fetch ok: key=%s type=%s status=%s duration_ms=%d host=%s",
            key, resource_type, status, (time.monotonic() - started) * 1000, self.host,
        )  # fmt: skip
        return data

    def _read_body(self, key: str, response: requests.Response) -> bytes:
        """Read in small pieces, checking the deadline between them (a trickling server
        would otherwise keep a read going long after the budget)."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
            raise FhirError(key, "FHIR server response is too large")
        parts: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() >= self.deadline:
                raise FhirError(key, BUDGET_REASON)
            chunk = response.raw.read1(_CHUNK_BYTES, decode_content=True)
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise FhirError(key, "FHIR server response is too large")
            parts.append(chunk)

    def log_failure(
        self,
        key: str,
        resource_type: str,
        status: int | None,
        started: float | None,
        reason: str,
        error_type: str = "",
    ) -> None:
        duration_ms = (time.monotonic() - started) * 1000 if started is not None else 0.0
        LOG.warning(
            "FHIR fetch failed: key=%s type=%s status=%s duration_ms=%d host=%s reason=%s%s",
            key, resource_type, status if status is not None else "-", duration_ms, self.host,
            reason, f" error={error_type}" if error_type else "",
        )  # fmt: skip


def _timeout_reason(exc: BaseException) -> str:
    if isinstance(exc, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError):
        return "could not connect to the FHIR server in time (connect timeout)"
    return "the FHIR server did not answer in time (read timeout)"


class FhirClient:
    """One per app; thread-safe. Holds the pooled session and the fetch threads."""

    def __init__(self, settings: FhirSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = _WatchedAdapter(
                pool_connections=4, pool_maxsize=settings.max_concurrency, max_retries=0
            )
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self._executor = ThreadPoolExecutor(
            max_workers=settings.max_concurrency, thread_name_prefix="fhir-fetch"
        )
        self._closed = threading.Event()

    def fetch_all(
        self,
        fhir_server: str,
        access_token: str | None,
        queries: Mapping[str, str],
        deadline: float,
        *,
        first_pages: Mapping[str, FirstPage] | None = None,
    ) -> FetchResult:
        """Fetch each relative query (key -> query) and read on prefetched ``first_pages``.

        All of it runs concurrently and ends by ``deadline`` (``time.monotonic()``); a key
        not done by then is reported and its work abandoned. A failure to read further pages
        of a prefetched Bundle is a note (what was prefetched is kept), not an error.
        """
        first_pages = first_pages or {}
        problem = server_url_problem(fhir_server)
        if problem is not None:
            return _fail_all(queries, first_pages, problem)
        exchange = _Exchange(self, fhir_server, access_token, deadline)
        jobs: dict[str, Callable[[], tuple[list[dict[str, Any]], list[Problem]]]] = {}
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
        return self._run(jobs, first_pages, deadline, exchange.watch)

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
        jobs: Mapping[str, Callable[[], tuple[list[dict[str, Any]], list[Problem]]]],
        first_pages: Mapping[str, FirstPage],
        deadline: float,
        watch: _SocketWatch,
    ) -> FetchResult:
        resources: dict[str, list[dict[str, Any]]] = {}
        errors: dict[str, FhirError] = {}
        notes: list[Problem] = []
        if not jobs:
            return FetchResult(resources, errors, ())
        futures: dict[Future[tuple[list[dict[str, Any]], list[Problem]]], str] = {
            self._executor.submit(job): key for key, job in jobs.items()
        }
        done, late = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
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


def _raiser(error: FhirError) -> Callable[[], tuple[list[dict[str, Any]], list[Problem]]]:
    def job() -> tuple[list[dict[str, Any]], list[Problem]]:
        raise error

    return job


def _bind_fetch(
    exchange: _Exchange, key: str, query: str, shape: QueryShape
) -> Callable[[], tuple[list[dict[str, Any]], list[Problem]]]:
    return lambda: exchange.fetch(key, query, shape)


def _bind_follow(
    exchange: _Exchange, key: str, first: FirstPage, max_pages: int
) -> Callable[[], tuple[list[dict[str, Any]], list[Problem]]]:
    shape = QueryShape(first.resource_type, is_search=True)
    return lambda: exchange.pages(key, first.bundle, shape, None, max_pages)
