"""Reading the audit of a running service: each call's record is stored by the worker's
audit writer just after the answer goes out (cds_service/stores/audit_queue.py), so a
test that reads the database right after an answer waits for it to arrive."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0) -> T:
    """``read()`` again until ``done`` holds of what it gives (or ``timeout`` seconds have
    passed: the last reading is returned, for the test's own assertion to explain)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def settled(read: Callable[[], T], quiet: float = 0.3, timeout: float = 10.0) -> T:
    """``read()`` once it gives the same value twice ``quiet`` seconds apart: the records
    of earlier calls have all arrived."""
    deadline = time.monotonic() + timeout
    value = read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = read()
        if again == value:
            return value
        value = again
    return value
