"""What the harness's commands need around the servers they start: the checkout they
run from, the FHIR test server started with a message a person can act on, and
signals.

Both servers run as child processes of the command (``fhir_server``,
``service_process``); each is stopped in order, and killed if it does not stop in
time, so nothing outlives the command. Ctrl-C and SIGTERM become KeyboardInterrupt
while they run, and are held while they stop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

import cds_service
from cds_service.tools.errors import FhirServerError, InputError
from spine_cds_dev.fhir_server import CHECKOUT, SERVER_DIR, FhirTestServer

__all__ = [
    "checkout_root",
    "fhir_server_for",
    "interrupts_held",
    "start_fhir_server",
    "stop_signals_as_interrupt",
]


def checkout_root() -> Path:
    """The source checkout the harness belongs to, holding the FHIR test server's code,
    and whose ``cds_service`` is the one imported; InputError when it is not so."""
    package = Path(cds_service.__file__).resolve().parent
    if not (SERVER_DIR / "package.json").is_file():
        raise InputError(
            "the demo runs from a source checkout of spine-cds: it needs the FHIR test "
            f"server in {SERVER_DIR}, which is not there. Clone the repository and run "
            "`bash scripts/demo.sh` there."
        )
    if package.parent != CHECKOUT:
        raise InputError(
            "the demo runs from a source checkout of spine-cds, with that checkout's "
            f"service: this cds_service is {package}, not the one in {CHECKOUT}. Run "
            "`bash scripts/demo.sh` in the checkout."
        )
    return CHECKOUT


def fhir_server_for(port: int = 0, token: str | None = None, smart: bool = True) -> FhirTestServer:
    """An unstarted FHIR test server on 127.0.0.1 (port 0: a free one), open unless a
    token is given, answering CORS from any origin (the sandbox reads it from the page);
    with its SMART launch and authorization endpoints unless ``smart`` is False."""
    return FhirTestServer(token=token, port=port, smart=smart)


def start_fhir_server(server: FhirTestServer) -> None:
    """Install (once: npm ci) and start the FHIR test server; FhirServerError with the reason."""
    if not (SERVER_DIR / "node_modules").is_dir():
        click.echo(
            "Installing the FHIR test server's npm packages (once, about 10 s; needs npm) ..."
        )
    try:
        server.start()
    except (RuntimeError, OSError) as exc:  # the launcher's FhirServerError, or no Node
        raise FhirServerError(f"the FHIR test server did not start: {exc}") from None


@contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """Ctrl-C and SIGTERM (a process manager, ``kill``) end a command the same way, with
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
def interrupts_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM ignored while servers stop, so a second one cannot cut it short."""
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
