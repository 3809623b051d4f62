"""Soak: the real gunicorn service under steady load while its FHIR server keeps failing.

Why: a unit test shows one call keeps its time budget; only a long run under load shows
that no fault leaves a worker (or its fetch threads) stuck, that nothing turns into a 5xx,
and that the service is back to normal as soon as the FHIR server is.

Setup: the project's Node FHIR test server with a few example patients loaded, and in
front of it tests/support/faulty_fhir_server.py as a proxy whose fault is switched on a
schedule: healthy and faulty phases alternate (hang, reset, 500, 401, broken JSON, endless
paging, a next-link loop, a trickling body, dripping headers). Client threads post
order-select calls with ``fhirServer`` pointing at the proxy (no prefetch, so every call
fetches) and a thread polls ``/health``. A call that takes longer than the budget plus a
generous slack counts as hung.

Run from the repository root::

    .venv/bin/python -m bench.soak --duration 60

It prints a summary and writes bench/results/soak.md; the exit status is 1 when a call
got a 5xx, hung, failed to connect, or got a wrong answer. ``run_soak`` is used by
tests/integration/test_resilience.py for a short version.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import requests

if not __package__:  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cds_service.examples import Example, load_example
from cds_service.settings import Settings
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess
from tests.support.ehr_calls import order_request
from tests.support.faulty_fhir_server import FaultyFhirServer

SELECT_ID = "spine-imaging-followup-select"
HEALTHY = "healthy"
DEFAULT_FAULTS = (
    "hang",
    "reset",
    "500",
    "401",
    "broken-json",
    "endless",
    "loop",
    "trickle",
    "drip-headers",
)
#: Example patients whose answer is a card (so a healthy call must show that card).
DEFAULT_EXAMPLES = ("e01-improving", "e02-cauda-equina", "e04-crp-rebound")
TOKEN = "soak-synthetic-token-5d1c"  # noqa: S105 (synthetic; the test server only compares it)
RESULTS = Path(__file__).resolve().parent / "results" / "soak.md"


@dataclass(frozen=True)
class Sample:
    """One hook call: when it started (s since the soak began), how it ended and how long."""

    phase: int
    kind: str  # HEALTHY or the fault
    started: float
    latency: float
    outcome: str  # the HTTP status, or "hung" (client timeout) or "error" (no answer)
    wrong: bool = False  # a 200 whose card is not the patient's expected one
    card: bool = False
    hook_instance: str = ""
    server_ms: float | None = None  # the service's own duration_ms for this call (its log)


@dataclass(frozen=True)
class Probe:
    """One GET /health."""

    kind: str
    latency: float
    outcome: str


@dataclass
class SoakReport:
    duration: float
    clients: int
    workers: int
    budget: float
    hang_after: float
    phase_seconds: float
    samples: list[Sample] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    recovery: list[float] = field(default_factory=list)  # per healthy phase after a fault

    @property
    def server_errors(self) -> int:
        return sum(1 for s in self.samples if s.outcome.isdigit() and int(s.outcome) >= 500)

    @property
    def hung(self) -> int:
        return sum(1 for s in self.samples if s.outcome == "hung") + sum(
            1 for p in self.probes if p.outcome == "hung"
        )

    @property
    def failed(self) -> int:
        return sum(1 for s in self.samples if s.outcome == "error")

    @property
    def wrong(self) -> int:
        return sum(1 for s in self.samples if s.wrong)

    @property
    def ok(self) -> bool:
        return self.server_errors == self.hung == self.failed == self.wrong == 0

    def markdown(self) -> str:
        lines = [
            "# Soak: faults injected part of the time",
            "",
            f"{self.duration:.0f} s, {self.clients} client threads (closed loop), "
            f"{self.workers} gunicorn sync workers, fhir_budget_seconds {self.budget}, "
            f"phases of {self.phase_seconds:g} s alternating healthy / fault. A call is hung "
            f"when it takes over {self.hang_after:g} s. Machine: {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}; everything runs on this one machine.",
            "",
            f"**Calls: {len(self.samples)}; 5xx: {self.server_errors}; hung: {self.hung}; "
            f"no answer: {self.failed}; wrong card: {self.wrong}.**",
            "",
            "Latency is what a client saw, queueing in gunicorn's backlog included; "
            "*server max* is the longest time the service itself logged for a call "
            "(from its request log, joined on hookInstance). Calls count in the phase they "
            "started in, so near a switch a few see the other state.",
            "",
            "| phase | calls | statuses | 200 with card | 5xx | hung | p50 ms | p95 ms "
            "| p99 ms | max ms | server max ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        kinds = [HEALTHY, *sorted({s.kind for s in self.samples} - {HEALTHY})]
        for kind in kinds:
            rows = [s for s in self.samples if s.kind == kind]
            if not rows:
                continue
            statuses = ", ".join(
                f"{k}: {v}" for k, v in sorted(Counter(s.outcome for s in rows).items())
            )
            fives = sum(1 for s in rows if s.outcome.isdigit() and int(s.outcome) >= 500)
            ms = sorted(s.latency * 1000 for s in rows)
            server = [s.server_ms for s in rows if s.server_ms is not None]
            server_max = f"{max(server):.0f}" if server else "-"
            lines.append(
                f"| {kind} | {len(rows)} | {statuses} | {sum(s.card for s in rows)} | {fives} "
                f"| {sum(s.outcome == 'hung' for s in rows)} | {_pct(ms, 50):.0f} "
                f"| {_pct(ms, 95):.0f} | {_pct(ms, 99):.0f} | {ms[-1]:.0f} | {server_max} |"
            )
        lines += ["", "GET /health while the load runs:", ""]
        lines += ["| phase | probes | statuses | p50 ms | max ms |", "|---|---|---|---|---|"]
        for label, pick in (("healthy", True), ("fault", False)):
            probes = [p for p in self.probes if (p.kind == HEALTHY) == pick]
            if probes:
                ms = sorted(p.latency * 1000 for p in probes)
                statuses = ", ".join(
                    f"{k}: {v}" for k, v in sorted(Counter(p.outcome for p in probes).items())
                )
                lines.append(
                    f"| {label} | {len(probes)} | {statuses} | {_pct(ms, 50):.0f} | {ms[-1]:.0f} |"
                )
        if self.recovery:
            lines += [
                "",
                "Recovery: from the end of a fault phase to the first call answered 200 with "
                f"its card: median {_pct(sorted(self.recovery), 50) * 1000:.0f} ms, "
                f"max {max(self.recovery) * 1000:.0f} ms over {len(self.recovery)} phases "
                "(calls already queued behind faulty ones finish first).",
            ]
        return "\n".join(lines) + "\n"


def _pct(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def recommendation(response: dict[str, Any]) -> str | None:
    cards = response.get("cards") or []
    if not cards:
        return None
    return str(cards[0].get("extension", {}).get("spine-cds-assessment", {}).get("recommendation"))


def run_soak(
    service_url: str,
    faulty: FaultyFhirServer,
    examples: Sequence[Example],
    *,
    token: str,
    duration: float,
    phase_seconds: float = 3.0,
    clients: int = 4,
    workers: int = 2,
    faults: Sequence[str] = DEFAULT_FAULTS,
    budget: float = 0.45,
    hang_slack: float = 2.0,
    health_interval: float = 0.25,
    service_log: Path | None = None,
) -> SoakReport:
    """Drive ``service_url`` for ``duration`` seconds while switching ``faulty.fault``.

    Phase ``i`` is healthy when ``i`` is even, else ``faults[(i // 2) % len(faults)]``.
    Each call is counted in the phase it started in. With ``service_log`` (the service's
    log file) each call also gets the duration the service itself logged.
    """
    report = SoakReport(duration, clients, workers, budget, budget + hang_slack, phase_seconds)
    hook_url = f"{service_url}/cds-services/{SELECT_ID}"
    fhir_url = faulty.url("switch")
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()

    def kind_of(phase: int) -> str:
        return HEALTHY if phase % 2 == 0 else faults[(phase // 2) % len(faults)]

    def client(index: int) -> None:
        session = requests.Session()
        n = index
        while not stop.is_set():
            example = examples[n % len(examples)]
            n += 1
            body = order_request(
                "order-select",
                example.patient_id,
                example.draft_order,
                fhir_server=fhir_url,
                access_token=token,
            )
            t0 = time.monotonic()
            phase = int((t0 - started) / phase_seconds)
            try:
                response = session.post(hook_url, json=body, timeout=(2.0, budget + hang_slack))
                outcome = str(response.status_code)
                answer = recommendation(response.json()) if response.status_code == 200 else None
            except requests.Timeout:
                outcome, answer = "hung", None
                session.close()
                session = requests.Session()
            except (requests.RequestException, ValueError):
                outcome, answer = "error", None
                session.close()
                session = requests.Session()
            latency = time.monotonic() - t0
            kind = kind_of(phase)
            # Only a call that started and ended inside a healthy phase must get the
            # patient's card: one that overlaps a switch may have read faulty data
            # (endless paging ends in a decision on whatever pages came back).
            whole_call_healthy = int((t0 + latency - started) / phase_seconds) == phase
            wrong = (
                kind == HEALTHY
                and whole_call_healthy
                and answer is not None
                and answer != example.expected
            )
            card = answer is not None
            instance = str(body["hookInstance"])
            sample = Sample(phase, kind, t0 - started, latency, outcome, wrong, card, instance)
            with lock:
                report.samples.append(sample)
        session.close()

    def prober() -> None:
        session = requests.Session()
        while not stop.wait(health_interval):
            kind = kind_of(int((time.monotonic() - started) / phase_seconds))
            t0 = time.monotonic()
            try:
                outcome = str(
                    session.get(f"{service_url}/health", timeout=budget + hang_slack).status_code
                )
            except requests.Timeout:
                outcome = "hung"
            except requests.RequestException:
                outcome = "error"
            with lock:
                report.probes.append(Probe(kind, time.monotonic() - t0, outcome))
        session.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    threads.append(threading.Thread(target=prober, daemon=True))
    faulty.fault = None
    for thread in threads:
        thread.start()
    phases = max(1, math.ceil(duration / phase_seconds))
    try:
        for phase in range(phases):
            kind = kind_of(phase)
            faulty.fault = None if kind == HEALTHY else kind
            _sleep_until(started + min(duration, (phase + 1) * phase_seconds))
    finally:
        faulty.fault = None
        stop.set()
        for thread in threads:
            thread.join(timeout=budget + hang_slack + 5)
    report.recovery = _recovery(report.samples, phase_seconds, started_phases=phases)
    if service_log is not None:
        report.samples = add_server_durations(report.samples, service_log)
    return report


_LOGGED = re.compile(r"duration_ms=([0-9.]+) .*hook_instance=([0-9a-f-]+)")


def server_durations(service_log: Path) -> dict[str, float]:
    """hookInstance -> duration_ms, from the service's request log lines."""
    out = {}
    for line in service_log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _LOGGED.search(line)
        if match:
            out[match.group(2)] = float(match.group(1))
    return out


def add_server_durations(samples: Sequence[Sample], service_log: Path) -> list[Sample]:
    logged = server_durations(service_log)
    return [replace(s, server_ms=logged.get(s.hook_instance)) for s in samples]


def _sleep_until(moment: float) -> None:
    while (left := moment - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


def _recovery(samples: Sequence[Sample], phase_seconds: float, started_phases: int) -> list[float]:
    """Per healthy phase that follows a fault: seconds until the first 200 with a card."""
    out = []
    for phase in range(2, started_phases, 2):
        begin = phase * phase_seconds
        ends = [
            s.started + s.latency - begin
            for s in samples
            if s.phase == phase and s.card and s.outcome == "200"
        ]
        if ends:
            out.append(max(0.0, min(ends)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--phase", type=float, default=3.0, help="seconds per phase (default 3)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--budget",
        type=float,
        default=Settings().fhir_budget_seconds,
        help="the service's fhir_budget_seconds (default: the setting's default)",
    )
    parser.add_argument(
        "--hang-slack", type=float, default=2.0, help="a call is hung after budget + this"
    )
    parser.add_argument(
        "--faults", default=",".join(DEFAULT_FAULTS), help="comma-separated fault modes"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args(argv)
    faults = tuple(f for f in args.faults.split(",") if f)
    examples = [load_example(key, date.today()) for key in DEFAULT_EXAMPLES]
    with tempfile.TemporaryDirectory(prefix="spine-soak-") as tmp:
        env = {
            "SPINE_CDS_DATABASE_PATH": str(Path(tmp) / "soak.sqlite3"),
            "SPINE_CDS_FHIR_BUDGET_SECONDS": str(args.budget),
        }
        log = Path(tmp) / "service.log"
        with (
            FhirTestServer(token=TOKEN) as fhir,
            FaultyFhirServer(hang_seconds=10.0, upstream=fhir.base_url) as faulty,
            ServiceProcess(env=env, workers=args.workers, log_path=log) as svc,
        ):
            for example in examples:
                fhir.load_bundle(example.bundle)
            report = run_soak(
                svc.url,
                faulty,
                examples,
                token=TOKEN,
                duration=args.duration,
                phase_seconds=args.phase,
                clients=args.clients,
                workers=args.workers,
                faults=faults,
                budget=args.budget,
                hang_slack=args.hang_slack,
                service_log=log,
            )
    text = report.markdown()
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"written: {args.output}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
