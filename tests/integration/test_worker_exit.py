"""A worker that exits (SIGTERM to one worker, as on a graceful stop or a restart) must
not take the shared metrics directory with it: the workers still serving write there.

Before the fix the exiting worker ran the serve command's clean-up too (it is forked
inside it), deleted the directory, and the other worker's next call with a new metric
label failed with a 500.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from spine_cds_dev.service_process import ServiceProcess

pytestmark = pytest.mark.integration


def workers(service: ServiceProcess) -> list[int]:
    assert service.process is not None
    pid = service.process.pid
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    with ServiceProcess(env=env, log_path=tmp_path / "service.log", workers=2) as running:
        yield running


def test_a_worker_leaving_keeps_the_metrics_of_the_others(service: ServiceProcess) -> None:
    # the service answers as soon as one worker is up; the second may still be forking
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(workers(service)) < 2:
        time.sleep(0.1)
    before = workers(service)
    assert len(before) == 2
    os.kill(before[0], signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and before[0] in workers(service):
        time.sleep(0.1)
    assert before[0] not in workers(service)
    # Every call is a new label combination for some metric (each path, status, method):
    # all must still be written, whichever worker answers.
    for n in range(12):
        path = ("/health", "/cds-services", "/no-such-path", "/livez")[n % 4]
        response = requests.get(service.url + path, timeout=10)
        assert response.status_code in (200, 404), (path, response.status_code, response.text)
    assert requests.get(service.url + "/metrics", timeout=10).status_code == 200
