"""``spine-cds serve``: the service under gunicorn."""

from __future__ import annotations

import json
import os
import shutil

import click

from cds_service import __version__
from cds_service.cli.options import settings_or_exit
from cds_service.settings import SettingsError
from cds_service.stores import StoreError


@click.command()
@click.option("--host", help="Address to listen on [default 127.0.0.1; SPINE_CDS_HOST].")
@click.option("--port", type=int, help="Port [default 8080; SPINE_CDS_PORT].")
@click.option("--workers", type=int, help="gunicorn worker processes [default 2].")
@click.option(
    "--threads", type=int, help="Calls each worker answers at once [default 8; 1: sync workers]."
)
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option(
    "--dev",
    is_flag=True,
    default=None,
    help="Development mode: no client authentication, permissive CORS. Never in production.",
)
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None,
    config: str | None,
    dev: bool | None,
) -> None:
    """Run the service under gunicorn."""
    import logging

    from cds_service.server import (
        DeploymentError,
        check_database_writable,
        listening_line,
        metrics_directory,
    )

    overrides = {
        "host": host,
        "port": port,
        "workers": workers,
        "threads": threads,
        "dev_mode": dev,
    }
    notices: list[str] = []
    settings = settings_or_exit(config, overrides, notices)
    # prometheus-client picks its multiprocess mode when first imported, so the shared
    # metrics directory of the workers must be set before anything imports it.
    try:
        check_database_writable(settings)
        metrics_dir = metrics_directory()
    except DeploymentError as exc:
        raise click.ClickException(str(exc)) from None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from cds_service.app import create_app
    from cds_service.logs import configure as configure_logging
    from cds_service.server import run_gunicorn

    configure_logging(settings.log_level, settings.log_format)
    for notice in notices:
        logging.getLogger("cds_service.settings").info("%s", notice)
    # Build the app once here so that a bad hooks.json, value set or unreachable database
    # stops us before forking; then close it, so no connection is shared with the workers.
    try:
        create_app(settings).extensions["spine_cds"].close()
    except (SettingsError, ValueError, StoreError) as exc:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        raise click.ClickException(settings.redact(f"configuration error: {exc}")) from None
    click.echo(f"spine-cds {__version__} {listening_line(settings)}", err=True)
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
    owner = os.getpid()
    try:
        run_gunicorn(settings)
    finally:
        # Workers are forked inside run_gunicorn and leave through this same frame when
        # they exit: only the master, which made the directory, may remove it (a worker
        # that did so broke the metrics, and the calls, of the workers still serving).
        if os.getpid() == owner:
            shutil.rmtree(metrics_dir, ignore_errors=True)
