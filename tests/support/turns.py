"""Another hook call computing in the same process, for tests of what waits for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cds_service.turns import Turns


@contextmanager
def another_call_computing(turns: Turns) -> Iterator[None]:
    """Hold the turn on another thread for the block, as a call computing would."""
    holding, release = threading.Event(), threading.Event()

    def computing() -> None:
        with turns.turn():
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=computing, name="another-call")
    thread.start()
    try:
        assert holding.wait(5), "the other call never got the turn"
        yield
    finally:
        release.set()
        thread.join(timeout=5)
