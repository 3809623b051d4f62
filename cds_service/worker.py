"""The gunicorn worker for threads: each thread accepts and answers a call as a sync
worker does, and a call waiting on a FHIR server lets another thread take the next.

Why not gunicorn's ``gthread``: it accepts in its main thread and hands every call to a
thread pool, then back to the main thread to close. Those hand-overs cost each call
about 0.4 ms at one connection and a tenth of (c)'s throughput against sync workers
(measured side by side, ``bench/README.md``, round five). Here there are none: a thread
waits for a connection, reads the call, answers it and closes, like a sync worker; the
worker's main thread only tells the arbiter it is alive and watches for signals.

How many calls a worker takes: one thread at a time holds the worker's *place*, and
only the thread with the place accepts. A call gives the place up when it starts
waiting on a FHIR server (``turns.py`` tells us, ``Turns.on_wait``), so another thread
takes the next connection while it waits; a worker answers at most ``threads`` calls at
once. So the calls that compute queue in the kernel's listen queue, shared by all
workers, and go to whichever worker is free first, exactly as with sync workers, while
a slow FHIR server holds threads and never the worker. One place, not two: with two,
the next call was read while the current one computed, and the two threads' turns at
Python's lock cost more than the overlap gave (side by side, 5 rounds each, twice: (a)
p99 27 against 33 ms and 427 against 394 calls/s, the same as sync workers; (c) p99 10
against 12 ms; ``bench/README.md``, round five).

A connection whose request has not begun to arrive when it is accepted waits for it
without the place, so clients that connect and say nothing hold threads, not the worker.
A client gets ``CLIENT_TIMEOUT_SECONDS`` for each read and write on its connection: one
that sends nothing, or stops sending, is closed then, instead of holding its thread for
good (sync workers rely on the arbiter killing the whole worker). A hook body that
stops arriving is answered 408 (``routes/entrance.py``). A client that has begun and
sends the rest slowly holds the place while it sends, as it holds a sync worker: the
shipped nginx passes on only whole requests (``docs/deployment.md``). Its request's
head (request line and headers) must be in within ``HEAD_TIMEOUT_SECONDS`` of the
connection being accepted, however it trickles, or it is answered 408 and closed: the
per-read limit alone let a client sending a header line every 4 s hold its thread and
the worker's place for as long as it kept sending (an attack suite held every thread of
an instance so, straight at gunicorn).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
import uuid
from http import HTTPStatus
from typing import Any

import orjson
from gunicorn import util
from gunicorn.workers import sync

from cds_service.app import REQUEST_ID_HEADER, SECURITY_HEADERS
from cds_service.http_refusals import INTERNAL, refusal
from cds_service.logs import request_id_var

# Calls a worker reads, computes or answers at once, besides those waiting on a FHIR server.
AHEAD = 1
CLIENT_TIMEOUT_SECONDS = 5.0
# From accept to the end of the request's headers, as nginx's client_header_timeout in
# the shipped config (10 s). A client's HTTP stack sends the head at once; this bounds
# how long one that trickles it can hold a worker reached without the proxy.
HEAD_TIMEOUT_SECONDS = 10.0
_HEAD_WORDS = (
    "request_timeout",
    f"the request's headers did not arrive within {HEAD_TIMEOUT_SECONDS:g} s of connecting",
)
# How often an idle thread looks again whether the worker is stopping.
_IDLE_SECONDS = 1.0


class Places:
    """The places of one worker's threads (``AHEAD``); thread-safe. A thread holds at
    most one."""

    def __init__(self, count: int) -> None:
        self._free = threading.Semaphore(count)
        self._local = threading.local()

    def take(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a place for this thread."""
        if self.held():
            return True
        if not self._free.acquire(timeout=timeout):
            return False
        self._local.held = True
        return True

    def held(self) -> bool:
        return bool(getattr(self._local, "held", False))

    def give_back(self) -> None:
        """Give this thread's place up, if it holds one (safe to call twice)."""
        if self.held():
            self._local.held = False
            self._free.release()


class HeadTimeout(Exception):
    """The request's head was not in within ``HEAD_TIMEOUT_SECONDS`` (not an OSError:
    gunicorn answers those with nothing and logs a traceback)."""


class _Client(socket.socket):
    """An accepted connection whose reads end by its head's deadline until the head is
    in (``head_read``); then each read has ``CLIENT_TIMEOUT_SECONDS``, as before."""

    head_deadline: float | None = None

    @classmethod
    def accepted(cls, sock: socket.socket, deadline: float) -> _Client:
        client = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        client.settimeout(CLIENT_TIMEOUT_SECONDS)
        client.head_deadline = deadline
        return client

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        deadline = self.head_deadline
        if deadline is None:
            return super().recv(bufsize, flags)
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            self.settimeout(min(CLIENT_TIMEOUT_SECONDS, left))
            return super().recv(bufsize, flags)
        except TimeoutError:
            if time.monotonic() < deadline:
                raise  # the per-read limit, as before
            self.head_read()  # the 408 and the graceful close read as any other
            raise HeadTimeout from None

    def head_read(self) -> None:
        self.head_deadline = None
        self.settimeout(CLIENT_TIMEOUT_SECONDS)


def _readable(sock: socket.socket, timeout: float) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


class _Page:
    """Takes gunicorn's HTML error page in place of the client's socket (its
    ``util.write_error`` writes through ``write_nonblock``): its status is kept, the
    page is not sent."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data


def _status(page: bytes) -> tuple[int, str]:
    """The status gunicorn chose, from its page's first line (500 if there is none)."""
    parts = page.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    if len(parts) == 3 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return int(parts[1]), parts[2]
    return 500, "Internal Server Error"


class SyncWorker(sync.SyncWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's sync worker, whose refusals of requests it cannot read as HTTP are JSON
    like the app's (``http_refusals.py``) instead of an HTML page (``threads`` = 1). As
    every answer of the app, the refusal names a request id that starts its log line."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: Exception) -> None:
        request_id = str(uuid.uuid4())
        token = request_id_var.set(request_id)  # starts the log line
        try:
            if isinstance(exc, HeadTimeout):
                self.log.info("408: headers not in within %g s", HEAD_TIMEOUT_SECONDS)
                status, reason, words = 408, "Request Timeout", _HEAD_WORDS
            else:
                page = _Page()
                super().handle_error(req, page, addr, exc)  # gunicorn's status, log, access log
                status, reason = _status(page.data)
                if status == 501:  # gunicorn's page says "501 Bad Request"
                    reason = HTTPStatus.NOT_IMPLEMENTED.phrase
                # a 501 (a transfer coding it does not do) is a refusal, not the service failing
                words = refusal(exc) if status < 500 or status == 501 else INTERNAL
        finally:
            request_id_var.reset(token)
        self._refuse(client, status, reason, words, request_id)

    def _refuse(
        self,
        client: socket.socket,
        status: int,
        reason: str,
        words: tuple[str, str],
        request_id: str,
    ) -> None:
        error, message = words
        body = orjson.dumps({"error": error, "message": message})
        head = [
            f"HTTP/1.1 {status} {reason}",
            "Connection: close",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"{REQUEST_ID_HEADER}: {request_id}",
            *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items()),
        ]
        try:
            util.write_nonblock(client, ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        except Exception:
            self.log.debug("Failed to send error message.")


class TurnWorker(SyncWorker):
    """``threads`` threads, each answering calls as a sync worker (set as ``worker_class``)."""

    alive: bool  # gunicorn's: False once the worker is told to stop

    def run(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
        self.places = Places(AHEAD)
        runtime = getattr(self.wsgi, "extensions", {}).get("spine_cds")
        if runtime is not None:
            runtime.turns.on_wait = self.places.give_back  # called on the waiting call's thread
        threads = [
            threading.Thread(target=self._serve, name=f"calls-{n}", daemon=True)
            for n in range(self.cfg.threads)
        ]
        for thread in threads:
            thread.start()
        while self.alive:
            self.notify()
            if not self.is_parent_alive():
                self.alive = False
                break
            try:  # woken by signals (gunicorn writes them to this pipe) or each second
                if select.select([self.PIPE[0]], [], [], 1.0)[0]:
                    os.read(self.PIPE[0], 64)
            except OSError as exc:
                if exc.errno != errno.EINTR:
                    raise
        # Stopping: the threads finish the calls they hold and take no more.
        deadline = time.monotonic() + self.cfg.graceful_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _serve(self) -> None:
        while self.alive:
            if not self.places.take(_IDLE_SECONDS):
                continue
            try:
                accepted = self._accept()
                if accepted is not None:
                    self._answer(*accepted)
            except Exception:
                self.log.exception("Error serving a connection")
            finally:
                self.places.give_back()

    def _accept(self) -> tuple[Any, socket.socket, Any] | None:
        ready = select.select(self.sockets, [], [], _IDLE_SECONDS)[0]
        for listener in ready:
            try:
                client, address = listener.accept()
            except OSError as exc:  # another thread or worker took it first
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                    continue
                raise
            accepted = _Client.accepted(client, time.monotonic() + HEAD_TIMEOUT_SECONDS)
            util.close_on_exec(accepted)
            return listener, accepted, address
        return None

    def _answer(self, listener: Any, client: socket.socket, address: Any) -> None:
        if not _readable(client, 0):
            self.places.give_back()  # nothing sent yet: wait for it without the place
            if not _readable(client, CLIENT_TIMEOUT_SECONDS):
                self.log.debug("Closing a connection silent for %s s", CLIENT_TIMEOUT_SECONDS)
                client.close()
                return
        self.handle(listener, client, address)  # the sync worker's: reads, answers, closes

    def handle_request(self, listener: Any, req: Any, client: socket.socket, addr: Any) -> None:
        """gunicorn's, once the request's head is in (its body reads as before)."""
        if isinstance(client, _Client):
            client.head_read()
        super().handle_request(listener, req, client, addr)
