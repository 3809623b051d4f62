"""Running the app under gunicorn, configured from our settings rather than gunicorn's CLI."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from cds_service.settings import Settings


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
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from cds_service.app import create_app
        from cds_service.cli import configure_logging

        configure_logging(self.settings.log_level)
        return create_app(self.settings)


def run_gunicorn(settings: Settings) -> None:
    _GunicornApp(settings).run()
