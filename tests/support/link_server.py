"""A FHIR server whose search Bundles carry whatever ``next`` link a test chooses.

For the paging attacks: the service is pointed at one of these (``fhirServer``) and the
``next`` link names another one through some URL trick; the second one records whether
the EHR's access token reached it. A stdlib HTTP server on 127.0.0.1, threaded. Every
request is recorded with its method, path and Authorization header. It answers CORS
preflights for any origin, as an attacker's server would, so that a browser app (the
trend app) would send it the token if it followed such a link.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.background_http import BackgroundServer


@dataclass(frozen=True)
class Seen:
    path: str
    authorization: str | None
    method: str = "GET"


class LinkServer(BackgroundServer):
    """``with LinkServer() as a: a.next_link = "http://..."``; ``a.seen`` lists requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self.next_link: str | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server._seen.append(Seen(self.path, self.headers.get("Authorization")))
                    link = server.next_link
                bundle: dict[str, Any] = {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [],
                }
                if link is not None and "page=2" not in self.path:
                    bundle["link"] = [{"relation": "next", "url": link}]
                payload = json.dumps(bundle).encode()
                self.send_response(200)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_OPTIONS(self) -> None:
                with server._lock:
                    server._seen.append(Seen(self.path, None, "OPTIONS"))
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Headers", "authorization, accept")
                self.send_header("Access-Control-Allow-Methods", "GET")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._serve(Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
