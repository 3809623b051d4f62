"""The lifecycle shared by the tests' small stdlib HTTP servers (a JWKS endpoint, a
faulty FHIR server, a bulk-export server, a server of paging links): one threaded server
on 127.0.0.1 at a free port, served from a daemon thread, stopped and closed on exit so
that no test leaves a listener behind."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from cds_service.tools.closing import Closing


class QuietServer(ThreadingHTTPServer):
    """No traceback on stderr when a client resets a kept-alive connection (clients that
    give up at their deadline do, and that is what these tests provoke); and a listen
    backlog for bursts of new connections (the default 5 drops connects, which the client
    then reports as a connect timeout)."""

    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class BackgroundServer(Closing):
    """Use as a context manager (``Closing``: stopped on exit). A subclass builds its
    handler class and calls ``_serve(handler)`` in its ``__init__``; ``_release`` is set on
    stop, so that handlers held on purpose (a hang, a trickle) end at once."""

    _httpd: QuietServer
    _thread: threading.Thread

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._release = threading.Event()
        self._httpd = QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        port: int = self._httpd.server_address[1]
        return port

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        return self.start()
