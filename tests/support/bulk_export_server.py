"""A Bulk Data ``$export`` server for the tests: stdlib HTTP on 127.0.0.1, threaded.

The project's FHIR test server has no ``$export``, and no real server fails, throttles or
cuts a file short on demand; this one follows the Bulk Data Access IG's kick-off, status
and download protocol and misbehaves as a test asks, through its attributes (set them
before the export starts):

- ``files``: resource type -> list of NDJSON files, each a list of resources
- ``error_files``: OperationOutcome resources listed under the manifest's ``error``
- ``token``: when set, kick-off and status need ``Authorization: Bearer <token>``, and so
  do the files when ``requires_access_token``
- ``polls_before_done`` 202 answers before the manifest, with ``retry_after`` (one value
  per poll, the last repeated; None: no header) and ``progress`` (``X-Progress``)
- ``kick_off_status``: answer the kick-off with this status and an OperationOutcome
  instead; ``busy_kick_offs``: answer that many kick-offs 429 with ``Retry-After: 0``
- ``fail_with``: after the polls, answer the status 500 with an OperationOutcome whose
  diagnostics is this text; ``transient_polls``: answer that many polls 503 with a
  ``transient`` OperationOutcome first
- ``never_done``: answer every poll 202 (an export that does not finish)
- ``cut_short``: the name of a file (``Observation.1``) sent with a Content-Length larger
  than its body, the connection then closed; ``cut_mid_line``: one sent without a
  Content-Length and closed in the middle of its last line
- ``hang_file``: a file whose headers are sent, then nothing for ``hang_seconds``
- ``wrong_count``: the manifest's ``count`` is one more than the truth
- ``file_origin``: another BulkExportServer whose ``/files/`` the manifest's URLs name
  (another origin: the token must not be sent there); ``redirect_files_to``: file URLs on
  this server answer 302 to that server's
- ``status_origin``: another server whose URL ``Content-Location`` names for polling
- ``output_url``: every manifest item's ``url`` is this text instead
- ``slow_file``: a file sent one line every 50 ms
- ``gzip_files``: files sent with ``Content-Encoding: gzip``

Every request is recorded with its method, path and Authorization header.
"""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.background_http import BackgroundServer

TRANSACTION_TIME = "2026-01-15T09:30:00.000Z"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str | None
    headers: dict[str, str] = field(default_factory=dict)


def outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


class BulkExportServer(BackgroundServer):
    """Use as a context manager; ``stop`` releases a hung download and closes the socket."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.files: dict[str, list[list[dict[str, Any]]]] = {}
        self.error_files: list[list[dict[str, Any]]] = []
        self.requires_access_token = token is not None
        self.polls_before_done = 1
        self.retry_after: list[str | None] = ["0"]
        self.progress: str | None = None
        self.kick_off_status: int | None = None
        self.busy_kick_offs = 0
        self.fail_with: str | None = None
        self.transient_polls = 0
        self.never_done = False
        self.cut_short: str | None = None
        self.cut_mid_line: str | None = None
        self.hang_file: str | None = None
        self.hang_seconds = 10.0
        self.wrong_count = False
        self.file_origin: BulkExportServer | None = None
        self.redirect_files_to: BulkExportServer | None = None
        self.status_origin: BulkExportServer | None = None
        self.output_url: str | None = None
        self.slow_file: str | None = None
        self.gzip_files = False
        self.kick_off_params: dict[str, list[str]] = {}
        self._bytes: dict[str, bytes] = {}
        self._polls = 0
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner._handle(self, "GET")

            def do_DELETE(self) -> None:
                owner._handle(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._serve(Handler)
        self.origin = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.origin}/fhir"

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def ndjson(self, name: str) -> bytes:
        """The exact bytes of file ``name`` (``Observation.1``) as the server sends them
        (made once: a test that measures the client's memory starts after)."""
        if name in self._bytes:
            return self._bytes[name]
        rtype, number = name.rsplit(".", 1)
        if rtype == "errors":
            resources = self.error_files[int(number) - 1]
        else:
            resources = self.files[rtype][int(number) - 1]
        data = self._bytes[name] = b"".join(json.dumps(r).encode() + b"\n" for r in resources)
        return data

    # --- protocol ------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        auth = handler.headers.get("Authorization")
        with self._lock:
            self._seen.append(Seen(method, handler.path, auth, dict(handler.headers.items())))
        parts = urlsplit(handler.path)
        path = parts.path
        try:
            if method == "DELETE" and path.startswith("/status/"):
                _send(handler, 202, None)
            elif path.endswith("/$export") and path.startswith("/fhir"):
                self._kick_off(handler, parse_qs(parts.query), auth)
            elif path.startswith("/status/"):
                self._status(handler, auth)
            elif path.startswith("/files/"):
                self._file(handler, path.removeprefix("/files/"), auth)
            else:
                _send(handler, 404, outcome("not-found", "no such route"))
        except OSError:
            handler.close_connection = True  # the client went away

    def _authorized(self, auth: str | None) -> bool:
        return self.token is None or auth == f"Bearer {self.token}"

    def _kick_off(
        self, handler: BaseHTTPRequestHandler, params: dict[str, list[str]], auth: str | None
    ) -> None:
        self.kick_off_params = params
        if not self._authorized(auth):
            _send(handler, 401, outcome("login", "a valid bearer token is needed"))
        elif self.kick_off_status is not None:
            _send(handler, self.kick_off_status, outcome("exception", "kick-off refused here"))
        elif self.busy_kick_offs > 0:
            self.busy_kick_offs -= 1
            _send(handler, 429, outcome("throttled", "busy"), {"Retry-After": "0"})
        elif handler.headers.get("Prefer") != "respond-async":
            _send(handler, 400, outcome("invalid", "Prefer: respond-async is required"))
        else:
            status_server = self.status_origin or self
            _send(handler, 202, None, {"Content-Location": f"{status_server.origin}/status/job1"})

    def _status(self, handler: BaseHTTPRequestHandler, auth: str | None) -> None:
        if not self._authorized(auth):
            _send(handler, 401, outcome("login", "a valid bearer token is needed"))
            return
        with self._lock:
            self._polls += 1
            poll = self._polls
        if self.transient_polls >= poll:
            _send(handler, 503, outcome("transient", "try again"), {"Retry-After": "0"})
            return
        poll -= self.transient_polls
        if self.never_done or poll <= self.polls_before_done:
            headers = {}
            wanted = self.retry_after[min(poll - 1, len(self.retry_after) - 1)]
            if wanted is not None:
                headers["Retry-After"] = wanted
            if self.progress is not None:
                headers["X-Progress"] = self.progress
            _send(handler, 202, None, headers)
        elif self.fail_with is not None:
            _send(handler, 500, outcome("exception", self.fail_with))
        else:
            _send(handler, 200, self._manifest())

    def _manifest(self) -> dict[str, Any]:
        where = self.file_origin or self

        def item(rtype: str, name: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
            count = len(resources) + (1 if self.wrong_count else 0)
            url = self.output_url or f"{where.origin}/files/{name}"
            return {"type": rtype, "url": url, "count": count}

        return {
            "transactionTime": TRANSACTION_TIME,
            "request": f"{self.base_url}/$export",
            "requiresAccessToken": self.requires_access_token,
            "output": [
                item(rtype, f"{rtype}.{i + 1}", resources)
                for rtype, files in self.files.items()
                for i, resources in enumerate(files)
            ],
            "error": [
                item("OperationOutcome", f"errors.{i + 1}", resources)
                for i, resources in enumerate(self.error_files)
            ],
        }

    def _file(self, handler: BaseHTTPRequestHandler, name: str, auth: str | None) -> None:
        if self.redirect_files_to is not None:
            _send(handler, 302, None, {"Location": f"{self.redirect_files_to.origin}/files/{name}"})
            return
        if self.requires_access_token and not self._authorized(auth):
            _send(handler, 401, outcome("login", "a valid bearer token is needed"))
            return
        try:
            data = self.ndjson(name)
        except (KeyError, IndexError, ValueError):
            _send(handler, 404, outcome("not-found", "no such file"))
            return
        if name == self.hang_file:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/fhir+ndjson")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.flush()
            self._release.wait(self.hang_seconds)
            handler.close_connection = True
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/fhir+ndjson")
        if name == self.slow_file:
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            for line in data.splitlines(keepends=True):
                handler.wfile.write(line)
                handler.wfile.flush()
                if self._release.wait(0.05):
                    break
            handler.close_connection = True
            return
        if name == self.cut_mid_line:
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(data[: len(data) - 10])  # the last line loses its end
            handler.close_connection = True
            return
        if name == self.cut_short:
            handler.send_header("Content-Length", str(len(data) + 1000))
            handler.end_headers()
            handler.wfile.write(data)
            handler.close_connection = True
            return
        if self.gzip_files:
            data = gzip.compress(data)
            handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> None:
    data = json.dumps(body).encode() if body is not None else b""
    handler.send_response(status)
    if body is not None:
        handler.send_header("Content-Type", "application/fhir+json")
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
