"""A throwaway Redis server for tests: ``redis-server`` on 127.0.0.1, a free port, no disk.

Uses Debian's ``redis-server`` package. Nothing is saved (no RDB, no AOF); the
process is stopped when the ``with`` block ends. Missing binary: skipped locally,
failed under CI (see ``pg_server.missing_binary``).

    with running_redis() as redis_url:
        ...
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from spine_cds_dev.service_process import free_port
from tests.support.pg_server import missing_binary

START_TIMEOUT_SECONDS = 20.0


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
            return answer.startswith(b"+PONG") or answer.startswith(b"-NOAUTH")
    except OSError:
        return False


@contextmanager
def running_redis(password: str | None = None) -> Iterator[str]:
    """Start redis-server, yield its URL (database 0), then stop it. With ``password`` the
    server requires it (the URL does not carry it: the caller writes it in)."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing_binary("redis-server")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="spine-cds-redis-") as workdir:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", workdir, "--daemonize", "no"]
        if password is not None:
            command += ["--requirepass", password]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not _answers_ping(port):
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING in time")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
