"""One invocation's conversation with a FHIR server: GETs within the deadline, pages,
body limits and the log line of a failure. ``FhirClient`` (``client.py``) runs one per
call and shares its pool and settings with it.

What a FHIR server can make a worker hold is bounded four ways: a page is at most
``MAX_PAGE_BYTES`` and opens at most ``MAX_PAGE_CONTAINERS`` objects and arrays, all pages
of all keys of one call together at most ``MAX_CALL_BYTES`` (read bytes, and each object
or array as ``CONTAINER_BYTES``, are counted as they arrive, across the fetch threads),
and no page is parsed once the call's deadline has passed (its key is late, as a key
still being read is). A page over the call's allowance ends its key's paging as
``fhir_max_pages`` does (cut off: the rules then ask for more before advising against
imaging); a first page over it fails the key (412 when the key is required). So does
any other failure of a later page (a 401 once the token expired, a 500): the pages read
are kept, cut off; only a first page's failure, or the deadline, fails the key. Why an
answer or a connection failed is worded in ``failures``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import urllib3.exceptions

from cds_service.fhir.bundles import (
    FhirError,
    Problem,
    QueryShape,
    _link,
    failed_outright,
    next_link,
    read_search_page,
    shape_mismatch,
    unwrap_bundle,
)
from cds_service.fhir.deadline import _IN_FLIGHT, _SocketWatch
from cds_service.fhir.failures import (
    OUTCOME_BYTES,
    connection_failure,
    status_reason,
    timeout_reason,
)
from cds_service.fhir.session import FhirSession
from cds_service.fhir.settings import FhirSettings
from cds_service.fhir.urls import leads_under, server_base

LOG = logging.getLogger("cds_service.fhir")

_MIB = 1024 * 1024
# One page. A patient's search page of 100 Observations is about 100-200 KB (an example
# patient's Observation is 0.7 KB; an EHR's, with its extensions, one or two), so 8 MiB
# is forty times the largest page a search of this service should get, and a parsed page
# (dicts, or typed Structs keeping the bytes) stays within a few tens of MB. Before: 32 MiB,
# and a server answering each of a call's searches with 30 MB took a worker to 1.3 GB.
MAX_PAGE_BYTES = 8 * _MIB
# Every page of every key of one call together. Seven searches of ``fhir_max_pages`` (5)
# pages of 200 KB are 7 MB: 16 MiB leaves twice that, and bounds what one call (one of a
# worker's ``threads``) can make the worker parse and hold, whatever its pages.
MAX_CALL_BYTES = 16 * _MIB
# Bytes on the wire are not what a page costs once parsed: "{},{},..." grows twenty-fold
# and more into Python objects (an attack suite: a page under the byte cap took a worker
# to 336 MB). So the objects and arrays of a page are counted as its bytes arrive: a page
# may open at most this many (one of 300 Observations opens about 15,000-25,000), and each
# is charged to the call's allowance as this many bytes, so that what a call can make a
# worker hold stays near its byte limit whatever the pages' shape.
MAX_PAGE_CONTAINERS = 150_000
CONTAINER_BYTES = 32
_CHUNK_BYTES = 64 * 1024
BUDGET_REASON = "the FHIR server did not answer within the time budget"
TOO_LARGE_REASON = f"FHIR server response is too large (over {MAX_PAGE_BYTES // _MIB} MiB)"
TOO_COMPLEX_REASON = (
    f"FHIR server response is too complex (over {MAX_PAGE_CONTAINERS:,} objects and arrays "
    "in one page)"
)
CALL_BYTES_REASON = (
    f"the FHIR server's answers to this call passed {MAX_CALL_BYTES // _MIB} MiB in all; "
    "the rest was not read"
)


class _CallBytesSpent(FhirError):
    """This call's allowance of bytes from the FHIR server (``MAX_CALL_BYTES``) is spent."""


class _Allowance:
    """The bytes one call may still read from its FHIR server, shared by its fetch threads."""

    def __init__(self, total: int) -> None:
        self._left = total
        self._lock = threading.Lock()

    def covers(self, size: int) -> bool:
        return size <= self._left

    def take(self, size: int) -> bool:
        """Count ``size`` bytes read; False once more has been read than allowed."""
        with self._lock:
            self._left -= size
            return self._left >= 0


class _Exchange:
    """The FHIR traffic of one invocation: one server, one token, one deadline.

    Lives for one call of ``fetch_all``; holds the token only in the request headers, which
    are dropped with it.
    """

    def __init__(
        self,
        session: FhirSession,
        settings: FhirSettings,
        fhir_server: str,
        access_token: str | None,
        deadline: float,
    ) -> None:
        self.session = session
        self.settings = settings
        self.base = fhir_server.rstrip("/")
        self.origin, self.base_path = server_base(fhir_server)
        self.host = urlsplit(fhir_server).netloc
        self.deadline = deadline
        # FHIR R4 search: with ``handling=lenient`` a server ignores a search parameter it
        # does not support (``_sort`` on some EHRs) instead of refusing the search.
        self.headers = {"Accept": "application/fhir+json", "Prefer": "handling=lenient"}
        self.watch = _SocketWatch()
        self.allowance = _Allowance(MAX_CALL_BYTES)
        if access_token:
            self.headers["Authorization"] = f"Bearer {access_token}"

    def within(self, url: str) -> bool:
        """``url`` leads to fhirServer (``urls.leads_under``). A paging link to another
        path of the same host (an admin endpoint, another tenant's ``/r4/<tenant>``) gets
        no token: an integration tester found one fetched with it. Nor does one that
        climbs out of the base through dot segments (``/fhir/../admin``,
        ``/fhir/%2e%2e/admin``), which an attack suite did."""
        return leads_under(url, self.origin, self.base_path)

    def fetch(
        self, key: str, query: str, shape: QueryShape
    ) -> tuple[list[dict[str, Any]], list[Problem]]:
        """One template query, all its pages; raises FhirError."""
        url = f"{self.base}/{query.lstrip('/')}"
        first = self.get(key, url, shape)
        if not shape.is_search:
            return [first], []
        return self.pages(key, first, shape, url, max_pages=self.settings.max_pages)

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
        failure = failed_outright(resources, notes)
        if failure is not None:  # answered 200, but with only an error: a failed search
            self.log_failure(key, shape.resource_type, 200, None, failure.reason)
            raise FhirError(key, failure.reason)
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
            if not self.within(target):
                reason = (
                    "a next link points away from fhirServer (another host, a path outside "
                    "its base, or not a plain URL); it was not followed"
                )
                self.log_failure(key, shape.resource_type, None, None, reason)
                raise FhirError(key, reason)
            try:
                page = self.get(key, target, shape)
            except _CallBytesSpent:
                notes.append(
                    Problem(
                        key,
                        f"paging stopped after {pages} pages: {CALL_BYTES_REASON}",
                        cut_off=True,
                    )
                )
                return resources, notes
            except FhirError as exc:
                if exc.reason == BUDGET_REASON:
                    raise  # the call is answering without this key: it is late
                # The pages read are kept, as when paging is cut off at the page limit: a
                # 401 on page 2 (a token that expired mid-search) lost the newest results
                # of page 1 with the key (an integrator's review). Said as cut off, so no
                # advice against imaging stands on it without the baseline read.
                reason = (
                    f"paging stopped after {pages} pages: page {pages + 1} failed: {exc.reason}"
                )
                notes.append(Problem(key, reason, cut_off=True))
                return resources, notes
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
        settings = self.settings
        if not self.within(url):
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
            with self.session.get_streamed(url, self.headers, timeout) as response:
                status = response.status_code
                if status != 200:
                    raise FhirError(key, self._refusal(response, url))
                body = self._read_body(key, response)
        except FhirError as exc:
            self.log_failure(key, resource_type, status, started, exc.reason)
            raise
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            reason = BUDGET_REASON if time.monotonic() >= self.deadline else timeout_reason(exc)
            self.log_failure(key, resource_type, status, started, reason, type(exc).__name__)
            raise FhirError(key, reason) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            reason = connection_failure(exc)
            self.log_failure(key, resource_type, status, started, reason, type(exc).__name__)
            raise FhirError(key, reason) from None
        finally:
            _IN_FLIGHT.watch = None
        if time.monotonic() >= self.deadline:
            # The call is answering without this key: parsing the page now would only
            # take memory, and the process's CPU from the calls still being answered.
            self.log_failure(key, resource_type, status, started, BUDGET_REASON)
            raise FhirError(key, BUDGET_REASON)
        # An Observation search page is read typed, as prefetch is (a combined search's
        # too: combine.split reads the typed codes).
        data = read_search_page(body, shape)
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
        would otherwise keep a read going long after the budget) and the page's and the
        call's byte limits as the bytes arrive (decoded: what is held)."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_PAGE_BYTES:
            raise FhirError(key, TOO_LARGE_REASON)
        if declared.isdigit() and not self.allowance.covers(int(declared)):
            raise _CallBytesSpent(key, CALL_BYTES_REASON)
        parts: list[bytes] = []
        size = containers = 0
        try:
            for chunk in decoded_pieces(response, self.deadline):
                size += len(chunk)
                if size > MAX_PAGE_BYTES:
                    raise FhirError(key, TOO_LARGE_REASON)
                opened = chunk.count(b"{") + chunk.count(b"[")
                containers += opened
                if containers > MAX_PAGE_CONTAINERS:
                    raise FhirError(key, TOO_COMPLEX_REASON)
                if not self.allowance.take(len(chunk) + opened * CONTAINER_BYTES):
                    raise _CallBytesSpent(key, CALL_BYTES_REASON)
                parts.append(chunk)
        except PastDeadline:
            raise FhirError(key, BUDGET_REASON) from None
        return b"".join(parts)

    def _refusal(self, response: requests.Response, url: str) -> str:
        """Why the server answered ``response`` (not 200), with the codes it gave: at most
        ``OUTCOME_BYTES`` of its body are read (the page's bounded reading, within the
        deadline), as a longer one is no short OperationOutcome; nothing is charged to
        the call's allowance, which this small a read cannot matter to."""
        parts: list[bytes] = []
        size = 0
        declared = response.headers.get("Content-Length", "")
        if not declared.isdigit() or int(declared) <= OUTCOME_BYTES:
            try:
                for chunk in decoded_pieces(response, self.deadline, OUTCOME_BYTES + 1):
                    parts.append(chunk)
                    size += len(chunk)
                    if size > OUTCOME_BYTES:
                        break
            except (PastDeadline, requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                parts = []  # the status alone is reason enough
        authenticate = response.headers.get("WWW-Authenticate", "")
        return status_reason(response.status_code, authenticate, b"".join(parts), url)

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


class PastDeadline(Exception):
    """The deadline passed while a body was still coming (``decoded_pieces``)."""


def decoded_pieces(
    response: requests.Response, deadline: float, piece_bytes: int = _CHUNK_BYTES
) -> Iterator[bytes]:
    """The body of a streamed ``response``, decoded (gzip, deflate), in pieces of at most
    ``piece_bytes`` as they arrive. The deadline is checked before each piece, so a server
    that trickles bytes faster than the read timeout cannot keep a read going past it, and
    a compressed body is never decoded in one go. Raises ``PastDeadline``."""
    while True:
        if time.monotonic() >= deadline:
            raise PastDeadline
        piece: bytes = response.raw.read1(piece_bytes, decode_content=True)
        if not piece:
            return
        yield piece
