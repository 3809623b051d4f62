"""A FHIR server that misbehaves on demand: stdlib HTTP server on 127.0.0.1, threaded.

The real test server (fhir_server.py) will not hang, reset connections or send broken
JSON, so this one does, chosen by the first path segment: a client pointed at
``server.url("hang")`` sees ``{base}/hang/Observation?...`` hang, and so on. Modes:

- ``ok``: a searchset with one resource of the searched type (or the resource, for a read)
- ``slow``: like ``ok`` after ``slow_seconds``
- ``cookie``: like ``ok``, setting a cookie (as a load balancer that pins clients does)
- ``hang``: sends nothing for ``hang_seconds`` (released at once by ``stop``)
- ``trickle``: sends headers, then one body byte every 50 ms, never finishing in time
- ``reset``: resets the TCP connection (RST) without answering
- ``500``, ``401``, ``403``, ``404``: that status with an OperationOutcome
- ``refuse-sort``: 400 with an OperationOutcome (``not-supported``) whose diagnostics
  echo the query, as a server that does not support ``_sort`` answers
- ``strict``: refuses (as ``refuse-sort``) a search with ``_sort`` or ``_count`` unless
  the request says ``Prefer: handling=lenient``, then answers as ``ok`` (FHIR R4 search:
  a server told to be lenient ignores parameters it does not support)
- ``refuse-large``: 400 with an OperationOutcome padded past 4 KiB
- ``expired``: 401 with ``WWW-Authenticate: Bearer error="invalid_token"``
- ``expire-on-page-2``: page 1 is a searchset with a ``next`` link; page 2 and later are
  answered as ``expired`` (a token that ran out mid-search)
- ``broken-json``: 200 with truncated JSON
- ``not-a-resource``: 200 with a JSON array
- ``wrong-bundle``: 200 with a Bundle of type ``history``
- ``wrong-resource``: 200 with a Patient where a search Bundle is expected
- ``outcome``: 200 with an OperationOutcome
- ``search-outcome``: a searchset with one resource and one ``search.mode = outcome`` entry
- ``search-failed``: 200 with a searchset whose only entry is a ``fatal`` OperationOutcome
  (a search that failed outright, answered 200, as some EHRs do)
- ``other-patient``: like ``ok``, but each resource's subject is another patient (a server
  that ignored or mis-read ``patient=``)
- ``stray-entries``: every search answers a searchset holding only a Patient
- ``endless``: every page has a ``next`` link to a new page
- ``loop``: page 1 links to page 2, which links back to page 1
- ``redirect``: 302 to another host
- ``foreign-next``: a page whose ``next`` link points at another host
- ``heavy``: every page has a ``next`` link to a new page and is ``size`` bytes long
  (``dense=1``: padded with empty objects instead of spaces)
  (a query parameter, kept in the links, else ``heavy_bytes``; JSON padded with
  spaces); with ``unsized=1`` it is sent without Content-Length, delimited by closing
  the connection
- ``gzip-bomb``: 200 with ``Content-Encoding: gzip``, a body of about 64 KB that decodes to
  ``bomb_bytes`` (a JSON Bundle padded with spaces)
- ``drip-headers``: sends the status line, then one header byte every 50 ms, so the
  headers never end and no per-read timeout fires (for ``hang_seconds``)
- ``proxy``: forwards the request to ``upstream`` (a real FHIR server) and relays the
  answer, with the upstream's base URL in it (paging links) rewritten to this server's
- ``observations-first``: as ``proxy``, but every query other than an Observation search
  is answered ``slow_seconds`` late: the Observations always come in first, as from a
  server that answers one query at a time and got the long search first; with ``hold``
  set to an Event, those queries wait for it instead (at most ``slow_seconds``), so the
  order holds however slow a loaded machine makes the Observation search
- ``switch``: behaves as the mode in the ``fault`` attribute, which a test sets and clears
  at runtime (``server.fault = "hang"`` ... ``server.fault = None``); with no fault it
  behaves as ``proxy`` when an ``upstream`` is given, else as ``ok``

Every request is recorded (path with query, Authorization, Cookie and Accept-Encoding
headers) for the tests to check.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import urllib3

from tests.support.background_http import BackgroundServer

#: The fault modes a ``switch`` server can be given, besides None (healthy).
SWITCHABLE_FAULTS = (
    "hang",
    "trickle",
    "drip-headers",
    "reset",
    "500",
    "401",
    "broken-json",
    "endless",
    "loop",
    "slow",
    "heavy",
)


@dataclass(frozen=True)
class SeenRequest:
    path: str  # path and query, as sent
    authorization: str | None
    cookie: str | None = None
    accept_encoding: str | None = None


def _outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


class FaultyFhirServer(BackgroundServer):
    """Use as a context manager; ``stop`` releases hung handlers and closes the socket."""

    def __init__(
        self,
        hang_seconds: float = 10.0,
        slow_seconds: float = 0.3,
        upstream: str | None = None,
        heavy_bytes: int = 9 * 1024 * 1024,
        bomb_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.hang_seconds = hang_seconds
        self.bomb_bytes = bomb_bytes
        self._bomb: bytes | None = None
        self.heavy_bytes = heavy_bytes
        self.slow_seconds = slow_seconds
        self.upstream = upstream.rstrip("/") if upstream else None
        #: The mode of ``url("switch")``; None: healthy. Read once per request, so setting
        #: it from another thread takes effect for the next request.
        self.fault: str | None = None
        #: ``observations-first``: when set, what the other queries wait for (see above).
        self.hold: threading.Event | None = None
        self._upstream_pool = urllib3.PoolManager(maxsize=32, retries=False)
        self._lock = threading.Lock()
        self._seen: list[SeenRequest] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with owner._lock:
                    owner._seen.append(
                        SeenRequest(
                            self.path,
                            self.headers.get("Authorization"),
                            self.headers.get("Cookie"),
                            self.headers.get("Accept-Encoding"),
                        )
                    )
                try:
                    owner._answer(self)
                except OSError:
                    self.close_connection = True  # the client went away (e.g. it gave up)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output quiet

        self._serve(Handler)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def url(self, mode: str) -> str:
        """The fhirServer base URL that makes this server behave as ``mode``."""
        return f"{self.base_url}/{mode}"

    @property
    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def stop(self) -> None:
        super().stop()
        self._upstream_pool.clear()

    # --- behaviour -------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        segments = [s for s in parts.path.split("/") if s]
        mode = segments[0] if segments else ""
        resource_type = segments[1] if len(segments) > 1 else "Observation"
        is_read = len(segments) > 2
        params = parse_qs(parts.query)
        page = int(params.pop("page", ["1"])[0])
        prefix = f"{self.base_url}/{mode}/{resource_type}"
        if mode == "switch":
            # Paging links keep the query (less page), as a real server's do.
            kept = urlencode(params, doseq=True)
            prefix = f"{prefix}?{kept}&" if kept else f"{prefix}?"
            fault = self.fault
            mode = fault if fault is not None else ("proxy" if self.upstream else "ok")
        else:
            prefix = f"{prefix}?"

        if mode == "observations-first" and (resource_type != "Observation" or is_read):
            hold = self.hold
            (hold or self._release).wait(self.slow_seconds)
        if mode in ("proxy", "observations-first"):
            self._proxy(handler, segments[0] if segments else "", parts.query)
        elif mode == "drip-headers":
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n")
            handler.wfile.write(b"X-Drip: ")
            handler.wfile.flush()
            until = time.monotonic() + self.hang_seconds
            while time.monotonic() < until and not self._release.wait(0.05):
                handler.wfile.write(b"z")
                handler.wfile.flush()
            handler.close_connection = True
        elif mode == "gzip-bomb":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/fhir+json")
            handler.send_header("Content-Encoding", "gzip")
            data = self._gzip_bomb()
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        elif mode == "hang":
            self._release.wait(self.hang_seconds)
            _send(handler, 200, _searchset(resource_type, [_resource(resource_type, "late")]))
        elif mode == "slow":
            self._release.wait(self.slow_seconds)
            _send(handler, 200, _ok(resource_type, is_read))
        elif mode == "ok":
            _send(handler, 200, _ok(resource_type, is_read))
        elif mode == "cookie":
            data = json.dumps(_ok(resource_type, is_read)).encode()
            _send_bytes(handler, 200, data, {"Set-Cookie": "pinned=backend-2; Path=/"})
        elif mode == "stray-entries":
            _send(handler, 200, _ok("Patient", is_read))
        elif mode == "other-patient":
            other = {**_resource(resource_type, "theirs"), "subject": {"reference": "Patient/zz"}}
            _send(handler, 200, other if is_read else _searchset(resource_type, [other]))
        elif mode == "trickle":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/fhir+json")
            handler.send_header("Content-Length", "100000")
            handler.end_headers()
            while not self._release.wait(0.05):
                handler.wfile.write(b" ")
                handler.wfile.flush()
        elif mode == "reset":
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.connection.close()
            handler.close_connection = True
        elif mode in {"500", "401", "403", "404"}:
            _send(handler, int(mode), _outcome("processing", f"synthetic {mode}"))
        elif mode == "strict":
            lenient = handler.headers.get("Prefer", "").replace(" ", "") == "handling=lenient"
            if lenient or not re.search(r"[?&](_sort|_count)=", handler.path):
                _send(handler, 200, _ok(resource_type, is_read))
            else:
                _send(handler, 400, _outcome("not-supported", f"not supported: {handler.path}"))
        elif mode == "refuse-sort":
            _send(handler, 400, _outcome("not-supported", f"_sort not supported: {handler.path}"))
        elif mode == "refuse-large":
            _send(handler, 400, _outcome("not-supported", "x" * 5000))
        elif mode == "expired" or (mode == "expire-on-page-2" and page > 1):
            data = json.dumps(_outcome("login", "token expired")).encode()
            _send_bytes(handler, 401, data, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        elif mode == "expire-on-page-2":
            bundle = _searchset(resource_type, [_resource(resource_type, "x1")])
            bundle["link"] = [{"relation": "next", "url": f"{prefix}page=2"}]
            _send(handler, 200, bundle)
        elif mode == "broken-json":
            _send_bytes(handler, 200, b'{"resourceType": "Bundle", "type": "searchset", "entry": [')
        elif mode == "not-a-resource":
            _send_bytes(handler, 200, b"[1, 2, 3]")
        elif mode == "wrong-bundle":
            bundle = _searchset(resource_type, [_resource(resource_type, "h1")])
            bundle["type"] = "history"
            _send(handler, 200, bundle)
        elif mode == "wrong-resource":
            _send(handler, 200, _resource("Patient", "p1"))
        elif mode == "outcome":
            _send(handler, 200, _outcome("too-costly", "synthetic outcome"))
        elif mode == "search-outcome":
            bundle = _searchset(resource_type, [_resource(resource_type, "s1")])
            bundle["entry"].append(
                {"resource": _outcome("too-costly", "too many"), "search": {"mode": "outcome"}}
            )
            _send(handler, 200, bundle)
        elif mode == "search-failed":
            bundle = _searchset(resource_type, [])
            failed = _outcome("required", "A required parameter is missing: category")
            failed["issue"][0]["severity"] = "fatal"
            bundle["entry"] = [{"resource": failed, "search": {"mode": "outcome"}}]
            _send(handler, 200, bundle)
        elif mode == "endless":
            bundle = _searchset(resource_type, [_resource(resource_type, f"e{page}")])
            bundle["link"] = [
                {"relation": "self", "url": f"{prefix}page={page}"},
                {"relation": "next", "url": f"{prefix}page={page + 1}"},
            ]
            _send(handler, 200, bundle)
        elif mode == "heavy":
            size = int(params.get("size", [str(self.heavy_bytes)])[0])
            bundle = _searchset(resource_type, [_resource(resource_type, f"h{page}")])
            kept = urlencode(params, doseq=True)
            bundle["link"] = [{"relation": "next", "url": f"{prefix}{kept}&page={page + 1}"}]
            if params.get("dense"):  # padded with empty objects: cheap bytes, costly parsed
                bundle["padding"] = [{}] * max(0, (size - 200) // 4)
            data = json.dumps(bundle).encode()
            data += b" " * max(0, size - len(data))
            if params.get("unsized"):
                handler.send_response(200)
                handler.send_header("Content-Type", "application/fhir+json")
                handler.send_header("Connection", "close")
                handler.end_headers()
                handler.wfile.write(data)
                handler.close_connection = True
            else:
                _send_bytes(handler, 200, data)
        elif mode == "loop":
            bundle = _searchset(resource_type, [_resource(resource_type, f"l{page}")])
            bundle["link"] = [{"relation": "next", "url": f"{prefix}page={2 if page == 1 else 1}"}]
            _send(handler, 200, bundle)
        elif mode == "redirect":
            handler.send_response(302)
            handler.send_header("Location", "http://elsewhere.invalid/fhir/Observation")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif mode == "foreign-next":
            bundle = _searchset(resource_type, [_resource(resource_type, "f1")])
            bundle["link"] = [
                {"relation": "next", "url": f"http://elsewhere.invalid/fhir/{resource_type}?page=2"}
            ]
            _send(handler, 200, bundle)
        else:
            _send(handler, 404, _outcome("not-found", "unknown mode"))

    def _gzip_bomb(self) -> bytes:
        with self._lock:
            if self._bomb is None:
                packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
                parts = [packer.compress(b'{"resourceType":"Bundle","type":"searchset"')]
                spaces = b" " * (1024 * 1024)
                parts.extend(packer.compress(spaces) for _ in range(self.bomb_bytes // len(spaces)))
                parts += [packer.compress(b"}"), packer.flush()]
                self._bomb = b"".join(parts)
            return self._bomb

    def _proxy(self, handler: BaseHTTPRequestHandler, mode: str, query: str) -> None:
        """Relay to the upstream server; its base URL in the answer becomes ours."""
        if self.upstream is None:
            _send(handler, 502, _outcome("exception", "no upstream configured"))
            return
        path = handler.path.split("?", 1)[0]
        rest = path[len(mode) + 1 :] if path.startswith(f"/{mode}") else path
        target = self.upstream + rest + (f"?{query}" if query else "")
        headers = {"Accept": handler.headers.get("Accept", "application/fhir+json")}
        authorization = handler.headers.get("Authorization")
        if authorization:
            headers["Authorization"] = authorization
        try:
            answer = self._upstream_pool.request(
                "GET", target, headers=headers, timeout=10.0, redirect=False
            )
        except urllib3.exceptions.HTTPError:
            _send(handler, 502, _outcome("exception", "upstream failed"))
            return
        body = answer.data.replace(self.upstream.encode(), f"{self.base_url}/{mode}".encode())
        _send_bytes(handler, answer.status, body)


def _resource(resource_type: str, resource_id: str) -> dict[str, Any]:
    return {"resourceType": resource_type, "id": resource_id}


def _searchset(resource_type: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def _ok(resource_type: str, is_read: bool) -> dict[str, Any]:
    if is_read:
        return _resource(resource_type, "read1")
    return _searchset(resource_type, [_resource(resource_type, f"ok-{time.monotonic_ns()}")])


def _send(handler: BaseHTTPRequestHandler, status: int, body: object) -> None:
    _send_bytes(handler, status, json.dumps(body).encode())


def _send_bytes(
    handler: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", "application/fhir+json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
