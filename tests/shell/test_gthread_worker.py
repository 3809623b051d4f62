"""The threaded worker's connection limit (cds_service/gthread_worker.py).

That a worker keeps taking calls while others wait on a FHIR server is held through
gunicorn by tests/integration/test_warm_start.py (three calls on a hung server, then a
prefetched call answered before them, on one worker).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests

from cds_service.gthread_worker import AHEAD, connections_allowed
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request


def test_places_beyond_the_computing_calls_are_for_calls_waiting_on_fhir() -> None:
    assert AHEAD == 2
    assert connections_allowed(8, aside=0, waiting=0) == 2
    assert connections_allowed(8, aside=0, waiting=3) == 5
    assert connections_allowed(8, aside=1, waiting=3) == 6  # no bytes yet: no thread held
    assert connections_allowed(8, aside=0, waiting=8) == 8  # never more than its threads


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_worker_holds_two_calls_it_reads_or_computes_and_the_next_waits_its_turn(
    tmp_path: Path,
) -> None:
    """Two clients that send their request slowly hold one worker's two places; a call
    behind them waits in the listen queue (as with sync workers: nginx in front buffers
    slow clients, docs/deployment.md) and is answered as soon as one of them ends."""
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    with ServiceProcess(env=env, workers=1) as service:
        url = f"{service.url}/cds-services/{SELECT_ID}"
        slow = []
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # not finished
            slow.append(sock)
        time.sleep(0.3)  # both taken by the worker, each on a thread, reading
        with pytest.raises(requests.ReadTimeout):
            requests.post(url, json=body, timeout=(2, 1.0))
        slow[0].sendall(b"\r\n")  # the first slow request ends
        assert slow[0].recv(64).startswith(b"HTTP/1.1 200")
        slow[0].close()  # as a client does after a "Connection: close" answer
        started = time.monotonic()
        answered = requests.post(url, json=body, timeout=10)
        assert answered.status_code == 200
        assert time.monotonic() - started < 2.0
        slow[1].close()
