"""The audit written off the request path keeps its promise through gunicorn (issue 27).

The real thing: ``spine-cds serve`` (gunicorn, default worker settings) with its SQLite
audit. To catch the writers with records in hand, the test holds the database's write
lock while calls are answered (as a slow or busy database would): the answers go out,
the records wait in the workers' queues. Then:

- a stop the usual way (SIGTERM) stores every answered call's record;
- a worker killed outright (SIGKILL) loses the records it held, and every one of them is
  counted in ``spine_cds_audit_records_total`` (queued, never stored nor failed).
"""

from __future__ import annotations

import copy
import os
import re
import signal
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.ehr_calls import card_request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

BODY = card_request()
CALLS = 60


def answered_calls(url: str, count: int) -> tuple[set[str], int]:
    """``count`` calls, 8 at a time, each with its own hookInstance: the hookInstances
    answered 200 with a card, and how many calls got no answer at all."""
    answered: set[str] = set()
    lost_in_flight = 0
    lock = threading.Lock()

    def call(_: int) -> None:
        nonlocal lost_in_flight
        body: dict[str, Any] = copy.deepcopy(BODY)
        body["hookInstance"] = str(uuid.uuid4())
        try:
            response = requests.post(url, json=body, timeout=30)
        except requests.ConnectionError:
            with lock:
                lost_in_flight += 1
            return
        assert response.status_code == 200, response.text
        assert response.json()["cards"], "the example must give a card"
        with lock:
            answered.add(body["hookInstance"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(call, range(count)))
    return answered, lost_in_flight


def stored(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT hook_instance FROM audit_log")}


class WriteLock:
    """The database's write lock, held by this test (the writers wait behind it)."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)

    def __enter__(self) -> WriteLock:
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def release(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.conn.close()


def audit_counts(base_url: str) -> dict[str, float]:
    text = requests.get(base_url + "/metrics", timeout=10).text
    found = re.findall(r'^spine_cds_audit_records_total\{state="(\w+)"\} (\S+)$', text, re.M)
    return {state: float(value) for state, value in found}


def workers_of(service: ServiceProcess) -> list[int]:
    pid = service.pid
    assert pid is not None
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_usual_stop_stores_the_record_of_every_answered_call(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    service = ServiceProcess(
        env={"SPINE_CDS_DATABASE_PATH": str(db)}, workers=2, log_path=tmp_path / "s.log"
    )
    with service, WriteLock(db) as lock:
        answered, _ = answered_calls(f"{service.url}/cds-services/{SELECT_ID}", CALLS)
        assert len(answered) == CALLS  # answered while the audit could not be written
        assert stored(db) == set()
        threading.Timer(1.0, lock.release).start()  # the database comes back during the stop
        service.stop()  # SIGTERM: each worker stores what it holds before it exits
        assert service.process is not None and service.process.returncode == 0
    assert stored(db) == answered, service.log_tail()


def test_a_killed_worker_loses_only_records_it_counted(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite3"
    service = ServiceProcess(
        env={"SPINE_CDS_DATABASE_PATH": str(db)}, workers=2, log_path=tmp_path / "s.log"
    )
    with service:
        url = f"{service.url}/cds-services/{SELECT_ID}"
        with WriteLock(db):
            answered, _ = answered_calls(url, CALLS)
            victim = workers_of(service)[0]
            os.kill(victim, signal.SIGKILL)  # its records are still waiting for the lock
        # The other worker stores what it held; gunicorn starts a new one in the victim's place.
        after, unanswered = answered_calls(url, 20)
        answered |= after
        deadline = time.monotonic() + 20
        while True:
            counts = audit_counts(service.url)
            lost = counts["queued"] - counts["stored"] - counts.get("failed", 0)
            missing = answered - stored(db)
            if lost == len(missing) or time.monotonic() > deadline:
                break
            time.sleep(0.2)

    assert unanswered == 0
    assert stored(db) <= answered  # nothing stored that was not answered
    assert missing, "the kill came while the victim held records: some must be lost"
    assert counts.get("failed", 0) == 0
    # Every answered call is in the audit or counted as lost (the victim's queue).
    assert lost == len(missing), (counts, len(missing))
