"""``spine-cds demo``: the whole service on one machine, one command, nothing left behind.

Part of the development harness (it runs from a source checkout, not from the wheel).
It starts the project's FHIR test server (tests/fhir_server) and the real service under
gunicorn in development mode with a throw-away database, loads the synthetic patients,
acts as the EHR for each (order-select with prefetch, over HTTP), prints each card under
its patient's story, and stops everything it started: on success, on an error, on
Ctrl-C and on SIGTERM.

The service runs in its own session (process group), so Ctrl-C in the terminal does not
reach it directly: the demo stops it in order (gunicorn stops its workers), and kills
that whole group if it does not stop in time, so no worker outlives the demo.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import click

from cds_service.ehr_requests import build_request
from cds_service.examples import Example, load_examples
from cds_service.fhir.prefetch import render_queries
from cds_service.tools.commands import spine_cds_command
from cds_service.tools.errors import EXIT_MISMATCH, FhirServerError, InputError, ServiceError
from cds_service.tools.fhir_http import FhirEndpoint
from cds_service.tools.load_examples import load_into
from cds_service.tools.render import decision_of, render_cards
from cds_service.tools.services import (
    Answer,
    RemoteService,
    ServiceEntry,
    error_text,
    find_service,
)
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.processes import (
    checkout_root,
    fhir_server_for,
    interrupts_held,
    start_fhir_server,
    stop_signals_as_interrupt,
)
from spine_cds_dev.service_process import ServiceProcess, ServiceStartError

__all__ = [
    "DemoRow",
    "call_example",
    "run_demo",
    "sandbox_url",
    "select_examples",
]

HOOK = "order-select"
WIDTH = 92
SANDBOX = "https://sandbox.cds-hooks.org/"
ORDER = "http://www.ama-assn.org/go/cpt|72158"
SERVICE_START_TIMEOUT_S = 60.0


# --- acting as the EHR ------------------------------------------------------------------


@dataclass(frozen=True)
class DemoRow:
    """One example's round trip: what was expected, what the service answered."""

    example: Example
    answer: Answer
    elapsed_ms: float
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def decision(self) -> str:
        if self.answer.status != 200 or not isinstance(self.answer.body, dict):
            return f"error {self.answer.status}"
        return decision_of(self.answer.body)

    @property
    def match(self) -> bool:
        return self.decision == self.example.expected


def select_examples(examples: Sequence[Example], wanted: Sequence[str]) -> list[Example]:
    """The examples named by key (``e01-improving`` or ``e01``) or patient id
    (``spine-cds-e1``), in the order given; all of them when none is named. InputError
    for an unknown name."""
    if not wanted:
        return list(examples)
    chosen = []
    for name in wanted:
        found = [e for e in examples if name in (e.key, e.key.split("-")[0], e.patient_id)]
        if not found:
            known = ", ".join(e.key for e in examples)
            raise InputError(f"--patient {name!r}: no such example; known: {known}")
        chosen.append(found[0])
    return chosen


def call_example(
    service: RemoteService, entry: ServiceEntry, fhir: FhirEndpoint, example: Example
) -> DemoRow:
    """order-select for the example's draft order, with prefetch filled from the FHIR
    server by the service's own templates (as an EHR does), over HTTP."""
    request = build_request(
        HOOK, str(uuid.uuid4()), example.patient_id, example.draft_order, fhir_server=fhir.base
    )
    queries, problems = render_queries(entry.prefetch, request["context"])
    left_out = {p.key: p.reason for p in problems}
    fetched = fhir.run_prefetch(queries)
    left_out.update(fetched.left_out)
    if fetched.prefetch:
        request["prefetch"] = fetched.prefetch
    started = time.monotonic()
    answer = service.call(entry.id, request)
    return DemoRow(example, answer, (time.monotonic() - started) * 1000, left_out)


# --- the whole demo ---------------------------------------------------------------------


def sandbox_url(service_url: str, fhir_base: str, patient_id: str) -> str:
    """The CDS Hooks sandbox opened on its PAMA imaging tab with this service, this FHIR
    server and this patient (see docs/sandbox.md for what the parameters mean)."""
    query = urlencode(
        {
            "screen": "pama",
            "hook": HOOK,
            "serviceDiscoveryURL": f"{service_url.rstrip('/')}/cds-services",
            "fhirServiceUrl": fhir_base,
            "patientId": patient_id,
        }
    )
    return f"{SANDBOX}?{query}"


def try_command(fhir_base: str, patient_id: str, order_date: date, service_url: str = "") -> str:
    """A ``spine-cds try`` command line that runs as printed from the user's directory."""
    service = f" --service-url {service_url}" if service_url else ""
    return (
        f"{spine_cds_command()} try{service} --fhir-server {fhir_base} --patient {patient_id} "
        f"--order '{ORDER}' --date {order_date}"
    )


def sandbox_lines(service_url: str, fhir_base: str, examples: Sequence[Example]) -> list[str]:
    """A link per patient, with the order to pick on the PAMA tab and, where the example's
    answer rests on what that tab cannot set (a priority, a stated reason), a warning."""
    lines = [
        "Open the CDS Hooks sandbox on its PAMA imaging tab, one patient per link (the page"
        " reads the FHIR server from your browser; pick the order named):"
    ]
    for example in examples:
        order = example.draft_order
        coding = order["code"]["coding"][0]
        lines.append(f"  {example.patient_id:<14} {example.expected:<18} {example.title}")
        lines.append(f"    order: {coding['code']} {coding.get('display', '')}".rstrip())
        cannot = [f"priority {order['priority']}"] if "priority" in order else []
        cannot += ["a stated reason"] if "reasonCode" in order else []
        if cannot:
            lines.append(
                f"    (expected with {' and '.join(cannot)}, which the sandbox cannot set:"
                " it shows another card)"
            )
        lines.append(f"    {sandbox_url(service_url, fhir_base, example.patient_id)}")
    return lines


def run_demo(
    wanted: Sequence[str],
    order_date: date,
    keep_running: bool = False,
    detail: bool = False,
    fhir_port: int = 0,
    service_port: int = 0,
) -> int:
    """Start both servers, show every chosen example, stop both; the exit code.

    0 every decision as expected, 1 one differed (EXIT_MISMATCH), 130 interrupted before
    the end (with ``keep_running``, Ctrl-C is the normal end). Problems before the
    examples run raise ToolError (exit 2, 3 or 4).
    """
    examples = select_examples(load_examples(order_date), wanted)  # before starting anything
    checkout_root()
    fhir_server: FhirTestServer | None = None
    service: ServiceProcess | None = None
    rows: list[DemoRow] = []
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="spine-cds-demo-") as tmp, stop_signals_as_interrupt():
        try:
            click.echo("Starting the FHIR test server (Node, data in memory, 127.0.0.1) ...")
            fhir_server = fhir_server_for(fhir_port)
            start_fhir_server(fhir_server)
            click.echo(f"  FHIR test server at {fhir_server.base_url} (pid {fhir_server.pid})")
            click.echo("Starting the service (gunicorn, development mode, throw-away database) ...")
            service = ServiceProcess(
                env={"SPINE_CDS_DATABASE_PATH": str(Path(tmp) / "spine-cds.sqlite3")},
                log_path=Path(tmp) / "service.log",
                port=service_port,
                own_session=True,
            )
            _start_service(service)
            click.echo(f"  service at {service.url}/cds-services (pid {service.pid})")
            rows = _show_examples(fhir_server.base_url, service.url, examples, order_date, detail)
            if keep_running:
                _wait_for_ctrl_c(fhir_server, service, order_date, examples)
            else:
                click.echo(
                    "To try these patients in the CDS Hooks sandbox, run the demo with "
                    "--keep-running: it prints one sandbox link per patient."
                )
        except KeyboardInterrupt:
            interrupted = not keep_running or len(rows) < len(examples)
            click.echo("\nInterrupted." if interrupted else "")
        finally:
            _stop_all(fhir_server, service)
    if interrupted:
        return 130
    return 0 if all(row.match for row in rows) else EXIT_MISMATCH


def _start_service(service: ServiceProcess) -> None:
    try:
        service.start(SERVICE_START_TIMEOUT_S)
    except ServiceStartError as exc:
        raise ServiceError(str(exc)) from None


def _show_examples(
    fhir_base: str,
    service_url: str,
    examples: Sequence[Example],
    order_date: date,
    detail: bool,
) -> list[DemoRow]:
    rows: list[DemoRow] = []
    with FhirEndpoint(fhir_base) as fhir, RemoteService(service_url) as service:
        click.echo(f"Loading the example patients (orders placed on {order_date}) ...")
        for loaded in load_into(fhir, load_examples(order_date)):
            click.echo(f"  {loaded.example.patient_id:<16}{loaded.example.title}")
        entry = find_service(service.discovery(), HOOK, service.label)
        click.echo(f"Acting as the EHR: {HOOK} with prefetch for each patient, to {entry.id}")
        for number, example in enumerate(examples, 1):
            row = call_example(service, entry, fhir, example)
            rows.append(row)
            click.echo(_row_text(row, number, len(examples), detail))
    matched = sum(row.match for row in rows)
    click.echo("")
    summary = f"{len(rows)} patient(s): {matched} decision(s) as expected"
    if matched < len(rows):
        wrong = ", ".join(row.example.key for row in rows if not row.match)
        summary += f"; NOT as expected: {wrong}"
    click.echo(click.style(summary, bold=True))
    return rows


def _row_text(row: DemoRow, number: int, total: int, detail: bool) -> str:
    ex = row.example
    title = f"━━ {number}/{total} {ex.key} · {ex.patient_id} · {ex.title} "
    lines = ["", click.style(title + "━" * max(0, WIDTH - len(title)), bold=True)]
    for key, why in row.left_out.items():
        lines.append(f"(prefetch {key!r} not sent, the service fetches it: {why})")
    if row.answer.status == 200 and isinstance(row.answer.body, dict):
        lines.append(render_cards(row.answer.body, ex.story, detail=detail))
    else:
        lines.append(f"Story: {ex.story}")
        lines.append(f"The service answered {row.answer.status}: {error_text(row.answer.body)}")
    verdict = (
        click.style("as expected", fg="green")
        if row.match
        else click.style("NOT as expected", fg="red", bold=True)
    )
    lines.append("")
    lines.append(
        f"Expected {ex.expected}, got {row.decision}: {verdict}. "
        f"({HOOK} answered {row.answer.status} in {row.elapsed_ms:.0f} ms)"
    )
    lines += textwrap.wrap(
        ex.why, width=WIDTH, initial_indent="Why this example: ", subsequent_indent="  "
    )
    return "\n".join(lines)


def _wait_for_ctrl_c(
    fhir_server: FhirTestServer,
    service: ServiceProcess,
    order_date: date,
    examples: Sequence[Example],
) -> None:
    click.echo("")
    click.echo(click.style("Both servers keep running until Ctrl-C:", bold=True))
    click.echo(
        f"  FHIR test server  {fhir_server.base_url}  (no token, CORS open; example patients"
        " loaded)"
    )
    click.echo(f"  CDS service       {service.url}/cds-services  (development mode)")
    click.echo("\n".join(sandbox_lines(service.url, fhir_server.base_url, examples)))
    click.echo("Or try one patient from another terminal, in this directory:")
    click.echo("  " + try_command(fhir_server.base_url, "spine-cds-e1", order_date, service.url))
    click.echo("Press Ctrl-C to stop both.", nl=True)
    sys.stdout.flush()
    while True:
        if not service.is_running():
            raise ServiceError("the service stopped unexpectedly; its log:\n" + service.log_tail())
        if not fhir_server.is_running():
            raise FhirServerError("the FHIR test server stopped unexpectedly")
        time.sleep(0.5)


def _stop_all(fhir_server: FhirTestServer | None, service: ServiceProcess | None) -> None:
    """Stop what was started, the service first; a second Ctrl-C cannot cut this short."""
    if fhir_server is None and service is None:
        return
    with interrupts_held():
        click.echo("Stopping the service and the FHIR test server ...")
        if service is not None:
            service.stop()
        if fhir_server is not None:
            fhir_server.stop()
        click.echo("Stopped everything the demo started.")
