"""A real JWKS endpoint for tests: stdlib HTTP server on 127.0.0.1 in a thread.

It serves JSON documents by path, can be switched to answer with an error
status or to send a document a byte at a time, and counts the GET requests it
receives per path, so tests can check how often a client really fetched keys.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.background_http import BackgroundServer


class JwksServer(BackgroundServer):
    """Use as a context manager; the server is stopped and closed on exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._documents: dict[str, bytes] = {}
        self._status: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._trickle: dict[str, float] = {}  # path -> seconds between bytes
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server._counts[path] = server._counts.get(path, 0) + 1
                    body = server._documents.get(path)
                    status = server._status.get(path, 200 if body is not None else 404)
                    pause = server._trickle.get(path)
                payload = body if body is not None and status == 200 else b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if pause is None:
                    self.wfile.write(payload)
                    return
                for byte in payload:
                    if server._release.wait(pause):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output quiet

        self._serve(Handler)

    def url(self, path: str = "/jwks.json") -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def publish(self, jwks: dict[str, Any] | list[Any], path: str = "/jwks.json") -> None:
        """Serve ``jwks`` (or any JSON document, e.g. a published jku list) as JSON at
        ``path`` (replacing what was there)."""
        with self._lock:
            self._documents[path] = json.dumps(jwks).encode()
            self._status.pop(path, None)

    def fail(self, path: str, status: int = 500) -> None:
        """Answer ``path`` with an error status from now on."""
        with self._lock:
            self._status[path] = status

    def trickle(self, path: str, seconds_per_byte: float) -> None:
        """Send ``path``'s document one byte every ``seconds_per_byte`` from now on."""
        with self._lock:
            self._trickle[path] = seconds_per_byte

    def request_count(self, path: str = "/jwks.json") -> int:
        with self._lock:
            return self._counts.get(path, 0)
