"""The benchmark: the service under gunicorn against the floor, driven by wrk.

Starts the FHIR test server with the benchmark patient and background data, the service
(``spine-cds serve --dev``, gunicorn, sync workers) and the floor app (bench/floor_app.py,
same gunicorn settings), all on free 127.0.0.1 ports; runs wrk (another process) against
each scenario several times, interleaved, and reports the medians, the ratios and the
targets (PASS/FAIL), the first-call latency of fresh workers, and the workers' memory
after 100 calls and after many. Everything started is stopped at the end::

    .venv/bin/python -m bench.run [--runs 3] [--duration 10] [--out bench/results]
    .venv/bin/python -m bench.run --compare REV    # and the service at REV, side by side

With ``--compare`` the service at another git revision (checked out in a temporary
worktree, removed at the end) runs beside this checkout's, against the same FHIR server,
floor and bodies, its rows interleaved with this checkout's: before and after in one run.

Not a test: the figures depend on the machine. See bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import requests

from bench import first_call, scenario
from bench.profile_hook import top_entries
from cds_service.fhir.combine import combine
from cds_service.fhir.prefetch import render_queries
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess, free_port
from tests.support.faulty_fhir_server import FaultyFhirServer

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "wrk_post.lua"
WORKERS = 2
PROFILE_REQUESTS = 200  # in-process cProfile of (a) after the wrk runs
# Only scenario (b) fetches; under 8 connections its FHIR queries queue in the
# single-threaded test server for longer than the default 0.45 s budget, so the budget
# is raised for the whole run (it changes nothing for the scenarios that do not fetch).
FHIR_ENV = {
    "SPINE_CDS_FHIR_BUDGET_SECONDS": "5",
    "SPINE_CDS_FHIR_READ_TIMEOUT_SECONDS": "5",
    "SPINE_CDS_FHIR_CONNECT_TIMEOUT_SECONDS": "1",
}
FHIR_SAMPLES = 30
FIRST_CALL_LOAD_SECONDS = 50  # wrk on (a) while fresh services start and are called
# Issue 13's memory target: a worker's resident size after 10,000 calls of (a) within 10%
# of its size after 100.
MEMORY_CALLS = 10_000


@dataclass(frozen=True)
class Row:
    """One wrk target: a scenario at a number of connections."""

    key: str
    label: str
    target: str  # "service" | "floor"
    body: str  # "a" | "b" | "c" | "s"
    connections: int
    beside: str | None = None  # a body sent at 8 connections meanwhile (not measured here)


ROWS = (
    Row("d", "(d) floor: minimal Flask app, same body, static answer", "floor", "a", 8),
    Row("d1", "(d) floor at 1 connection", "floor", "a", 1),
    Row("a", "(a) order-select, full prefetch", "service", "a", 8),
    Row("a1", "(a) at 1 connection (nothing queues: a call's own time)", "service", "a", 1),
    Row("c", "(c) non-applicable order (brain MRI), full prefetch", "service", "c", 8),
    Row("b", "(b) order-select, no prefetch: fetched from fhirServer", "service", "b", 8),
    Row("b1", "(b) at 1 connection (latency against the FHIR server's own time)", "service",
        "b", 1),
    Row("s", "(s) order-select, no prefetch, from a FHIR server answering 300 ms late",
        "service", "s", 8),
    Row("cs", "(c) beside 8 connections of (s)", "service", "c", 8, beside="s"),
)  # fmt: skip
FLOOR_ROWS = tuple(row for row in ROWS if row.target == "floor")
SERVICE_ROWS = tuple(row for row in ROWS if row.target == "service")
# Today's concurrency model, in the same run: this checkout with one thread per worker
# (gunicorn sync workers), for the rows the issue 27 targets compare.
SYNC = "sync"
SYNC_KEYS = ("a", "c", "s", "cs")
SLOW_FHIR_SECONDS = 0.3
COMPARED = "compared"  # the target, and the key suffix ("a@compared"), of --compare's rows


def sync_rows() -> tuple[Row, ...]:
    """The rows of ``SYNC_KEYS`` again, for this checkout with sync workers."""
    return tuple(
        replace(row, key=f"{row.key}@{SYNC}", label=f"{row.label}, sync workers (threads=1)",
                target=SYNC)
        for row in SERVICE_ROWS if row.key in SYNC_KEYS
    )  # fmt: skip


def compared_rows(revision: str) -> tuple[Row, ...]:
    """The service's rows again, for the service at ``revision``."""
    return tuple(
        replace(row, key=f"{row.key}@{COMPARED}", label=f"{row.label}, at {revision}",
                target=COMPARED)
        for row in SERVICE_ROWS
    )  # fmt: skip


class Checkout:
    """A git revision in a temporary worktree, whose service runs beside this one's.

    The service is started with the worktree first on its import path (and the current
    directory left off it), so it runs the revision's code, hooks.json and value sets
    with this virtualenv's packages. The worktree is removed at the end."""

    def __init__(self, revision: str, parent: Path) -> None:
        self.revision = revision
        self.path = parent / "compared"
        self.commit = ""

    def __enter__(self) -> Checkout:
        self.commit = _git("rev-parse", "--verify", f"{self.revision}^{{commit}}")
        _git("worktree", "add", "--detach", str(self.path), self.commit)
        found = subprocess.run(
            [sys.executable, "-c", "import cds_service; print(cds_service.__file__)"],
            env=dict(os.environ, **self.env()), capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        if not Path(found).resolve().is_relative_to(self.path.resolve()):
            self.__exit__()
            raise RuntimeError(f"the service at {self.revision} would import {found}")
        return self

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.path), "PYTHONSAFEPATH": "1"}

    def own_queries(self, context: dict[str, str]) -> list[str]:
        """The queries the service at this revision sends for (b), from its hooks.json:
        its templates rendered, the Observation searches combined."""
        hooks = json.loads((self.path / "hooks.json").read_text(encoding="utf-8"))
        (service,) = (s for s in hooks["services"] if s["id"] == scenario.SERVICE_ID)
        queries, _ = render_queries(service["prefetch"], context)
        return list(combine(queries).queries.values())

    def __exit__(self, *exc: object) -> None:
        if self.path.exists():
            _git("worktree", "remove", "--force", str(self.path))


def _git(*args: str) -> str:
    command = ["git", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603
    return done.stdout.strip()


class FloorProcess:
    """bench/floor_app.py under gunicorn with the service's worker settings."""

    def __init__(self, response_file: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.response_file = response_file
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FloorProcess:
        env = dict(os.environ, BENCH_FLOOR_RESPONSE=str(self.response_file))
        command = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers),
            "--worker-class", "sync",
            "--keep-alive", "5",
            "--timeout", "30",
            "--log-level", "warning",
            "bench.floor_app:app",
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"floor app exited with {self.process.returncode}")
            try:
                requests.post(self.url + "/cds-services/x", json={}, timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("floor app did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def fhir_times(server: FhirTestServer, queries: dict[str, str]) -> dict[str, Any]:
    """The FHIR server's own time per template query (median of direct requests), for
    the four at once, and for the service's own queries at once (it combines the three
    Observation searches into one: cds_service/fhir/combine.py)."""
    headers = server.auth_headers
    per_query: dict[str, dict[str, float]] = {}
    with requests.Session() as session:
        for key, query in queries.items():
            url = f"{server.base_url}/{query}"
            for _ in range(3):
                session.get(url, headers=headers, timeout=10).raise_for_status()
            samples = []
            for _ in range(FHIR_SAMPLES):
                started = time.perf_counter()
                session.get(url, headers=headers, timeout=10).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
            per_query[key] = {"p50_ms": statistics.median(samples), "max_ms": max(samples)}
    together = _together(server, list(queries.values()))
    own = list(combine(queries).queries.values())
    own_together = _together(server, own)
    slowest = max(per_query, key=lambda k: per_query[k]["p50_ms"])
    return {
        "per_query": per_query,
        "slowest_key": slowest,
        "slowest_p50_ms": per_query[slowest]["p50_ms"],
        "sum_p50_ms": sum(q["p50_ms"] for q in per_query.values()),
        "concurrent_p50_ms": statistics.median(together),
        "service_queries": len(own),
        "service_concurrent_p50_ms": statistics.median(own_together),
    }


def _together(server: FhirTestServer, queries: list[str]) -> list[float]:
    """Milliseconds for ``queries`` sent at once, per sample."""
    headers = server.auth_headers
    sessions = [requests.Session() for _ in queries]
    urls = [f"{server.base_url}/{q}" for q in queries]

    def get(i: int) -> None:
        sessions[i].get(urls[i], headers=headers, timeout=10).raise_for_status()

    together = []
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        for n in range(FHIR_SAMPLES + 3):
            started = time.perf_counter()
            list(pool.map(get, range(len(urls))))
            if n >= 3:
                together.append((time.perf_counter() - started) * 1000)
    for session in sessions:
        session.close()
    return together


def first_calls(url: str, body: bytes, count: int) -> list[float]:
    """Milliseconds of the first calls to a fresh service, each on a new connection (so
    the workers share them): what the first patients of a restarted service wait."""
    out = []
    for _ in range(count):
        started = time.perf_counter()
        response = requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        out.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return out


def concurrent_calls(url: str, body: bytes, count: int, at_once: int) -> None:
    """``count`` calls, ``at_once`` at a time, each on a new connection."""
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        list(pool.map(lambda _: first_calls(url, body, 1), range(count)))


def single_calls(url: str, body: bytes, count: int) -> list[float]:
    """Milliseconds of ``count`` calls one after the other on one connection."""
    out = []
    with requests.Session() as session:
        for _ in range(count):
            started = time.perf_counter()
            session.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=30
            ).raise_for_status()
            out.append((time.perf_counter() - started) * 1000)
    return out


def worker_rss_kib(service: ServiceProcess) -> list[int]:
    """Resident memory (KiB) of each gunicorn worker of ``service``."""
    assert service.process is not None
    pid = service.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    sizes = []
    for child in children:
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]))
    return sorted(sizes)


def run_row(url: str, files: dict[str, Path], row: Row, seconds: int) -> dict[str, Any]:
    """wrk on ``row``; with ``row.beside``, while another wrk sends that body at 8
    connections to the same service, from before this one starts until after it ends.
    The figures are this row's (the other's are kept under "beside")."""
    if row.beside is None:
        return run_wrk(url, files[row.body], row.connections, seconds)
    with ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(run_wrk, url, files[row.beside], 8, seconds + 2)
        time.sleep(1.0)
        got = run_wrk(url, files[row.body], row.connections, seconds)
        return got | {"beside": other.result()}


def run_wrk(url: str, body_file: Path, connections: int, seconds: int) -> dict[str, Any]:
    command = [
        _wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
        "-s", str(LUA), url, "--", str(body_file),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 - our own command line
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            result: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            return result
    raise RuntimeError(f"no result line from wrk:\n{done.stdout}\n{done.stderr}")


def _check_answers(url: str, files: dict[str, Path]) -> dict[str, Any]:
    """One request per body before measuring: each must give the expected answer."""
    answers = {}
    for name, path in files.items():
        response = requests.post(
            url, data=path.read_bytes(), headers={"Content-Type": "application/json"}, timeout=30
        )
        if response.status_code != 200:
            raise RuntimeError(f"({name}) answered {response.status_code}: {response.text[:500]}")
        answers[name] = response.json()
    decision = _decision(answers["a"])
    if decision != "advise-against" or _decision(answers["b"]) != decision:
        raise RuntimeError(f"(a)/(b) gave {decision!r}/{_decision(answers['b'])!r}")
    if answers["c"] != {"cards": []}:
        raise RuntimeError("(c) gave a card for a brain MRI")
    return answers


def _decision(response: dict[str, Any]) -> str | None:
    cards = response.get("cards") or [{}]
    result = cards[0].get("extension", {}).get("spine-cds-assessment", {})
    value = result.get("recommendation")
    return value if isinstance(value, str) else None


def _median(runs: list[dict[str, Any]], field: str) -> float:
    return float(statistics.median(r[field] for r in runs))


def summarise(
    results: dict[str, list[dict[str, Any]]], fhir: dict[str, Any], suffix: str = ""
) -> dict[str, Any]:
    """Medians, ratios and targets of the service's rows whose keys end in ``suffix``
    ("" for this checkout, "@compared" for --compare's), against the one floor."""
    med = {
        key: {f: _median(runs, f) for f in ("rps", "p50_ms", "p95_ms", "p99_ms")}
        | {
            "non2xx": sum(r["non2xx"] for r in runs),
            "errors": sum(r["socket_errors"] for r in runs),
        }
        for key, runs in results.items()
    }
    d, a, c, b1 = med["d"], med["a" + suffix], med["c" + suffix], med["b1" + suffix]
    b_limit = fhir["service_concurrent_p50_ms"] + 3
    checks = [
        ("(a) p50 <= 1.5x floor", a["p50_ms"] / d["p50_ms"], 1.5, "<="),
        ("(a) p99 <= 1.5x floor", a["p99_ms"] / d["p99_ms"], 1.5, "<="),
        ("(a) throughput >= 0.65x floor", a["rps"] / d["rps"], 0.65, ">="),
        ("(a) stretch: p50 <= 1.2x floor", a["p50_ms"] / d["p50_ms"], 1.2, "<="),
        ("(a) stretch: throughput >= 0.9x floor", a["rps"] / d["rps"], 0.9, ">="),
        ("(c) p50 <= 1.1x floor", c["p50_ms"] / d["p50_ms"], 1.1, "<="),
    ]
    targets = [
        {
            "target": name,
            "value": f"{ratio:.2f}x",
            "limit": f"{limit}x",
            "pass": ratio <= limit if op == "<=" else ratio >= limit,
        }
        for name, ratio, limit, op in checks
    ]
    targets.append(
        {
            "target": "(b) p50 at 1 connection <= the service's own queries sent at once + 3 ms",
            "value": f"{b1['p50_ms']:.1f} ms",
            "limit": f"{b_limit:.1f} ms",
            "pass": b1["p50_ms"] <= b_limit,
        }
    )
    if not suffix and f"s@{SYNC}" in med:
        targets += concurrency_targets(med)
    ratios = {
        "a_vs_floor": {f: a[f] / d[f] for f in ("p50_ms", "p95_ms", "p99_ms")}
        | {"rps": a["rps"] / d["rps"]},
        "c_vs_floor": {f: c[f] / d[f] for f in ("p50_ms", "p95_ms", "p99_ms")}
        | {"rps": c["rps"] / d["rps"]},
        # At one connection nothing queues: what an (a) call costs beyond the floor's.
        "a1_p50_minus_floor_ms": med["a1" + suffix]["p50_ms"] - med["d1"]["p50_ms"],
        "b1_p50_vs_slowest_query": b1["p50_ms"] / fhir["slowest_p50_ms"],
        "b1_p50_minus_slowest_query_ms": b1["p50_ms"] - fhir["slowest_p50_ms"],
        "b1_p50_minus_all_queries_concurrently_ms": b1["p50_ms"] - fhir["concurrent_p50_ms"],
        "b1_p50_minus_own_queries_concurrently_ms": b1["p50_ms"]
        - fhir["service_concurrent_p50_ms"],
    }
    return {"medians": med, "ratios": ratios, "targets": targets}


# "Not slower than today" within the run-to-run noise of one run on a shared machine.
SAME_SPEED_TOLERANCE = 1.1


def concurrency_targets(med: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Issue 27's targets for the concurrency model, each against a row of the same run:
    (c) beside slow calls against (c) alone; the slow calls' throughput against 4 x the
    5 calls/s of sync workers (and against sync workers' own in this run); (a) and (c)
    alone against sync workers (threads=1)."""
    sync = f"@{SYNC}"
    slow_floor = 4 * 5.0
    checks: list[tuple[str, float, float, str, str]] = [
        ("(c) p99 beside slow (s) calls <= 1.5x (c) p99 alone",
         med["cs"]["p99_ms"] / med["c"]["p99_ms"], 1.5, "<=", "x"),
        ("(s) no-prefetch calls, FHIR 300 ms late: throughput >= 4 x 5 calls/s",
         med["s"]["rps"], slow_floor, ">=", " calls/s"),
        ("(a) p50 not slower than sync workers (same run; 10% noise allowed)",
         med["a"]["p50_ms"] / med["a" + sync]["p50_ms"], SAME_SPEED_TOLERANCE, "<=", "x"),
        ("(a) req/s not lower than sync workers (same run; 10% noise allowed)",
         med["a"]["rps"] / med["a" + sync]["rps"], 1 / SAME_SPEED_TOLERANCE, ">=", "x"),
        ("(c) p50 not slower than sync workers (same run; 10% noise allowed)",
         med["c"]["p50_ms"] / med["c" + sync]["p50_ms"], SAME_SPEED_TOLERANCE, "<=", "x"),
        ("(c) req/s not lower than sync workers (same run; 10% noise allowed)",
         med["c"]["rps"] / med["c" + sync]["rps"], 1 / SAME_SPEED_TOLERANCE, ">=", "x"),
        ("(a) p99 not slower than sync workers (same run; 10% noise allowed)",
         med["a"]["p99_ms"] / med["a" + sync]["p99_ms"], SAME_SPEED_TOLERANCE, "<=", "x"),
        ("(c) p99 not slower than sync workers (same run; 10% noise allowed)",
         med["c"]["p99_ms"] / med["c" + sync]["p99_ms"], SAME_SPEED_TOLERANCE, "<=", "x"),
    ]  # fmt: skip
    return [
        {
            "target": name,
            "value": f"{value:.2f}{unit}",
            "limit": f"{limit:.2f}{unit}",
            "pass": value <= limit if op == "<=" else value >= limit,
        }
        for name, value, limit, op, unit in checks
    ]


def all_rows(compared: str | None, run: int = 0) -> tuple[Row, ...]:
    """The rows in the order they run: with --compare, each service row of this checkout
    beside the same row at the compared revision, the two taking turns to go first from
    run to run (whichever comes first after a row of another kind was measurably slower
    for (b), whatever the code)."""
    syncs = {row.key.partition("@")[0]: row for row in sync_rows()}
    others = dict(zip(SERVICE_ROWS, compared_rows(compared), strict=True)) if compared else {}
    groups = [
        (row, *([syncs[row.key]] if row.key in syncs else []), *([others[row]] if compared else []))
        for row in SERVICE_ROWS
    ]
    return (*FLOOR_ROWS, *(row for group in groups for row in group[:: 1 - 2 * (run % 2)]))


def render_markdown(report: dict[str, Any]) -> str:
    env, data, fhir, summary = report["env"], report["data"], report["fhir"], report["summary"]
    compared = report.get("compared")
    rows = all_rows(compared["revision"] if compared else None)
    lines = [
        "# Benchmark results (bench/run.py)",
        "",
        f"Run {report['when']} on {env['cpus']} CPUs, Python {env['python']}, {env['wrk']}; "
        f"gunicorn {env['workers']} workers for the service (its default worker settings: "
        f"{report.get('threads', 1)} threads each) and {env['workers']} sync workers for the "
        'floor and the "sync workers" rows (today\'s model: the same code with threads=1); '
        "wrk -t1, "
        f"{env['runs']} runs x {env['duration_s']} s per row after a {env['warmup_s']} s "
        "warm-up, rows interleaved; each figure is the median of the runs. The service runs "
        "in development mode (no client JWT: wrk cannot mint a fresh token per request), "
        "audit on (SQLite), metrics on, log level info. FHIR settings for the run: "
        + ", ".join(f"{k}={v}" for k, v in FHIR_ENV.items())
        + " (only (b) fetches).",
        "",
        f"Data: {data['fhir_resources']} resources in the FHIR test server; (a) body "
        f"{data['body_a_bytes']:,} bytes with prefetch {data['prefetch_counts']}; (a) answer "
        f"{data['response_a_bytes']:,} bytes (the floor returns a static body of that size).",
        "",
        "| row | connections | req/s | p50 ms | p95 ms | p99 ms | non-2xx | socket errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = summary["medians"][row.key]
        lines.append(
            f"| {row.label} | {row.connections} | {m['rps']:.0f} | {m['p50_ms']:.1f} | "
            f"{m['p95_ms']:.1f} | {m['p99_ms']:.1f} | {m['non2xx']} | {m['errors']} |"
        )
    r = summary["ratios"]
    lines += [
        "",
        "Ratios to the floor (d):",
        "",
        "| | req/s | p50 | p95 | p99 |",
        "|---|---|---|---|---|",
    ]
    for key, name in (("a_vs_floor", "(a) / (d)"), ("c_vs_floor", "(c) / (d)")):
        x = r[key]
        lines.append(
            f"| {name} | {x['rps']:.2f} | {x['p50_ms']:.2f} | {x['p95_ms']:.2f} | "
            f"{x['p99_ms']:.2f} |"
        )
    lines += [
        "",
        f"At one connection, where no call waits for another: (a) p50 "
        f"{summary['medians']['a1']['p50_ms']:.1f} ms against the floor's "
        f"{summary['medians']['d1']['p50_ms']:.1f} ms, so each (a) call spends "
        f"{r['a1_p50_minus_floor_ms']:.1f} ms beyond what the floor does with the same body "
        "(reading, checking, mapping and deciding on its Observations, the cards, the audit "
        "record): at 8 connections on 2 CPUs that work, not waiting, sets (a)'s ratios.",
    ]
    lines += [
        "",
        f"The FHIR server's own time ({FHIR_SAMPLES} direct requests per template query, "
        "requests.Session, one at a time):",
        "",
        "| key | p50 ms | max ms |",
        "|---|---|---|",
    ]
    for key, q in fhir["per_query"].items():
        lines.append(f"| {key} | {q['p50_ms']:.1f} | {q['max_ms']:.1f} |")
    lines += [
        "",
        f"Slowest query: {fhir['slowest_key']} at {fhir['slowest_p50_ms']:.1f} ms; the four "
        f"one after the other {fhir['sum_p50_ms']:.1f} ms; the four sent at once (as the "
        f"service sends them) {fhir['concurrent_p50_ms']:.1f} ms. (b) at 1 connection: p50 "
        f"{summary['medians']['b1']['p50_ms']:.1f} ms = {r['b1_p50_vs_slowest_query']:.2f}x "
        f"the slowest query, {r['b1_p50_minus_all_queries_concurrently_ms']:+.1f} ms over the "
        "four sent at once.",
        f"The service sends {fhir['service_queries']} queries (the three Observation searches "
        f"combined into one): sent at once they take {fhir['service_concurrent_p50_ms']:.1f} "
        f"ms (median of {FHIR_SAMPLES} samples after each (b) row at 1 connection, so in the "
        f"same minutes; {fhir['service_concurrent_at_start_p50_ms']:.1f} ms before the runs), "
        f"and (b) at 1 connection is {r['b1_p50_minus_own_queries_concurrently_ms']:+.1f} ms "
        "over that.",
        "",
        *concurrency_lines(report),
        "First calls of a fresh service (each on a new connection, in ms): "
        + ", ".join(f"{x:.1f}" for x in report["first_calls_ms"])
        + f"; later, one at a time: p50 {report['single_p50_ms']:.1f} ms "
        f"(first call {report['first_calls_ms'][0] / report['single_p50_ms']:.1f}x).",
        "",
        f"Worker memory (RSS, KiB): after 100 calls of (a) {report['rss_after_100']}, after "
        f"{report['calls_a']:,} calls of (a) {report['rss_after_a']} "
        f"(growth {report['rss_growth_a_pct']:+.1f}%; target within 10%: "
        f"{'PASS' if abs(report['rss_growth_a_pct']) <= 10 else 'FAIL'}), after all "
        f"{report['calls_total']:,} calls of every row, fetched and slow ones too "
        f"{report['rss_after_all']} ({report['rss_growth_pct']:+.1f}%: the fetch threads and "
        "their connections, one per query of each call waiting at once, are a high-water "
        "mark the (a) calls never reach). The first 100 calls "
        "run 8 at a time, so every thread has served before the baseline. Sync workers "
        f"(threads=1) beside it: {report.get('rss_sync_after_100')} after 100 calls, "
        f"{report.get('rss_sync_after_all')} after the run. From the end of the first of the "
        f"runs ({report['calls_first_run']:,} calls, {report['rss_after_first_run']}) to the "
        f"end: {report['rss_growth_after_first_run_pct']:+.1f}% (a leak keeps growing there; "
        "a high-water mark does not).",
        "",
        "Targets:",
        "",
        "| target | measured | limit | result |",
        "|---|---|---|---|",
    ]
    for t in summary["targets"]:
        lines.append(
            f"| {t['target']} | {t['value']} | {t['limit']} | {'PASS' if t['pass'] else 'FAIL'} |"
        )
    if compared:
        lines += side_by_side(report)
    lines += ["", "Every run (req/s, p50, p99):", ""]
    for row in rows:
        runs = report["runs"][row.key]
        shown = "; ".join(f"{x['rps']:.0f}, {x['p50_ms']:.1f}, {x['p99_ms']:.1f}" for x in runs)
        lines.append(f"- {row.key}: {shown}")
    if report.get("profile_error"):
        lines += ["", f"The in-process profile failed: {report['profile_error']}"]
    if not report.get("profile_top"):
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Where (a)'s time goes: the top functions by own time over {report['profile_requests']} "
        "requests through the Flask test client in this process (cProfile; its per-call cost "
        "overstates code that makes many small calls, so read the ranking):",
        "",
        "| function | calls per request | own ms per request | share |",
        "|---|---|---|---|",
    ]
    for entry in report["profile_top"]:
        lines.append(
            f"| `{entry['function']}` | {entry['calls_per_request']:.0f} | "
            f"{entry['own_ms_per_request']:.3f} | {entry['share_pct']:.1f}% |"
        )
    return "\n".join(lines) + "\n"


def concurrency_lines(report: dict[str, Any]) -> list[str]:
    """The slow calls beside (c), and the first calls of fresh services."""
    lines: list[str] = []
    runs = report["runs"]
    for key in ("cs", f"cs@{SYNC}"):
        beside = [r["beside"] for r in runs.get(key, []) if "beside" in r]
        if beside:
            lines.append(
                f"While {key} ran, its (s) calls (8 connections): "
                + "; ".join(
                    f"{b['rps']:.1f} req/s, p50 {b['p50_ms']:.0f} ms, non-2xx {b['non2xx']}"
                    for b in beside
                )
                + "."
            )
    if lines:
        lines.append("")
    for when, measured in (report.get("fresh_first_calls") or {}).items():
        lines += [*first_call.markdown(measured, when), ""]
    return lines


def side_by_side(report: dict[str, Any]) -> list[str]:
    """Before and after: the compared revision's figures beside this checkout's."""
    compared = report["compared"]
    before, after = compared["summary"], report["summary"]
    floor = after["medians"]["d"]

    def figures(summary: dict[str, Any], suffix: str) -> list[str]:
        m, r = summary["medians"], summary["ratios"]
        return [
            f"{m['a' + suffix]['p50_ms']:.1f}",
            f"{r['a_vs_floor']['p50_ms']:.2f}x",
            f"{r['a_vs_floor']['rps']:.2f}x",
            f"{r['c_vs_floor']['p50_ms']:.2f}x",
            f"{r['a1_p50_minus_floor_ms']:+.1f} ms",
            f"{m['b' + suffix]['p50_ms']:.1f}",
            f"{m['b1' + suffix]['p50_ms']:.1f}",
            f"{r['b1_p50_minus_own_queries_concurrently_ms']:+.1f} ms",
        ]

    names = [
        "(a) p50 ms",
        "(a) p50 / floor p50",
        "(a) req/s / floor req/s",
        "(c) p50 / floor p50",
        "(a) p50 over the floor's, both at 1 connection",
        "(b) p50 ms, 8 connections",
        "(b) p50 ms, 1 connection",
        "(b) at 1 connection over the service's own queries sent at once",
    ]
    lines = [
        "",
        f"Before and after in this run: the service at {compared['revision']} "
        f"({compared['commit'][:12]}) and this checkout, rows interleaved, against the same "
        f"floor (p50 {floor['p50_ms']:.1f} ms, {floor['rps']:.0f} req/s) and FHIR server "
        "(each service's own queries sent at once, measured beside its (b) rows: "
        f"{compared['service_queries']} in {compared['service_concurrent_p50_ms']:.1f} ms at "
        f"{compared['revision']}, {report['fhir']['service_queries']} in "
        f"{report['fhir']['service_concurrent_p50_ms']:.1f} ms here):",
        "",
        f"| | at {compared['revision']} | this checkout |",
        "|---|---|---|",
    ]
    pairs = zip(names, figures(before, f"@{COMPARED}"), figures(after, ""), strict=True)
    lines += [f"| {name} | {old} | {new} |" for name, old, new in pairs]
    if compared["hooks_differ"]:
        lines += [
            "",
            "hooks.json differs between the two: the bodies follow this checkout's, so the "
            "compared service may read them another way.",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per row")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument(
        "--compare",
        metavar="REV",
        help="also run the service at this git revision, side by side (before and after)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process profile")
    args = parser.parse_args()
    _wrk()
    rows = all_rows(args.compare)

    with tempfile.TemporaryDirectory(prefix="spine-cds-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with FhirTestServer(token=scenario.FHIR_TOKEN) as server:
            print("loading the FHIR test server ...", flush=True)
            count = scenario.load_data(server)
            bodies = scenario.build_bodies(server, count)
            files = {
                "a": tmp / "a.json",
                "b": tmp / "b.json",
                "c": tmp / "c.json",
            }
            files["a"].write_bytes(orjson.dumps(bodies.full_prefetch))
            files_a_bytes = files["a"].read_bytes()
            files["b"].write_bytes(orjson.dumps(bodies.no_prefetch))
            files["c"].write_bytes(orjson.dumps(bodies.not_applicable))
            slow_fhir = FaultyFhirServer(slow_seconds=SLOW_FHIR_SECONDS)
            slow_body = dict(bodies.no_prefetch, fhirServer=slow_fhir.url("slow"))
            files["s"] = tmp / "s.json"
            files["s"].write_bytes(orjson.dumps(slow_body))
            print("timing the FHIR server's own answers ...", flush=True)
            fhir = fhir_times(server, bodies.queries)

            env = {"SPINE_CDS_DATABASE_PATH": str(tmp / "bench.sqlite3"), **FHIR_ENV}
            service = ServiceProcess(env=env, workers=WORKERS, log_path=tmp / "service.log")
            with slow_fhir, service, contextlib.ExitStack() as stack:
                url = f"{service.url}/cds-services/{scenario.SERVICE_ID}"
                print("timing the first calls of the fresh service ...", flush=True)
                first = first_calls(url, files["a"].read_bytes(), WORKERS * 2)
                answers = _check_answers(url, files)
                urls = {"service": url}
                sync_service = stack.enter_context(
                    ServiceProcess(
                        env=env | {"SPINE_CDS_THREADS": "1",
                                   "SPINE_CDS_DATABASE_PATH": str(tmp / "sync.sqlite3")},
                        workers=WORKERS, log_path=tmp / "sync.log",
                    )
                )  # fmt: skip
                urls[SYNC] = f"{sync_service.url}/cds-services/{scenario.SERVICE_ID}"
                _check_answers(urls[SYNC], files)
                checkout: Checkout | None = None
                if args.compare:
                    checkout = stack.enter_context(Checkout(args.compare, tmp))
                    print(f"starting the service at {args.compare} ({checkout.commit}) ...")
                    compared_env = env | checkout.env()
                    compared_env["SPINE_CDS_DATABASE_PATH"] = str(tmp / "compared.sqlite3")
                    other = stack.enter_context(
                        ServiceProcess(
                            env=compared_env, workers=WORKERS, log_path=tmp / "compared.log"
                        )
                    )
                    urls[COMPARED] = f"{other.url}/cds-services/{scenario.SERVICE_ID}"
                    _check_answers(urls[COMPARED], files)
                    single_calls(urls[COMPARED], files["a"].read_bytes(), 100)
                # 8 at a time, so that every thread of every worker has served calls (each
                # holds its own SQLite connection) before the baseline is taken.
                concurrent_calls(url, files["a"].read_bytes(), 100 - WORKERS * 2 - 1, 8)
                concurrent_calls(urls[SYNC], files["a"].read_bytes(), 100, 8)
                rss_100 = worker_rss_kib(service)
                rss_sync_100 = worker_rss_kib(sync_service)
                print(f"memory: {MEMORY_CALLS:,} calls of (a) ...", flush=True)
                calls_a = 100
                while calls_a < MEMORY_CALLS:
                    calls_a += run_wrk(url, files["a"], 8, 5)["requests"]
                rss_a = worker_rss_kib(service)
                response_file = tmp / "response-a.json"
                response_file.write_bytes(orjson.dumps(answers["a"]))
                print("timing the first calls of fresh services, quiet then loaded ...")
                first_bodies = first_call.read_bodies(files, ("a", "b"))
                path = f"/cds-services/{scenario.SERVICE_ID}"

                def fresh() -> ServiceProcess:
                    fresh_env = env | {"SPINE_CDS_DATABASE_PATH": str(tmp / "fresh.sqlite3")}
                    log = tmp / "fresh.log"
                    return ServiceProcess(env=fresh_env, workers=WORKERS, log_path=log)

                fresh_first = {
                    "quiet": first_call.fresh_service_calls(fresh, WORKERS, path, first_bodies),
                    "loaded": first_call.under_load(
                        lambda seconds: run_wrk(url, files["a"], 8, seconds),
                        FIRST_CALL_LOAD_SECONDS,
                        lambda: first_call.fresh_service_calls(fresh, WORKERS, path, first_bodies),
                    ),
                }
                with FloorProcess(response_file, WORKERS) as floor:
                    urls["floor"] = f"{floor.url}/cds-services/x"
                    print("warming up ...", flush=True)
                    for row in rows:
                        run_wrk(urls[row.target], files[row.body], row.connections, args.warmup)
                    results: dict[str, list[dict[str, Any]]] = {row.key: [] for row in rows}
                    own = {"service": list(combine(bodies.queries).queries.values())}
                    if checkout is not None:
                        own[COMPARED] = checkout.own_queries({"patientId": scenario.PATIENT_ID})
                    beside_b1: dict[str, list[float]] = {target: [] for target in own}
                    for n in range(args.runs):
                        for row in all_rows(args.compare, n):
                            got = run_row(urls[row.target], files, row, args.duration)
                            results[row.key].append(got)
                            if row.body == "b" and row.connections == 1:
                                # the FHIR server's own time, in the same minutes
                                beside_b1[row.target] += _together(server, own[row.target])
                            print(
                                f"run {n + 1} {row.key:12s} {got['rps']:7.1f} req/s "
                                f"p50 {got['p50_ms']:7.1f} p99 {got['p99_ms']:7.1f} ms "
                                f"non-2xx {got['non2xx']}",
                                flush=True,
                            )
                        if n == 0:  # a leak keeps growing; a high-water mark stops here
                            rss_first_run = worker_rss_kib(service)
                            calls_first_run = _service_calls(results) + calls_a
                fhir["service_concurrent_at_start_p50_ms"] = fhir["service_concurrent_p50_ms"]
                fhir["service_concurrent_p50_ms"] = statistics.median(beside_b1["service"])
                single = single_calls(url, files["a"].read_bytes(), 30)
                rss_all = worker_rss_kib(service)
                rss_sync_all = worker_rss_kib(sync_service)
                calls = _service_calls(results) + calls_a
                compared = None
                if checkout is not None:
                    compared = {
                        "revision": checkout.revision,
                        "commit": checkout.commit,
                        "hooks_differ": (checkout.path / "hooks.json").read_bytes()
                        != (ROOT / "hooks.json").read_bytes(),
                        "service_queries": len(own[COMPARED]),
                        "service_concurrent_p50_ms": statistics.median(beside_b1[COMPARED]),
                        "summary": summarise(
                            results,
                            fhir
                            | {
                                "service_queries": len(own[COMPARED]),
                                "service_concurrent_p50_ms": statistics.median(beside_b1[COMPARED]),
                            },
                            f"@{COMPARED}",
                        ),
                    }

    report: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "env": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "wrk": _wrk_version(),
            "workers": WORKERS,
            "runs": args.runs,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
        },
        "data": {
            "fhir_resources": bodies.resource_count,
            "body_a_bytes": files_size(bodies.full_prefetch),
            "prefetch_counts": scenario.prefetch_counts(bodies.full_prefetch),
            "response_a_bytes": len(orjson.dumps(answers["a"])),
        },
        "fhir": fhir,
        "first_calls_ms": first,
        "fresh_first_calls": fresh_first,
        "single_p50_ms": statistics.median(single),
        "rss_after_100": rss_100,
        "rss_after_all": rss_all,
        "calls_a": calls_a,
        "rss_after_a": rss_a,
        "rss_growth_a_pct": (sum(rss_a) - sum(rss_100)) / sum(rss_100) * 100,
        "rss_sync_after_100": rss_sync_100,
        "rss_sync_after_all": rss_sync_all,
        "calls_total": calls,
        "rss_growth_pct": (sum(rss_all) - sum(rss_100)) / sum(rss_100) * 100,
        "rss_after_first_run": rss_first_run,
        "calls_first_run": calls_first_run,
        "rss_growth_after_first_run_pct": (sum(rss_all) - sum(rss_first_run))
        / sum(rss_first_run)
        * 100,
        "runs": results,
        "summary": summarise(results, fhir),
        "threads": _service_threads(),
        "compared": compared,
        "profile_requests": PROFILE_REQUESTS,
        "profile_top": [],
    }
    for when, measured in fresh_first.items():
        report["summary"]["targets"] += first_call.targets(measured, when)
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(args.out, report)  # the wrk figures are kept whatever the profile does
    if not args.no_profile:
        print("profiling (a) in process ...", flush=True)
        try:
            report["profile_top"] = top_entries(files_a_bytes, PROFILE_REQUESTS)
        except Exception:  # the measured figures above still stand
            report["profile_error"] = traceback.format_exc(limit=1).strip().splitlines()[-1]
        write_report(args.out, report)
    print()
    print(render_markdown(report))


def _service_calls(results: dict[str, list[dict[str, Any]]]) -> int:
    """Calls the service (this tree, default settings) has answered in the wrk rows."""
    return sum(x["requests"] for row in ROWS if row.target == "service" for x in results[row.key])


def _service_threads() -> int:
    """Threads per worker of the service measured (its default settings)."""
    from cds_service.settings import Settings

    return Settings().threads


def write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "latest.md").write_text(render_markdown(report), encoding="utf-8")
    (out / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    return path


def _wrk_version() -> str:
    done = subprocess.run(  # noqa: S603 - our own command line
        [_wrk(), "--version"], capture_output=True, text=True, check=False
    )
    words = (done.stdout + done.stderr).split()
    return " ".join(words[:2]) if words else "wrk"


def files_size(body: dict[str, Any]) -> int:
    return len(orjson.dumps(body))


if __name__ == "__main__":
    main()
