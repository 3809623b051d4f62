"""The first calls of a freshly started service against its later calls (issue 27).

A worker takes traffic only after its warm-up (cds_service/warmup.py), which runs a call
with prefetch and a fetching call through the one pipeline. This measures what the first
patients of a restarted service wait: a fresh service is started and, once each worker
has logged that it takes connections, its first call of (a) (full prefetch) and of (b)
(fetched from the FHIR server) is timed against the p50 of the calls that follow, each on
a new connection; three fresh starts, the median first call. (Before every worker is
ready, a call shares the CPU with the others' start-up, which is not a cold worker.)
``loaded`` does the same while wrk drives another service at 8 connections, so the machine
is busy as on a restart under traffic. Used by bench/run.py; not a test.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from cds_service.server import WORKER_READY
from spine_cds_dev.service_process import ServiceProcess

RESTARTS = 3  # fresh starts per condition: the first call is one sample per start
LATER = 10  # calls after the first, per body and start, each on a new connection
LIMIT = 2.0  # the target: the first call within 2x of later calls' p50
READY_TIMEOUT_S = 60.0


def timed_calls(url: str, body: bytes, count: int) -> list[tuple[int, float]]:
    """(status, ms) of ``count`` calls one after the other, each on a new connection."""
    out = []
    for _ in range(count):
        started = time.perf_counter()
        response = requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        out.append((response.status_code, (time.perf_counter() - started) * 1000))
    return out


def wait_for_workers(service: ServiceProcess, workers: int) -> None:
    """Until each worker has logged that it takes connections (after its warm-up)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while service.log_tail(1_000_000).count(WORKER_READY) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers were not ready in {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.02)


def fresh_service_calls(
    make_service: Callable[[], ServiceProcess],
    workers: int,
    path: str,
    bodies: dict[str, bytes],
) -> dict[str, Any]:
    """Start a fresh service ``RESTARTS`` times; each time, once every worker is ready,
    time the first call of each body and the calls after it."""
    firsts: dict[str, list[tuple[int, float]]] = {name: [] for name in bodies}
    laters: dict[str, list[float]] = {name: [] for name in bodies}
    ready_ms = []
    for _ in range(RESTARTS):
        started = time.perf_counter()
        with make_service() as service:
            wait_for_workers(service, workers)
            ready_ms.append((time.perf_counter() - started) * 1000)
            url = service.url + path
            for name, body in bodies.items():
                firsts[name] += timed_calls(url, body, 1)
            for name, body in bodies.items():
                laters[name] += [ms for _, ms in timed_calls(url, body, LATER)]
    out: dict[str, Any] = {"ready_ms": ready_ms, "bodies": {}}
    for name in bodies:
        first_ms = [ms for _, ms in firsts[name]]
        later_p50 = statistics.median(laters[name])
        out["bodies"][name] = {
            "first_ms": first_ms,
            "first_statuses": [status for status, _ in firsts[name]],
            "later_p50_ms": later_p50,
            "first_vs_later": statistics.median(first_ms) / later_p50,
            "worst_first_vs_later": max(first_ms) / later_p50,
        }
    return out


def under_load(
    load: Callable[[int], dict[str, Any]], seconds: int, measure: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """``measure()`` while ``load(seconds)`` runs in another thread (it must outlast the
    measurement; the result says whether it did)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        began = time.monotonic()
        running = pool.submit(load, seconds)
        time.sleep(1.0)  # let the load reach its pace
        result = measure()
        measured_until = time.monotonic() - began
        load_result = running.result()
    result["load"] = {
        "rps": load_result["rps"],
        "seconds": seconds,
        "outlasted_measurement": measured_until <= seconds,
    }
    return result


def targets(first: dict[str, Any], when: str) -> list[dict[str, Any]]:
    """The first-call targets, PASS/FAIL: the first call within 2x of later calls' p50,
    and no first call refused (a cold 412 was the issue)."""
    out = []
    for name, figures in first["bodies"].items():
        ratio = figures["first_vs_later"]
        out.append(
            {
                "target": f"first call of a fresh service, ({name}), {when}: median of "
                f"{RESTARTS} starts <= {LIMIT}x later calls' p50",
                "value": f"{ratio:.2f}x ({statistics.median(figures['first_ms']):.1f} / "
                f"{figures['later_p50_ms']:.1f} ms)",
                "limit": f"{LIMIT}x",
                "pass": ratio <= LIMIT,
            }
        )
        refused = [s for s in figures["first_statuses"] if s != 200]
        out.append(
            {
                "target": f"first calls of {RESTARTS} fresh starts, ({name}), {when}: all 200",
                "value": ", ".join(str(s) for s in figures["first_statuses"]),
                "limit": "200",
                "pass": not refused,
            }
        )
    return out


def markdown(first: dict[str, Any], when: str) -> list[str]:
    lines = [
        f"First calls of a fresh service, {when} ({RESTARTS} fresh starts, every worker ready "
        f"after {', '.join(f'{x:.0f}' for x in first['ready_ms'])} ms; each call on a new "
        "connection"
        + (
            f"; meanwhile wrk drove another service at {first['load']['rps']:.0f} req/s"
            + ("" if first["load"]["outlasted_measurement"] else ", ending before the calls did")
            if "load" in first
            else ""
        )
        + "):",
        "",
        "| body | first call of each start, ms | later calls p50 ms | median first / later "
        "| worst first / later |",
        "|---|---|---|---|---|",
    ]
    for name, f in first["bodies"].items():
        lines.append(
            f"| ({name}) | {', '.join(f'{x:.1f}' for x in f['first_ms'])} | "
            f"{f['later_p50_ms']:.1f} | {f['first_vs_later']:.2f}x | "
            f"{f['worst_first_vs_later']:.2f}x |"
        )
    return lines


def read_bodies(files: dict[str, Path], names: tuple[str, ...]) -> dict[str, bytes]:
    return {name: files[name].read_bytes() for name in names}
