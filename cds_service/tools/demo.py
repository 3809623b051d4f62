"""``spine-cds demo``: the whole service on one machine, one command, nothing left behind.

It starts the project's FHIR test server (tests/fhir_server, so it runs from a source
checkout) and the real service under gunicorn in development mode with a throw-away
database, loads the synthetic patients, acts as the EHR for each (order-select with
prefetch, over HTTP), prints each card under its patient's story, and stops everything
it started: on success, on an error, on Ctrl-C and on SIGTERM.

The service runs in its own session (process group), so Ctrl-C in the terminal does not
reach it directly: the demo stops it in order (gunicorn stops its workers), and kills
that whole group if it does not stop in time, so no worker outlives the demo.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import FrameType, ModuleType
from typing import IO, Any, Protocol
from urllib.parse import urlencode

import click
import requests

import cds_service
from cds_service.examples import Example, load_examples
from cds_service.fhir.prefetch import render_queries
from cds_service.tools.commands import spine_cds_command
from cds_service.tools.ehr import build_request
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

__all__ = [
    "DemoRow",
    "ServiceServer",
    "call_example",
    "checkout_root",
    "run_demo",
    "run_fhir_test_server",
    "sandbox_url",
    "select_examples",
]

HOOK = "order-select"
LAUNCHER = Path("tests") / "support" / "fhir_server.py"
SERVER_PACKAGE = Path("tests") / "fhir_server" / "package.json"
SERVICE_START_TIMEOUT_S = 60.0
SERVICE_STOP_TIMEOUT_S = 15.0
WIDTH = 92
SANDBOX = "https://sandbox.cds-hooks.org/"
ORDER = "http://www.ama-assn.org/go/cpt|72158"


class FhirServer(Protocol):
    """What the demo uses of tests/support/fhir_server.py's FhirTestServer."""

    base_url: str

    @property
    def pid(self) -> int | None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_running(self) -> bool: ...


# --- the checkout and the FHIR test server -----------------------------------------------


def checkout_root() -> Path:
    """The source checkout: the one this package was imported from, else the current
    directory (``spine-cds demo`` installed, run in a checkout). InputError when neither."""
    package = Path(cds_service.__file__).resolve().parent
    for root in (package.parent, Path.cwd()):
        if (root / LAUNCHER).is_file() and (root / SERVER_PACKAGE).is_file():
            return root
    raise InputError(
        "the demo runs from a source checkout of spine-cds: it needs the FHIR test server "
        f"in tests/fhir_server, which is neither next to {package} nor in the current "
        "directory. Clone the repository and run `bash scripts/demo.sh` there."
    )


def _launcher(root: Path) -> ModuleType:
    """tests/support/fhir_server.py, loaded from its file: ``tests`` is not an installed
    package, and importing it by name could pick up another distribution's ``tests``."""
    path = root / LAUNCHER
    spec = importlib.util.spec_from_file_location("spine_cds_demo_fhir_server", path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot load the FHIR test server launcher {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fhir_server_for(root: Path, port: int = 0, token: str | None = None) -> FhirServer:
    """An unstarted FHIR test server on 127.0.0.1 (port 0: a free one), open unless a
    token is given, answering CORS from any origin (the sandbox reads it from the page)."""
    server: FhirServer = _launcher(root).FhirTestServer(token=token, port=port)
    return server


def start_fhir_server(server: FhirServer, root: Path) -> None:
    """Install (once: npm ci) and start the FHIR test server; FhirServerError with the reason."""
    if not (root / "tests" / "fhir_server" / "node_modules").is_dir():
        click.echo(
            "Installing the FHIR test server's npm packages (once, about 10 s; needs npm) ..."
        )
    try:
        server.start()
    except (RuntimeError, OSError) as exc:  # the launcher's FhirServerError, or no Node
        raise FhirServerError(f"the FHIR test server did not start: {exc}") from None


# --- the service under gunicorn ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceServer:
    """``python -m cds_service serve --dev`` on a free 127.0.0.1 port, in its own session.

    The child gets no ``SPINE_CDS_*`` variable from the shell (a demo must not pick up a
    deployment's database or secrets) and imports the same ``cds_service`` as this process.
    """

    def __init__(
        self, database_path: Path, log_path: Path, workers: int = 2, port: int = 0
    ) -> None:
        self.database_path = database_path
        self.log_path = log_path
        self.workers = workers
        self.port = port  # 0: a free one
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.port = self.port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_CDS_")}
        env["SPINE_CDS_DATABASE_PATH"] = str(self.database_path)
        package_parent = str(Path(cds_service.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        command = [
            sys.executable,
            "-m",
            "cds_service",
            "serve",
            "--dev",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        self._log = open(self.log_path, "ab")  # closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise ServiceError(
                    f"the service exited at startup ({self.process.returncode}); its log:\n"
                    + self.log_tail()
                )
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"the service did not become healthy within {SERVICE_START_TIMEOUT_S:.0f} s;"
                    " its log:\n" + self.log_tail()
                )
            time.sleep(0.1)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM to the gunicorn master, which stops and reaps its workers; if it has
        not exited after a grace period, SIGKILL to its whole process group (its session:
        only what it started; the master is not reaped yet, so the group id cannot have
        been reused). Idempotent."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=SERVICE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


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


def _sandbox_lines(service_url: str, fhir_base: str, examples: Sequence[Example]) -> list[str]:
    lines = [
        "Open the CDS Hooks sandbox on its PAMA imaging tab, one patient per link (the page"
        " reads the FHIR server from your browser; pick a lumbar spine MRI or CT):"
    ]
    for example in examples:
        lines.append(f"  {example.patient_id:<14} {example.expected:<18} {example.title}")
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
    root = checkout_root()
    fhir_server: FhirServer | None = None
    service: ServiceServer | None = None
    rows: list[DemoRow] = []
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="spine-cds-demo-") as tmp, _stop_signals_as_interrupt():
        try:
            click.echo("Starting the FHIR test server (Node, data in memory, 127.0.0.1) ...")
            fhir_server = fhir_server_for(root, fhir_port)
            start_fhir_server(fhir_server, root)
            click.echo(f"  FHIR test server at {fhir_server.base_url} (pid {fhir_server.pid})")
            click.echo("Starting the service (gunicorn, development mode, throw-away database) ...")
            service = ServiceServer(
                Path(tmp) / "spine-cds.sqlite3", Path(tmp) / "service.log", port=service_port
            )
            service.start()
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
        for loaded in load_into(fhir, order_date):
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
    fhir_server: FhirServer,
    service: ServiceServer,
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
    click.echo("\n".join(_sandbox_lines(service.url, fhir_server.base_url, examples)))
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


def _stop_all(fhir_server: FhirServer | None, service: ServiceServer | None) -> None:
    """Stop what was started, the service first; a second Ctrl-C cannot cut this short."""
    if fhir_server is None and service is None:
        return
    with _interrupts_held():
        click.echo("Stopping the service and the FHIR test server ...")
        if service is not None:
            service.stop()
        if fhir_server is not None:
            fhir_server.stop()
        click.echo("Stopped everything the demo started.")


@contextmanager
def _stop_signals_as_interrupt() -> Iterator[None]:
    """Ctrl-C and SIGTERM (a process manager, ``kill``) end the demo the same way, with
    cleanup. SIGINT is set explicitly: a shell starts background jobs with it ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _interrupts_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {
        sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- the FHIR test server on its own ------------------------------------------------------


def _check_port_free(port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Node listens
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise FhirServerError(
                f"port {port} is in use on 127.0.0.1: stop what listens there (an earlier"
                " FHIR test server?) or choose another port with --port"
            ) from None


def run_fhir_test_server(
    port: int,
    load: bool,
    order_date: date,
    service_url: str,
    token: str | None = None,
) -> int:
    """Run the project's FHIR test server on 127.0.0.1:``port`` until Ctrl-C, optionally
    with the example patients loaded, and print how to use it (sandbox links for a
    service at ``service_url``, a ``try`` command). 0 on Ctrl-C; ToolError on a problem."""
    root = checkout_root()
    _check_port_free(port)
    fhir_server: FhirServer | None = None
    with _stop_signals_as_interrupt():
        try:
            click.echo(f"Starting the FHIR test server on 127.0.0.1:{port} (data in memory) ...")
            fhir_server = fhir_server_for(root, port, token)
            start_fhir_server(fhir_server, root)
            base = fhir_server.base_url
            click.echo(f"  FHIR test server at {base} (pid {fhir_server.pid})")
            examples: list[Example] = []
            if load:
                click.echo(f"Loading the example patients (orders placed on {order_date}) ...")
                with FhirEndpoint(base, token) as endpoint:
                    for loaded in load_into(endpoint, order_date):
                        examples.append(loaded.example)
                        click.echo(f"  {loaded.example.patient_id:<16}{loaded.example.title}")
            click.echo("")
            click.echo(click.style(f"FHIR R4 base URL: {base}", bold=True))
            click.echo("  open" if token is None else "  bearer token required (the one you gave)")
            click.echo(
                "  CORS: any origin, preflight included (browser clients such as the CDS"
                " Hooks sandbox can read it)"
            )
            if examples:
                click.echo(f"With the service running at {service_url} (bash scripts/serve.sh):")
                click.echo("\n".join(_sandbox_lines(service_url, base, examples)))
                if order_date != date.today():
                    click.echo(
                        f"  Note: the orders were placed on {order_date}, but the sandbox's"
                        " orders carry no date and are evaluated today: load without --date"
                        " for the sandbox to show the expected cards."
                    )
                click.echo("Or act as the EHR from another terminal, in this directory:")
                click.echo("  " + try_command(base, examples[0].patient_id, order_date))
            else:
                click.echo("Load the example patients into it from another terminal:")
                click.echo(
                    f"  {spine_cds_command()} load-examples --fhir-server {base}"
                    f" --date {order_date}"
                )
            click.echo("Press Ctrl-C to stop it.")
            sys.stdout.flush()
            while fhir_server.is_running():
                time.sleep(0.5)
            raise FhirServerError("the FHIR test server stopped unexpectedly")
        except KeyboardInterrupt:
            click.echo("")
        finally:
            if fhir_server is not None:
                with _interrupts_held():
                    fhir_server.stop()
                    click.echo("Stopped the FHIR test server.")
    return 0
