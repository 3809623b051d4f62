"""Run the real service (`spine-cds serve`, gunicorn) as a child process on 127.0.0.1.

The one launcher of it, for the smoke and integration tests, the benchmarks and
``spine-cds demo``: the same command a user runs, not the Flask test client. The child
gets no ``SPINE_CDS_*`` variable from the parent (a test or a demo must not pick up a
deployment's database or secrets) and imports the same ``cds_service`` as the parent,
unless the caller's ``env`` names a ``PYTHONPATH`` (bench/run.py --compare runs another
revision).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import requests

import cds_service

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceStartError(RuntimeError):
    """The service exited at startup or did not become healthy in time."""


class ServiceProcess:
    """``with ServiceProcess(env={...}) as svc: requests.get(svc.url + "/health")``.

    ``args`` are ``serve``'s options after host, port and workers (default: development
    mode). ``own_session`` starts it in a session (process group) of its own, so that a
    Ctrl-C in the terminal reaches only the parent, which then stops it in order; a stop
    that times out kills that whole group, the gunicorn workers included.
    """

    def __init__(
        self,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = ("--dev",),
        workers: int = 2,
        log_path: Path | None = None,
        port: int = 0,
        own_session: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.args = args
        self.workers = workers
        self.log_path = log_path
        self.own_session = own_session
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start it and wait until ``/health`` answers 200; ServiceStartError (with the
        end of its log, when it has one) when it exits or is not healthy in time."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_CDS_")}
        if "--dev" not in self.args:
            # Secure mode needs the URL clients put in the JWT aud, and a key for the
            # audit's patient hash (never kept in the database); a test may override them.
            env["SPINE_CDS_PUBLIC_BASE_URL"] = self.url
            if not {"SPINE_CDS_AUDIT_HASH_KEY", "SPINE_CDS_AUDIT_HASH_KEY_FILE"} & set(
                self.extra_env
            ):
                env["SPINE_CDS_AUDIT_HASH_KEY"] = secrets.token_hex(32)
        if "PYTHONPATH" not in self.extra_env:  # else the caller names the code to run
            package_parent = str(Path(cds_service.__file__).resolve().parent.parent)
            inherited = env.get("PYTHONPATH")
            env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, inherited) if p)
        env.update(self.extra_env)
        command = [
            sys.executable,
            "-m",
            "cds_service",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            *self.args,
        ]
        if self.log_path is not None:
            self._log = open(self.log_path, "wb")  # closed in stop()
        output = self._log if self._log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=self.own_session,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise ServiceStartError(f"the service exited at startup ({code}){self._tail()}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceStartError(
                    f"the service did not become healthy within {timeout:.0f} s{self._tail()}"
                )
            time.sleep(0.1)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of its log ("(no log)" without one)."""
        if self.log_path is None:
            return "(no log)"
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _tail(self) -> str:
        return "; its log:\n" + self.log_tail() if self.log_path is not None else ""

    def stop(self) -> None:
        """SIGTERM to the gunicorn master, which stops and reaps its workers; if it has
        not exited after a grace period, SIGKILL (to its whole process group when it has
        its own session: only what it started; the master is not reaped yet, so the
        group id cannot have been reused). Idempotent."""
        process = self.process  # kept after it ends: its return code is read from it
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    if self.own_session:
                        os.killpg(process.pid, signal.SIGKILL)
                    else:
                        process.kill()
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
