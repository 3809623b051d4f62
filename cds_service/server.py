"""Running the app under gunicorn, configured from our settings rather than gunicorn's CLI.

Also what the ``serve`` command checks before it starts, for the places the service is
deployed (containers with a read-only root filesystem, volumes owned by someone else).
This module must not import prometheus_client at import time: ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a directory it makes with ``metrics_directory`` first.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import platform
import stat
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from cds_service.auth.algorithms import _MAX_TOKEN_CHARS
from cds_service.logs import GunicornLogger
from cds_service.settings import Settings

log = logging.getLogger("cds_service")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # as cds_service.metrics, without importing it
# gunicorn waits this long for workers to finish their requests after SIGTERM, then kills
# them. Shorter than every stop timeout the service meets (Docker and podman: 10 s;
# Kubernetes: terminationGracePeriodSeconds, 30 s by default, less its preStop pause), so
# gunicorn exits by itself before anything sends SIGKILL. A call takes well under a
# second (fhir_budget_seconds bounds its FHIR traffic).
GRACEFUL_TIMEOUT_SECONDS = 8
# The header line "Authorization: Bearer <token>\r\n" (gunicorn counts its CRLF) with
# the longest token the verifier reads.
AUTHORIZATION_FIELD_BYTES = len("Authorization: Bearer \r\n") + _MAX_TOKEN_CHARS
# Shared memory, where one exists: the workers' heartbeat files and the metrics directory
# need no disk, and a read-only root filesystem has no other writable place.
SHM_DIR = "/dev/shm"  # noqa: S108 - mkdtemp/mkstemp there: private, unique names


WORKER_READY = "worker ready to take connections:"
M_ARENA_MAX = -8  # glibc's malloc.h: the mallopt parameter MALLOC_ARENA_MAX sets


class DeploymentError(RuntimeError):
    """Something about the place the service runs in stops it; the message says what to do."""


def _who() -> str:
    return f"uid {os.getuid()}, gid {os.getgid()}"


def metrics_directory() -> str:
    """A fresh directory for prometheus-client's multiprocess files.

    Under the temporary directory (``TMPDIR``, /tmp), else in shared memory; with
    neither writable (a read-only root filesystem and no tmpfs) the error says so.
    """
    try:
        return tempfile.mkdtemp(prefix="spine-cds-metrics-")
    except OSError:
        pass
    if os.access(SHM_DIR, os.W_OK | os.X_OK):
        try:
            return tempfile.mkdtemp(prefix="spine-cds-metrics-", dir=SHM_DIR)
        except OSError:
            pass
    raise DeploymentError(
        f"no writable temporary directory for the metrics of the workers (tried "
        f"{tempfile.gettempdir()!s} and {SHM_DIR}, as {_who()}): with a read-only root "
        "filesystem mount a tmpfs at /tmp (Kubernetes: an emptyDir volume; docker/podman: "
        "--tmpfs /tmp) or point TMPDIR at a writable directory"
    )


def worker_tmp_dir() -> str | None:
    """Where gunicorn keeps the workers' heartbeat files: shared memory when writable."""
    return SHM_DIR if os.access(SHM_DIR, os.W_OK | os.X_OK) else None


def _describe(path: Path) -> str:
    try:
        info = path.stat()
    except OSError as exc:
        return f"not reachable: {exc.strerror}"
    return f"owned by uid {info.st_uid}, gid {info.st_gid}, mode {stat.filemode(info.st_mode)}"


def check_database_writable(settings: Settings) -> None:
    """With SQLite, the database file and its directory must be writable by this user.

    SQLite itself says only "unable to open database file"; in a container that is
    usually a volume owned by root while the service runs as uid 10001.
    """
    if settings.database_url or settings.database_path == ":memory:":
        return
    database = Path(settings.database_path).absolute()
    directory = database.parent
    existing = directory
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    hint = (
        "give the directory to the service's user (chown 10001:10001, the uid of the "
        "container image), in Kubernetes set securityContext.fsGroup: 10001, or set "
        "SPINE_CDS_DATABASE_PATH to a writable place (database_url for PostgreSQL)"
    )
    if existing != directory and not os.access(existing, os.W_OK | os.X_OK):
        raise DeploymentError(
            f"the SQLite database {database} cannot be created: {directory} does not exist "
            f"and {existing} ({_describe(existing)}) is not writable by this process "
            f"({_who()}); {hint}"
        )
    if existing == directory and not os.access(directory, os.W_OK | os.X_OK):
        raise DeploymentError(
            f"the SQLite database {database} cannot be written: its directory {directory} "
            f"({_describe(directory)}) is not writable by this process ({_who()}); "
            "SQLite needs to create files next to the database (-wal, -shm); " + hint
        )
    if os.path.lexists(database) and not os.access(database, os.R_OK | os.W_OK):
        raise DeploymentError(
            f"the SQLite database {database} ({_describe(database)}) is not readable and "
            f"writable by this process ({_who()}); {hint}"
        )


def listening_line(settings: Settings) -> str:
    """What the service tells the person starting it: an address they can open.

    0.0.0.0 (or ::) is where it listens, not a URL anyone can call; say so. With
    ``public_base_url`` set, also the discovery URL clients use and the ``aud`` their
    JWTs must carry, whatever the address: an outside review saw only the listening
    address, while every EHR call was refused for an ``aud`` it did not show.
    """
    if settings.host in {"0.0.0.0", "::", ""}:  # noqa: S104 - describing, not binding
        where = f"listening on all interfaces, port {settings.port}"
        if not settings.public_base_url:
            return f"{where}; from this host: {local_url(settings)}/cds-services"
    else:
        where = f"serving {local_url(settings)}/cds-services"
    if not settings.public_base_url:
        return where
    discovery = f"{settings.public_base_url.rstrip('/')}/cds-services"
    return f"{where}; clients call {discovery} (a client JWT's aud: {discovery}/<service id>)"


def local_url(settings: Settings) -> str:
    """The service's base URL from this host (an all-interfaces address: the loopback)."""
    if settings.host in {"0.0.0.0", "::", ""}:  # noqa: S104 - describing, not binding
        return f"http://127.0.0.1:{settings.port}"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def _child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the shared metrics directory."""
    from prometheus_client import multiprocess as prom_multiprocess

    prom_multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _worker_exit(server: Any, worker: Any) -> None:
    """A worker stopping the usual way stores the audit records it has handed to its
    writer before it goes (stores/audit_queue.py: the durability it promises)."""
    app = getattr(worker, "wsgi", None)
    runtime = getattr(app, "extensions", {}).get("spine_cds")
    if runtime is not None:
        runtime.stores.audit.close()


def _logger_class(log_format: str) -> type[GunicornLogger]:
    return type("SpineCdsGunicornLogger", (GunicornLogger,), {"log_format": log_format})


def worker_options(threads: int) -> dict[str, Any]:
    """gunicorn's worker settings for ``threads`` threads per worker.

    More than one: threaded workers (``worker.TurnWorker``), so that a call waiting on
    a slow FHIR server holds one thread, not the worker, and the calls that need no FHIR
    keep being answered beside it. Each thread takes and answers a call as a sync worker
    does, one at a time besides those waiting on a FHIR server: the calls that
    compute wait in the listen queue all workers share, and go to the first that is free
    (measured against sync workers in the same run: bench/README.md, issue 27). One:
    sync workers, one call at a time each. Both close each connection after its answer,
    and both refuse in JSON what gunicorn cannot read as HTTP (``worker.SyncWorker``).
    """
    if threads <= 1:
        return {"worker_class": "cds_service.worker.SyncWorker", "threads": 1}
    return {"worker_class": "cds_service.worker.TurnWorker", "threads": threads}


class _GunicornApp(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.settings.workers,
            **worker_options(self.settings.threads),
            "timeout": self.settings.worker_timeout_seconds,
            "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
            "loglevel": self.settings.log_level,
            "accesslog": None,  # our own request log line carries the hook instance, not the body
            "limit_request_line": 8190,
            # An Authorization header as long as the verifier reads (the longest token
            # and "Bearer "): a longer one was refused by gunicorn itself, in HTML.
            "limit_request_field_size": AUTHORIZATION_FIELD_BYTES,
            "child_exit": _child_exit,
            "worker_exit": _worker_exit,
            # X-Forwarded-Proto and friends only from proxies named in the settings (gunicorn
            # believes 127.0.0.1 by default, so any local process could claim https).
            "forwarded_allow_ips": ",".join(self.settings.forwarded_allow_ips),
            # gunicorn's control socket is one path per user that every instance shares
            # and the first to stop deletes; nothing here uses it.
            "control_socket_disable": True,
            # Heartbeat files in shared memory: no disk writes, and works with a
            # read-only root filesystem.
            "worker_tmp_dir": worker_tmp_dir(),
            "logger_class": _logger_class(self.settings.log_format),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from cds_service.app import create_app
        from cds_service.logs import configure
        from cds_service.warmup import warm_up

        configure(self.settings.log_level, self.settings.log_format)
        app = create_app(self.settings)
        # The first call of a fresh worker paid for imports and first use (5-20x a later
        # call): pay it here, before gunicorn hands this worker a connection.
        took = warm_up(app.extensions["spine_cds"])
        # What the app built at startup lives as long as the worker: keep it out of the
        # full collections, which otherwise walked it every few hundred requests (37 ms
        # each, measured; bench/README.md).
        gc.collect()
        gc.freeze()
        # One line per worker start, the last thing before it takes connections
        # (bench/first_call.py waits for one per worker before timing first calls).
        log.info(
            "%s %s",
            WORKER_READY,
            "after a failed warm-up" if took is None else f"warm-up {took:.0f} ms",
        )
        return app


def one_malloc_arena() -> str:
    """Let every thread of this process (and of the workers it forks) allocate from one
    glibc malloc arena; what was done, in words for the log.

    glibc gives each new thread an arena of its own, and memory freed in one is kept
    for that thread. A threaded worker's resident size then rose with every thread
    that had held a request body (+8 to +16% over 15,000 calls, against +5% with one
    arena, at the same calls/s: the GIL lets one thread run at a time anyway, so one
    arena is hardly contended). An operator's own ``MALLOC_ARENA_MAX`` is kept.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return "malloc arenas: MALLOC_ARENA_MAX from the environment"
    if platform.libc_ver()[0] != "glibc":
        return "malloc arenas: not glibc, left as they are"
    try:
        done = ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError) as exc:
        return f"malloc arenas: left as they are ({type(exc).__name__})"
    return "malloc arenas: one for all threads" if done == 1 else "malloc arenas: mallopt refused"


def run_gunicorn(settings: Settings) -> None:
    """Serve until stopped. For metrics across workers, set PROMETHEUS_MULTIPROC_DIR first."""
    log.info("%s", one_malloc_arena())  # before gunicorn forks: the workers inherit it
    if not os.environ.get(MULTIPROC_ENV):
        log.warning("%s is not set: /metrics will show one worker's counts only", MULTIPROC_ENV)
    _GunicornApp(settings).run()


def probe(settings: Settings, path: str, timeout: float = 4.0) -> tuple[bool, str]:
    """GET ``path`` of the service these settings describe, as a container health check.

    The address and port come from the same settings as ``serve`` (so a changed port is
    followed); an all-interfaces address is probed on the loopback interface.
    """
    import urllib.error
    import urllib.request

    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(  # noqa: S104
        settings.host, settings.host
    )
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{settings.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code} {exc.read(2000).decode('utf-8', 'replace')}"
    except OSError as exc:
        return False, f"{url}: {type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    """``python -m cds_service.server --probe /readyz``: the image's HEALTHCHECK."""
    import sys

    from cds_service.settings import SettingsError, load_settings

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "--probe" or not args[1].startswith("/"):
        print("usage: python -m cds_service.server --probe /readyz", file=sys.stderr)
        return 2
    try:
        settings = load_settings(notices=[])
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1
    ok, said = probe(settings, args[1])
    print(said, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
