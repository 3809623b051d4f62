"""One hook call computes at a time in a worker; a call waiting on FHIR gives its turn
away (cds_service/turns.py). Through gunicorn: tests/integration/test_warm_start.py (a
call waiting on a hung FHIR server does not hold up one that needs none)."""

from __future__ import annotations

import threading
import time

from cds_service.turns import Turns
from tests.support.turns import another_call_computing


def test_a_second_call_waits_for_the_turn() -> None:
    turns = Turns()
    order: list[str] = []
    first_has_it = threading.Event()

    def first() -> None:
        with turns.turn():
            first_has_it.set()
            time.sleep(0.2)
            order.append("first done")

    def second() -> None:
        first_has_it.wait()
        with turns.turn():
            order.append("second ran")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert order == ["first done", "second ran"]


def test_a_call_waiting_on_io_lets_another_run_and_takes_its_turn_back() -> None:
    turns = Turns()
    order: list[str] = []
    waiting = threading.Event()

    def slow() -> None:
        with turns.turn():
            with turns.waiting():
                waiting.set()
                time.sleep(0.3)  # the FHIR server answers late
            order.append("slow decided")

    def quick() -> None:
        waiting.wait()
        with turns.turn():
            order.append("quick answered")

    threads = [threading.Thread(target=slow), threading.Thread(target=quick)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert order == ["quick answered", "slow decided"]


def test_the_turn_is_reentrant_and_waiting_without_it_is_harmless() -> None:
    turns = Turns()
    with turns.waiting():  # a tool or test calling the FHIR client outside a hook call
        pass
    with turns.turn(), turns.turn(), turns.waiting():
        pass
    with turns.turn():  # and it was released
        pass


def test_the_turn_goes_to_the_call_that_has_waited_longest() -> None:
    turns = Turns()
    order: list[int] = []
    queued = threading.Semaphore(0)

    def call(n: int) -> None:
        queued.release()
        with turns.turn():
            order.append(n)

    threads = []
    with turns.turn():  # a call computing; the others arrive one after the other
        for n in range(5):
            thread = threading.Thread(target=call, args=(n,))
            thread.start()
            queued.acquire()
            deadline = time.monotonic() + 5
            while len(turns._waiting) < n + 1 and time.monotonic() < deadline:
                time.sleep(0.001)  # until it waits for the turn
            threads.append(thread)
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 2, 3, 4]


def test_each_wait_is_told_on_the_waiting_calls_thread() -> None:
    """The gunicorn worker's thread gives up its place when its call starts waiting
    (cds_service/worker.py): ``on_wait`` is called on that thread, once per wait, and
    not for a wait outside a turn (nothing was given away)."""
    turns = Turns()
    told: list[int] = []
    turns.on_wait = lambda: told.append(threading.get_ident())
    inside = threading.Barrier(3)
    leave = threading.Event()
    idents: list[int] = []

    def call() -> None:
        idents.append(threading.get_ident())
        with turns.turn(), turns.waiting():
            inside.wait(timeout=5)
            leave.wait(timeout=5)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait(timeout=5)  # both wait at once: each gave the turn away
    assert sorted(told) == sorted(idents)
    leave.set()
    for thread in threads:
        thread.join(timeout=5)
    with turns.waiting():  # without the turn: no wait to tell
        pass
    assert len(told) == 2


def test_spare_takes_the_turn_only_when_nobody_holds_it() -> None:
    turns = Turns()
    with turns.spare() as free:
        assert free
        # held: a call arriving now waits until the spare work is done
        other_ran = threading.Event()

        def call() -> None:
            with turns.turn():
                other_ran.set()

        thread = threading.Thread(target=call)
        thread.start()
        assert not other_ran.wait(0.2)
    thread.join(timeout=5)
    assert other_ran.is_set()

    with another_call_computing(turns):
        started = time.monotonic()
        with turns.spare() as free:
            assert not free  # a call computes: spare work is skipped, not queued
        assert time.monotonic() - started < 1.0  # not held up for the other's 30 s
    with turns.spare() as free:
        assert free  # and the turn was not left taken by the skipped attempt


def test_a_turn_taken_inside_spare_work_is_the_same_turn() -> None:
    turns = Turns()
    finished = threading.Event()

    def spare_work() -> None:
        with turns.spare() as free:
            assert free
            with turns.turn():  # e.g. a reader that calls code that takes the turn
                finished.set()

    thread = threading.Thread(target=spare_work)
    thread.start()
    thread.join(timeout=5)
    assert finished.is_set(), "the thread queued behind its own turn"
    with turns.spare() as free:
        assert free  # released once, at the end


def test_an_idle_wait_without_the_turn_is_told_and_one_with_it_gives_the_turn_away() -> None:
    """Feedback holds no turn but may wait for another worker's audit writer: the worker
    is told (its place goes to the next call); with the turn held it is a usual wait."""
    turns = Turns()
    told: list[str] = []
    turns.on_wait = lambda: told.append("told")
    with turns.idle():
        assert told == ["told"]
    with turns.turn(), turns.idle(), another_call_computing(turns):
        pass  # the other call got the turn while this one waited
    assert told == ["told", "told"]
