"""Finding 7: slow clients must not starve the workers of the recommended deployment.

gunicorn's sync workers serve one connection each; clients that drip their headers
hold them. The recommended deployment (docs/deployment.md) puts the shipped nginx config
(deploy/nginx/spine-cds.conf) in front. Here 50 connections drip one header line a
second into that deployment while /health and a hook call are timed through it.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from pathlib import Path

import pytest
import requests

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request
from tests.support.nginx import NginxProxy

pytestmark = pytest.mark.integration
SLOW_CLIENTS = 50
DRIP_SECONDS = 8.0


class SlowHeaders:
    """``count`` sockets that send a request line, then one header line a second."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.open_at_end = 0

    def __enter__(self) -> SlowHeaders:
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.sockets.append(sock)
        self.thread.start()
        return self

    def _drip(self) -> None:
        n = 0
        while not self.stop.wait(1.0):
            n += 1
            for sock in self.sockets:
                try:
                    sock.sendall(b"X-Slow-%d: x\r\n" % n)
                except OSError:
                    pass

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def _timed(call: object) -> float:
    started = time.perf_counter()
    response = call()  # type: ignore[operator]
    assert response.status_code == 200
    return time.perf_counter() - started


def test_fifty_slow_header_clients_do_not_delay_health_or_a_hook_call(tmp_path: Path) -> None:
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    with ServiceProcess(env=env, workers=2, log_path=tmp_path / "service.log") as service:
        with NginxProxy(service.port) as proxy:
            session = requests.Session()

            def health() -> requests.Response:
                return session.get(proxy.url + "/health", timeout=5)

            def hook() -> requests.Response:
                url = f"{proxy.url}/cds-services/{SELECT_ID}"
                return session.post(url, json=body, timeout=5)

            usual_health = [_timed(health) for _ in range(10)]
            usual_hook = [_timed(hook) for _ in range(5)]
            with SlowHeaders(proxy.port, SLOW_CLIENTS):
                time.sleep(1.5)  # let them take hold
                under_health: list[float] = []
                under_hook: list[float] = []
                deadline = time.monotonic() + DRIP_SECONDS - 2
                while time.monotonic() < deadline:
                    under_health.append(_timed(health))
                    under_hook.append(_timed(hook))
                    time.sleep(0.2)
    # "Their usual time": the slowest answer under attack stays within the usual range
    # plus a margin for a loaded test machine, never the seconds a starved worker costs.
    assert max(under_health) < max(0.25, 5 * max(usual_health)), (usual_health, under_health)
    assert max(under_hook) < max(0.5, 5 * max(usual_hook)), (usual_hook, under_hook)
    assert statistics.median(under_hook) < max(0.1, 3 * statistics.median(usual_hook))
