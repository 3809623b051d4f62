"""A FHIR server whose every answer a test writes: for ``spine-cds observation-codes``'s
answers that the Node test server will not give on demand (an Epic-like refusal of a
search without a category, a 200 OperationOutcome, a redirect, a next link out of the
base, a display with terminal escapes). A stdlib HTTP server on 127.0.0.1, threaded;
every request is recorded with its path and Authorization header."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.background_http import BackgroundServer


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None  # JSON, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    path: str  # path and query, as sent
    authorization: str | None

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


def searchset(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if next_url is not None:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def observation(
    obs_id: str, system: str, code: str, display: str = "", category: str | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
        "subject": {"reference": "Patient/p1"},
    }
    if category is not None:
        resource["category"] = [{"coding": [{"code": category}]}]
    return resource


def outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


class ScriptedFhir(BackgroundServer):
    """``with ScriptedFhir(answer) as fhir``: ``answer(seen)`` gives each GET's answer."""

    def __init__(self, answer: Callable[[Seen], Answer]) -> None:
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                seen = Seen(self.path, self.headers.get("Authorization"))
                with server._lock:
                    server._seen.append(seen)
                reply = answer(seen)
                body = reply.body
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/fhir+json")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._serve(Handler)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/fhir"

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)
