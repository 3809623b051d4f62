"""The local servers the tools start and stop: the FHIR test server and the service.

Both run as child processes of the tool; each is stopped in order, and killed with its
whole process group if it does not stop in time, so nothing outlives the tool. Ctrl-C
and SIGTERM become KeyboardInterrupt while they run, and are held while they stop.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, ModuleType
from typing import IO, Any, Protocol

import click
import requests

import cds_service
from cds_service.tools.errors import FhirServerError, InputError, ServiceError

LAUNCHER = Path("tests") / "support" / "fhir_server.py"
SERVER_PACKAGE = Path("tests") / "fhir_server" / "package.json"
SERVICE_START_TIMEOUT_S = 60.0
SERVICE_STOP_TIMEOUT_S = 15.0


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
