"""The socket-deadline machinery: a fetch abandoned at the deadline cannot hold its thread.

urllib3's read timeout bounds each wait for bytes, not the whole wait for an answer's
headers: a server that drips header bytes slower than the timeout would hold a fetch
thread (and so every later invocation of this worker) for as long as it likes. Each
connection made through the adapter here registers its socket while it waits for the
headers, so the client can shut it down when the fetch is abandoned.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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
