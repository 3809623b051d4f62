"""The threaded worker (cds_service/worker.py): its places, and its clients' time limit.

That a worker keeps taking calls while others wait on a FHIR server is held through
gunicorn by tests/integration/test_warm_start.py (three calls on a hung server, then a
prefetched call answered before them, on one worker).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from cds_service.worker import AHEAD, CLIENT_TIMEOUT_SECONDS, HEAD_TIMEOUT_SECONDS, Places
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request


def _one_worker(tmp_path: Path) -> ServiceProcess:
    return ServiceProcess(env={"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}, workers=1)


def test_a_thread_holds_one_place_until_it_gives_it_back() -> None:
    assert AHEAD == 1  # the worker's: one call read, computed or answered at a time
    places = Places(2)
    assert places.take(0.01)
    assert places.take(0.01)  # this thread's place, not a second one
    taken: list[bool] = []

    def other(timeout: float) -> None:
        taken.append(places.take(timeout))
        places.give_back()

    second = threading.Thread(target=other, args=(0.01,))
    second.start()
    second.join()
    third = threading.Thread(target=other, args=(0.01,))
    # two places: with this thread's and one held elsewhere, the next must wait
    places_held_elsewhere = threading.Event()
    release = threading.Event()

    def hold() -> None:
        places.take(1.0)
        places_held_elsewhere.set()
        release.wait(5)
        places.give_back()

    holder = threading.Thread(target=hold)
    holder.start()
    places_held_elsewhere.wait(5)
    third.start()
    third.join()
    release.set()
    holder.join()
    assert taken == [True, False]
    places.give_back()
    places.give_back()  # a second time: nothing more is given back
    fourth = threading.Thread(target=other, args=(0.01,))
    fourth.start()
    fourth.join()
    assert taken == [True, False, True]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_call_being_read_holds_the_worker_and_the_next_waits_its_turn(
    tmp_path: Path,
) -> None:
    """A client that has begun its request and sends the rest slowly holds the worker's
    place; a call behind it waits in the listen queue (as with sync workers: nginx in
    front buffers slow clients, docs/deployment.md) and is answered as soon as it ends.

    A connection the worker accepts a moment before its first bytes arrive is read
    without the place, as silent ones are (``worker.py``: so that slow-header clients
    hold threads, not the worker; tests/integration/test_slow_clients.py), and then the
    call behind it is answered at once. The client writes right after connecting, so
    that race is rare; an attempt that meets it is tried again, up to three times."""
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    with _one_worker(tmp_path) as service:
        url = f"{service.url}/cds-services/{SELECT_ID}"
        held = False
        for _ in range(3):
            slow = socket.create_connection(("127.0.0.1", service.port), timeout=10)
            slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # not finished
            time.sleep(0.3)  # taken by the worker, on a thread, reading
            try:
                requests.post(url, json=body, timeout=(2, 1.0))
            except requests.ReadTimeout:
                held = True
            slow.sendall(b"\r\n")  # the slow request ends
            assert slow.recv(64).startswith(b"HTTP/1.1 200")
            slow.close()  # as a client does after a "Connection: close" answer
            if held:
                break
        assert held, "a call being read never held the worker in three tries"
        started = time.monotonic()
        answered = requests.post(url, json=body, timeout=10)
        assert answered.status_code == 200
        assert time.monotonic() - started < 2.0


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_connections_that_send_nothing_hold_no_place_and_are_closed(tmp_path: Path) -> None:
    """Clients that connect and say nothing do not hold the worker: a call behind them is
    answered at once, and they are closed after the client time limit."""
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    with _one_worker(tmp_path) as service:
        url = f"{service.url}/cds-services/{SELECT_ID}"
        silent = [
            socket.create_connection(("127.0.0.1", service.port), timeout=30) for _ in range(2)
        ]
        time.sleep(0.3)
        opened = time.monotonic()
        answered = requests.post(url, json=body, timeout=30)
        assert answered.status_code == 200
        assert time.monotonic() - opened < 2.0
        for sock in silent:
            assert sock.recv(64) == b""  # closed by the service, nothing sent
            sock.close()
        closed_after = time.monotonic() - opened + 0.3
        assert CLIENT_TIMEOUT_SECONDS - 1 < closed_after < CLIENT_TIMEOUT_SECONDS + 5


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_hook_body_that_stops_arriving_is_answered_408(tmp_path: Path) -> None:
    with _one_worker(tmp_path) as service:
        sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
        sock.sendall(
            f"POST /cds-services/{SELECT_ID} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            '{"hook": "order-select", '.encode()
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert b'"error": "request_timeout"' in answer or b'"error":"request_timeout"' in answer
        # and the worker goes on answering
        assert requests.get(f"{service.url}/health", timeout=10).status_code == 200


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_hook_body_shorter_than_its_length_is_refused_not_read_as_complete(
    tmp_path: Path,
) -> None:
    with _one_worker(tmp_path) as service:
        sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
        sock.sendall(
            f"POST /cds-services/{SELECT_ID} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}".encode()
        )
        sock.shutdown(socket.SHUT_WR)  # the client has sent all it will
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        sock.close()
        assert answer.startswith(b"HTTP/1.1 400")
        assert b"ended after 2 of the 100 bytes its Content-Length header announced" in answer


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_a_request_head_that_trickles_is_answered_408_at_the_head_deadline(
    tmp_path: Path,
) -> None:
    """A header line a second never meets the per-read limit, and held the worker for as
    long as it went on (an attack suite held every thread of an instance so, straight at
    gunicorn). The head must be in within ``HEAD_TIMEOUT_SECONDS`` of connecting: then
    the client is answered 408 and closed, and the call that waited behind it is
    answered."""
    assert CLIENT_TIMEOUT_SECONDS < HEAD_TIMEOUT_SECONDS <= 10
    with _one_worker(tmp_path) as service:
        sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
        opened = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # not finished
        waited: list[tuple[int, float]] = []

        def behind() -> None:
            answer = requests.get(f"{service.url}/health", timeout=30)
            waited.append((answer.status_code, time.monotonic() - opened))

        time.sleep(0.3)  # the worker reads the slow head, holding its place
        waiting = threading.Thread(target=behind)
        waiting.start()
        answer = b""
        line = 0
        while time.monotonic() - opened < HEAD_TIMEOUT_SECONDS + 8:
            if select.select([sock], [], [], 1.0)[0]:
                while chunk := sock.recv(4096):
                    answer += chunk
                break
            line += 1
            try:
                sock.sendall(b"X-Slow-%d: x\r\n" % line)
            except OSError:
                break
        closed_after = time.monotonic() - opened
        sock.close()
        waiting.join(30)
    assert answer.startswith(b"HTTP/1.1 408"), (answer[:200], closed_after)
    assert b'"error":"request_timeout"' in answer.replace(b" ", b"")
    assert HEAD_TIMEOUT_SECONDS - 0.5 < closed_after < HEAD_TIMEOUT_SECONDS + 3
    assert waited and waited[0][0] == 200
    assert waited[0][1] < HEAD_TIMEOUT_SECONDS + 3
