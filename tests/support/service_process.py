"""Run the real service (`spine-cds serve`, gunicorn) as a subprocess on 127.0.0.1.

Used by the smoke and integration tests and by the benchmarks: the same command a user
runs, not the Flask test client.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """``with ServiceProcess(env={...}) as svc: requests.get(svc.url + "/health")``."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = ("--dev",),
        workers: int = 2,
        log_path: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.args = args
        self.workers = workers
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: object = None

    def start(self, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_CDS_")}
        if "--dev" not in self.args:
            # Secure mode needs the URL clients put in the JWT aud; a test may override it.
            env["SPINE_CDS_PUBLIC_BASE_URL"] = self.url
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
        stderr = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self._log_file = stderr
        self.process = subprocess.Popen(command, env=env, stdout=stderr, stderr=stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"service exited with {self.process.returncode}: see {self.log_path}"
                )
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"service did not become healthy within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log_file not in (None, subprocess.DEVNULL):
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None

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
