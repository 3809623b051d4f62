"""Fetching what the EHR did not prefetch from its FHIR server, within a time budget.

CDS Hooks services should answer in about half a second, and a hung or slow FHIR server
must not hold a request (or a worker) beyond that. Hence:

- one ``requests.Session`` (connection pooling) and one thread pool, both made once at
  startup and shared by all requests; the missing queries of one invocation run
  concurrently;
- every HTTP exchange of one invocation (pages included) must end by a single
  ``time.monotonic()`` deadline: timeouts are cut to the time left, bodies are read in
  small pieces with the deadline checked between them, and the caller waits on the
  futures only for the time left, abandoning late ones; a socket still waiting for the
  answer's headers when its fetch is abandoned is shut down, because a server that drips
  header bytes slower than the read timeout would hold a fetch thread (and so every later
  invocation of this worker) for as long as it likes;
- search paging follows ``next`` links up to ``Settings.fhir_max_pages`` and stops on a
  link seen before; a ``next`` link to another host is never followed (the access token
  would go with it); redirects are not followed for the same reason. "Another host" is
  judged by the parser that connects (urllib3's), and a URL that two parsers could read
  differently (a backslash, userinfo, percent-escapes or non-ASCII in the authority,
  whitespace or control characters anywhere) is never contacted at all: a paging link
  like ``http://b:1\\@a:2/`` reads as host ``a`` to ``urlsplit`` but connects to ``b``;
- failures become ``FhirError`` values with a reason that is safe to show the client. The
  access token is never logged, stored or put in a message, and log lines name the key,
  resource type and host, never the query (it carries the patient id).

Resources stay plain dicts: parsing them with fhir.resources is the mappers' job, done
selectively, because parsing everything costs far more than the rest of a request.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import parse_url

from cds_service.settings import Settings

LOG = logging.getLogger("cds_service.fhir")

MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # one page; a patient's search page is far smaller
_CHUNK_BYTES = 64 * 1024
_SEARCH_BUNDLE_TYPES = frozenset({"searchset"})
# A client may hand over a search result as a collection, or without a type (seen in practice).
_PREFETCH_BUNDLE_TYPES = frozenset({"searchset", "collection"})
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

BUDGET_REASON = "the FHIR server did not answer within the time budget"


@dataclass(frozen=True)
class Problem:
    """Something about one prefetch key, in words the client may read."""

    key: str
    reason: str


class FhirError(Exception):
    """One prefetch key could not be fetched; ``reason`` is client-safe text."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class FirstPage:
    """A prefetched search Bundle whose further pages (``next`` links) are still to be read."""

    resource_type: str
    bundle: dict[str, Any]


@dataclass(frozen=True)
class FetchResult:
    """Per key: the resources, or the error; and non-fatal notes worth auditing."""

    resources: dict[str, list[dict[str, Any]]]
    errors: dict[str, FhirError]
    notes: tuple[Problem, ...]


@dataclass(frozen=True)
class QueryShape:
    """What a relative FHIR query asks for: a read of one resource or a type-level search."""

    resource_type: str
    is_search: bool


def query_shape(query: str) -> QueryShape | None:
    """``Observation?code=..`` is a search, ``Patient/123`` a read; None when it is neither."""
    path = query.split("?", 1)[0].strip("/")
    segments = path.split("/") if path else []
    if not segments or not _RESOURCE_TYPE.match(segments[0]):
        return None
    if len(segments) == 1 or (len(segments) == 2 and segments[1] == "_search"):
        return QueryShape(segments[0], is_search=True)
    return QueryShape(segments[0], is_search=False)


def server_url_problem(fhir_server: object) -> str | None:
    """Why ``fhirServer`` cannot be used, or None. Only plain http(s) base URLs are accepted."""
    if not isinstance(fhir_server, str) or not fhir_server:
        return "fhirServer is missing"
    try:
        parts = urlsplit(fhir_server)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return "fhirServer is not a valid URL"
    del port
    if parts.scheme.lower() not in {"http", "https"}:
        return "fhirServer is not an http(s) URL"
    if not parts.hostname:
        return "fhirServer has no host"
    if parts.username is not None or parts.password is not None:
        return "fhirServer must not carry credentials"
    if parts.query or parts.fragment:
        return "fhirServer must be a base URL without query or fragment"
    if connect_origin(fhir_server) is None:
        return "fhirServer is not a plain http(s) URL (unsafe characters in it)"
    return None


Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Anything but printable ASCII other than backslash: whitespace and controls are dropped
# or kept by different parsers, a backslash ends the authority for some and not others,
# and non-ASCII hosts are IDNA-mapped by some.
_UNSAFE_URL = re.compile(r"[^\x21-\x5b\x5d-\x7e]")


def connect_origin(url: str) -> Origin | None:
    """(scheme, host, port) that the HTTP stack will really connect to for ``url``, or None
    when ``url`` is not one to send a token to: not absolute http(s), userinfo, characters
    that parsers treat differently, or ``urlsplit`` and urllib3 disagree about the origin.

    Hosts are compared as written (lower case, brackets off): ``127.1`` and ``127.0.0.1``
    are different origins here, which errs on the side of not sending the token.
    """
    if not isinstance(url, str) or _UNSAFE_URL.search(url):
        return None
    try:
        split = urlsplit(url)
        split_port = split.port
        parsed = parse_url(url)
    except (ValueError, urllib3.exceptions.LocationParseError):
        return None
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or split.scheme.lower() != scheme:
        return None
    if "@" in split.netloc or "%" in split.netloc or parsed.auth is not None:
        return None
    host = (parsed.host or "").lower().strip("[]")
    if not host or host != (split.hostname or "").lower():
        return None
    port = _DEFAULT_PORTS[scheme] if parsed.port is None else parsed.port
    if port != (_DEFAULT_PORTS[scheme] if split_port is None else split_port):
        return None
    return scheme, host, port


def _word(text: object, fallback: str) -> str:
    """Text from a server, shown only when it is one plain word (no injection, no ids)."""
    return text if isinstance(text, str) and _SAFE_WORD.match(text) else fallback


def _a(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def shape_mismatch(value: object, shape: QueryShape, origin: str) -> str | None:
    """Why a resource is not what the query asks for, or None. ``origin`` starts the reason."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return f"{origin} something that is not a FHIR resource"
    found = _word(value["resourceType"], "unknown resource")
    if found == "OperationOutcome":
        return f"{origin} an OperationOutcome instead of data"
    if shape.is_search:
        if found != "Bundle":
            return f"{origin} {_a(found)} where a search Bundle was expected"
        bundle_type = value.get("type")
        allowed = _SEARCH_BUNDLE_TYPES if origin.startswith("FHIR") else _PREFETCH_BUNDLE_TYPES
        if bundle_type is not None and (
            not isinstance(bundle_type, str) or bundle_type not in allowed
        ):
            shown = _word(bundle_type, "unknown")
            return f"{origin} a Bundle of type {shown!r} where a searchset was expected"
        if "entry" in value and not isinstance(value["entry"], list):
            return f"{origin} a Bundle whose entry is not a list"
        return None
    if found != shape.resource_type:
        return f"{origin} {_a(found)} where {_a(shape.resource_type)} was expected"
    return None


def unwrap_bundle(
    key: str, bundle: Mapping[str, Any], resource_type: str
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The entries' resources of the searched type; outcome and stray entries are noted."""
    found: list[dict[str, Any]] = []
    outcomes: list[str] = []
    has_outcome = False
    strays = 0
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        search = entry.get("search") if isinstance(entry, dict) else None
        mode = search.get("mode") if isinstance(search, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if mode == "outcome" or kind == "OperationOutcome":
            has_outcome = True
            outcomes.extend(_issue_words(resource))
        elif isinstance(resource, dict) and kind == resource_type:
            found.append(resource)
        elif mode != "include":
            strays += 1
    notes: list[Problem] = []
    if has_outcome:
        issues = ", ".join(sorted(set(outcomes))) or "no issues given"
        notes.append(Problem(key, f"search result carried an OperationOutcome ({issues}); ignored"))
    if strays:
        notes.append(Problem(key, f"{strays} search entries that are not {resource_type} ignored"))
    return found, notes


def _issue_words(outcome: object) -> list[str]:
    if not isinstance(outcome, dict) or not isinstance(outcome.get("issue"), list):
        return []
    words = []
    for issue in outcome["issue"]:
        if isinstance(issue, dict):
            words.append(f"{_word(issue.get('severity'), '?')}/{_word(issue.get('code'), '?')}")
    return words


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The Bundle's ``next`` link, if any."""
    return _link(bundle, "next")


def _link(bundle: Mapping[str, Any], relation: str) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == relation:
            url = link.get("url")
            if isinstance(url, str) and url:
                return url
    return None


def _status_reason(status: int) -> str:
    hint = {
        401: " (access token missing or refused)",
        403: " (access not allowed)",
        404: " (not found)",
        410: " (gone)",
        429: " (too many requests)",
    }.get(status, "")
    if not hint and 300 <= status < 400:
        hint = " (redirects are not followed)"
    elif not hint and status >= 500:
        hint = " (server error)"
    return f"FHIR server answered {status}{hint}"


# The _SocketWatch of the exchange whose request this fetch thread is making (or None).
_IN_FLIGHT = threading.local()


class _SocketWatch:
    """Sockets waiting for an answer's headers; ``abort`` shuts them down (and any that
    come later), which ends a blocked read at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._aborted = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            if self._aborted:
                _shut(sock)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its TLS
        # state under the thread that is reading.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _watched_getresponse(conn: HTTPConnection, getresponse: Callable[[], Any]) -> Any:
    watch: _SocketWatch | None = getattr(_IN_FLIGHT, "watch", None)
    sock = conn.sock
    if watch is None or sock is None:
        return getresponse()
    watch.add(sock)
    try:
        return getresponse()
    finally:
        watch.discard(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        return _watched_getresponse(self, super().getresponse)


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        return _watched_getresponse(self, super().getresponse)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """Pools whose connections register with the exchange of the thread using them."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


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
        return self.pages(key, first, shape, url, max_pages=self.client.settings.fhir_max_pages)

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
                    )
                )
                return resources, notes
            if pages >= max_pages:
                notes.append(
                    Problem(
                        key,
                        f"paging stopped after {pages} pages (fhir_max_pages); "
                        "further results were not read",
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
            min(settings.fhir_connect_timeout_seconds, remaining),
            min(settings.fhir_read_timeout_seconds, remaining),
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

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = _WatchedAdapter(
                pool_connections=4, pool_maxsize=settings.fhir_max_concurrency, max_retries=0
            )
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self._executor = ThreadPoolExecutor(
            max_workers=settings.fhir_max_concurrency, thread_name_prefix="fhir-fetch"
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
            jobs[key] = _bind_follow(exchange, key, first, self.settings.fhir_max_pages)
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
                        key, "prefetched Bundle has more pages; not read (no usable fhirServer)"
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
                    Problem(key, f"further pages of the prefetched Bundle not read: {error.reason}")
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
        notes.append(Problem(key, f"further pages of the prefetched Bundle not read: {reason}"))
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
