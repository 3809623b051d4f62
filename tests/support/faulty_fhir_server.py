"""A FHIR server that misbehaves on demand: stdlib HTTP server on 127.0.0.1, threaded.

The real test server (fhir_server.py) will not hang, reset connections or send broken
JSON, so this one does, chosen by the first path segment: a client pointed at
``server.url("hang")`` sees ``{base}/hang/Observation?...`` hang, and so on. Modes:

- ``ok``: a searchset with one resource of the searched type (or the resource, for a read)
- ``slow``: like ``ok`` after ``slow_seconds``
- ``hang``: sends nothing for ``hang_seconds`` (released at once by ``stop``)
- ``trickle``: sends headers, then one body byte every 50 ms, never finishing in time
- ``reset``: resets the TCP connection (RST) without answering
- ``500``, ``401``, ``403``, ``404``: that status with an OperationOutcome
- ``broken-json``: 200 with truncated JSON
- ``not-a-resource``: 200 with a JSON array
- ``wrong-bundle``: 200 with a Bundle of type ``history``
- ``wrong-resource``: 200 with a Patient where a search Bundle is expected
- ``outcome``: 200 with an OperationOutcome
- ``search-outcome``: a searchset with one resource and one ``search.mode = outcome`` entry
- ``endless``: every page has a ``next`` link to a new page
- ``loop``: page 1 links to page 2, which links back to page 1
- ``redirect``: 302 to another host
- ``foreign-next``: a page whose ``next`` link points at another host

Every request is recorded (path with query, Authorization header) for the tests to check.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class SeenRequest:
    path: str  # path and query, as sent
    authorization: str | None


def _outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


class FaultyFhirServer:
    """Use as a context manager; ``stop`` releases hung handlers and closes the socket."""

    def __init__(self, hang_seconds: float = 10.0, slow_seconds: float = 0.3) -> None:
        self.hang_seconds = hang_seconds
        self.slow_seconds = slow_seconds
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._seen: list[SeenRequest] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with owner._lock:
                    owner._seen.append(SeenRequest(self.path, self.headers.get("Authorization")))
                try:
                    owner._answer(self)
                except OSError:
                    self.close_connection = True  # the client went away (e.g. it gave up)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output quiet

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, mode: str) -> str:
        """The fhirServer base URL that makes this server behave as ``mode``."""
        return f"{self.base_url}/{mode}"

    @property
    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def start(self) -> FaultyFhirServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultyFhirServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- behaviour -------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        segments = [s for s in parts.path.split("/") if s]
        mode = segments[0] if segments else ""
        resource_type = segments[1] if len(segments) > 1 else "Observation"
        is_read = len(segments) > 2
        page = int(parse_qs(parts.query).get("page", ["1"])[0])
        prefix = f"{self.base_url}/{mode}/{resource_type}"

        if mode == "hang":
            self._release.wait(self.hang_seconds)
            _send(handler, 200, _searchset(resource_type, [_resource(resource_type, "late")]))
        elif mode == "slow":
            self._release.wait(self.slow_seconds)
            _send(handler, 200, _ok(resource_type, is_read))
        elif mode == "ok":
            _send(handler, 200, _ok(resource_type, is_read))
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
        elif mode == "endless":
            bundle = _searchset(resource_type, [_resource(resource_type, f"e{page}")])
            bundle["link"] = [
                {"relation": "self", "url": f"{prefix}?page={page}"},
                {"relation": "next", "url": f"{prefix}?page={page + 1}"},
            ]
            _send(handler, 200, bundle)
        elif mode == "loop":
            bundle = _searchset(resource_type, [_resource(resource_type, f"l{page}")])
            bundle["link"] = [{"relation": "next", "url": f"{prefix}?page={2 if page == 1 else 1}"}]
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


def _send_bytes(handler: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/fhir+json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
