"""Running the app under gunicorn, configured from our settings rather than gunicorn's CLI."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from gunicorn.app.base import BaseApplication
from prometheus_client import multiprocess as prom_multiprocess

from cds_service.logs import GunicornLogger
from cds_service.metrics import MULTIPROC_ENV
from cds_service.settings import Settings

log = logging.getLogger("cds_service")


def _child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the shared metrics directory."""
    prom_multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _logger_class(log_format: str) -> type[GunicornLogger]:
    return type("SpineCdsGunicornLogger", (GunicornLogger,), {"log_format": log_format})


class _GunicornApp(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.settings.workers,
            "worker_class": "sync",  # fastest here (performance-notes.md)
            "timeout": self.settings.worker_timeout_seconds,
            "graceful_timeout": 10,
            "keepalive": 5,
            "loglevel": self.settings.log_level,
            "accesslog": None,  # our own request log line carries the hook instance, not the body
            "limit_request_line": 8190,
            "child_exit": _child_exit,
            # X-Forwarded-Proto and friends only from proxies named in the settings (gunicorn
            # believes 127.0.0.1 by default, so any local process could claim https).
            "forwarded_allow_ips": ",".join(self.settings.forwarded_allow_ips),
            # gunicorn's control socket is one path per user that every instance shares
            # and the first to stop deletes; nothing here uses it.
            "control_socket_disable": True,
            "logger_class": _logger_class(self.settings.log_format),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from cds_service.app import create_app
        from cds_service.logs import configure

        configure(self.settings.log_level, self.settings.log_format)
        app = create_app(self.settings)
        # What the app built at startup lives as long as the worker: keep it out of the
        # full collections, which otherwise walked it every few hundred requests (37 ms
        # each, measured; bench/README.md).
        gc.collect()
        gc.freeze()
        return app


def run_gunicorn(settings: Settings) -> None:
    """Serve until stopped. For metrics across workers, set PROMETHEUS_MULTIPROC_DIR first."""
    if not os.environ.get(MULTIPROC_ENV):
        log.warning("%s is not set: /metrics will show one worker's counts only", MULTIPROC_ENV)
    _GunicornApp(settings).run()
