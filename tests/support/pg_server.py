"""A throwaway PostgreSQL server for tests: its own cluster in a temp dir, on 127.0.0.1.

Uses Debian's ``postgresql`` package binaries (``initdb``, ``pg_ctl``, found under
/usr/lib/postgresql/*/bin or on PATH). PostgreSQL refuses to run as root, so when the
tests run as root the cluster belongs to the ``postgres`` system user and its commands
run through ``runuser``. Authentication is ``trust`` and the server listens on
127.0.0.1 only, on a free port, with fsync off: fast, and gone after the test.

When the binaries are missing a test is skipped with the reason, except under CI
(the ``CI`` environment variable set), where it fails: CI must run these tests.

    with running_postgres() as pg:
        url = pg.new_database()   # a fresh, empty database per caller
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from spine_cds_dev.service_process import free_port

SUPERUSER = "spine"
START_TIMEOUT_SECONDS = 60


def missing_binary(what: str) -> NoReturn:
    """Skip the test, or fail it under CI, because a server binary is not installed."""
    message = f"{what} is not installed (apt-get install -y postgresql redis-server)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run the PostgreSQL and Redis tests")
    pytest.skip(message)


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    host: str
    port: int
    stop: Callable[[], None]  # stops the server early (an outage); cleanup still happens

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database and return its URL (tests stay independent)."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh cluster, yield it, then stop it and delete its files."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        missing_binary("PostgreSQL (initdb, pg_ctl)")
    prefix: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")  # created by Debian's postgresql package
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="spine-cds-pg-"))
    data, sockets, logfile = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if owner is not None:
        for path in (root, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_port()
    started = False

    def stop() -> None:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data)],
            capture_output=True,
            timeout=START_TIMEOUT_SECONDS,
        )

    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust"]
        initdb += ["--no-sync", "-E", "UTF8", "--locale=C"]
        made = subprocess.run(
            [*prefix, *initdb], capture_output=True, timeout=START_TIMEOUT_SECONDS
        )
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.decode(errors='replace')}")
        options = f"-h 127.0.0.1 -p {port} -k {sockets} -F -c max_connections=100"
        start = [str(bin_dir / "pg_ctl"), "start", "-w", "-D", str(data)]
        start += ["-t", str(START_TIMEOUT_SECONDS), "-l", str(logfile), "-o", options]
        result = subprocess.run(
            [*prefix, *start], capture_output=True, timeout=START_TIMEOUT_SECONDS + 10
        )
        started = True
        if result.returncode != 0:
            log = logfile.read_text(errors="replace") if logfile.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr!r}\n{log}")
        yield PostgresServer(host="127.0.0.1", port=port, stop=stop)
    finally:
        if started:
            stop()
        shutil.rmtree(root, ignore_errors=True)
