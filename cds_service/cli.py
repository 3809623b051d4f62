"""The ``spine-cds`` command: serve the service (and, later, tools for integrators)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from cds_service import __version__
from cds_service.settings import Settings, SettingsError, load_settings

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)


def _settings_or_exit(config: str | None, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(config_file=config, overrides=overrides)
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


@click.group()
@click.version_option(__version__, prog_name="spine-cds")
def main() -> None:
    """CDS Hooks service for repeat spine imaging in pyogenic spondylodiscitis."""


@main.command()
@click.option("--host", help="Address to listen on [default 127.0.0.1; SPINE_CDS_HOST].")
@click.option("--port", type=int, help="Port [default 8080; SPINE_CDS_PORT].")
@click.option("--workers", type=int, help="gunicorn worker processes [default 2].")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option(
    "--dev",
    is_flag=True,
    default=None,
    help="Development mode: no client authentication, permissive CORS. Never in production.",
)
def serve(
    host: str | None, port: int | None, workers: int | None, config: str | None, dev: bool | None
) -> None:
    """Run the service under gunicorn."""
    from cds_service.server import run_gunicorn

    overrides = {"host": host, "port": port, "workers": workers, "dev_mode": dev}
    settings = _settings_or_exit(config, overrides)
    configure_logging(settings.log_level)
    # Build the app once here so that a bad hooks.json or value set stops us before forking.
    from cds_service.app import create_app

    try:
        create_app(settings)
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    url = f"http://{settings.host}:{settings.port}/cds-services"
    click.echo(f"spine-cds {__version__} serving {url}", err=True)
    click.echo(
        "effective configuration: " + json.dumps(settings.public_summary(), sort_keys=True),
        err=True,
    )
    if settings.dev_mode:
        click.echo(
            "WARNING: DEVELOPMENT MODE: client JWTs are NOT verified and CORS allows any "
            "origin. Do not use with real patient data.",
            err=True,
        )
    run_gunicorn(settings)
