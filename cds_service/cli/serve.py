"""``spine-cds serve``: the service under gunicorn."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import NoReturn

import click

from cds_service import __version__
from cds_service.cli.options import settings_or_exit
from cds_service.settings import Settings, SettingsError
from cds_service.stores import StoreError

_log = logging.getLogger("cds_service.serve")
# The source checkout this runs from, if it does (its scripts and docs are there).
_ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = _ROOT if (_ROOT / "scripts" / "fhir-test-server.sh").is_file() else None


def _say(settings: Settings, level: int, text: str, **fields: object) -> None:
    """A startup line for the person starting the service: printed as it is in the plain
    log format (a warning headed WARNING:), a log record in the json one (``fields`` as
    fields of their own). Either way it is written whatever ``log_level`` is, as the
    plain line always was."""
    if settings.log_format == "json":
        _log.handle(_log.makeRecord(_log.name, level, __file__, 0, text, (), None, extra=fields))
        return
    for value in fields.values():
        text += ": " + json.dumps(value, sort_keys=True)
    click.echo(
        f"{logging.getLevelName(level)}: {text}" if level >= logging.WARNING else text, err=True
    )


# Where the FHIR test server's sandbox links point unless told (spine_cds_dev.commands).
_FHIR_TEST_SERVER_SERVICE = "http://127.0.0.1:8080"


def next_steps(settings: Settings, checkout: Path | None = CHECKOUT) -> str:
    """One line for a first start in development mode: what to do next. The scripts and
    guides are named only where they are (a source checkout), else ``try --help``.

    The commands are complete for this service: ``try`` calls it (``--service-url``;
    without it ``try`` runs a service in process, and a newcomer following the line
    never called the one just started), and the FHIR test server's sandbox links point
    at it when it is not on the port they assume (an integrator's review)."""
    from cds_service.server import local_url

    url = local_url(settings)
    discovery = f"curl {url}/cds-services (discovery)"
    if checkout is None:
        return f"next: {discovery}; a hook call against a FHIR server: spine-cds try --help"
    links = "" if url == _FHIR_TEST_SERVER_SERVICE else f" --service-url {url}"
    return (
        f"next: {discovery}; a hook call, in other terminals: bash scripts/fhir-test-server.sh"
        f" --port 8090 --load-examples{links}, then .venv/bin/spine-cds try --service-url {url}"
        " --fhir-server http://127.0.0.1:8090/fhir --patient spine-cds-e1"
        " --order 'http://www.ama-assn.org/go/cpt|72158'; guides: docs/README.md"
    )


def _stop(settings: Settings, text: str) -> NoReturn:
    """Stop at startup: click's ``Error: ...`` in the plain format, a JSON error line and
    the same exit status (1) in the json one."""
    if settings.log_format == "json":
        _log.error("%s", text)
        raise SystemExit(1)
    raise click.ClickException(text)


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
    # Logging first, so that with log_format=json every line after this one is JSON:
    # the startup lines and a stop included (docs/deployment.md, Logs).
    from cds_service.logs import configure as configure_logging

    configure_logging(settings.log_level, settings.log_format)
    for notice in notices:
        logging.getLogger("cds_service.settings").info("%s", notice)
    # prometheus-client picks its multiprocess mode when first imported, so the shared
    # metrics directory of the workers must be set before anything imports it.
    try:
        check_database_writable(settings)
        metrics_dir = metrics_directory()
    except DeploymentError as exc:
        _stop(settings, str(exc))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from cds_service.app import create_app
    from cds_service.server import run_gunicorn

    # Build the app once here so that a bad hooks.json, value set or unreachable database
    # stops us before forking; then close it, so no connection is shared with the workers.
    try:
        create_app(settings).extensions["spine_cds"].close()
    except (SettingsError, ValueError, StoreError) as exc:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        _stop(settings, settings.redact(f"configuration error: {exc}"))
    _say(settings, logging.INFO, f"spine-cds {__version__} {listening_line(settings)}")
    _say(
        settings,
        logging.INFO,
        "effective configuration",
        configuration=settings.public_summary(),
    )
    if settings.dev_mode:
        _say(settings, logging.WARNING, dev_mode_warning(settings.cors_origins))
        _say(settings, logging.INFO, next_steps(settings))
    if settings.shadow_mode:
        _say(settings, logging.WARNING, SHADOW_MODE_WARNING)
    owner = os.getpid()
    try:
        run_gunicorn(settings)
    finally:
        # Workers are forked inside run_gunicorn and leave through this same frame when
        # they exit: only the master, which made the directory, may remove it (a worker
        # that did so broke the metrics, and the calls, of the workers still serving).
        if os.getpid() == owner:
            shutil.rmtree(metrics_dir, ignore_errors=True)


# What ``serve`` prints in shadow mode. An outside review found the mode said only inside
# the one-line effective configuration, while the request lines named decisions no
# clinician saw: whoever starts the service, or reads its log after "did the doctor get
# the warning?", learns it here.
SHADOW_MODE_WARNING = (
    "SHADOW MODE: every call is evaluated and audited; no card is returned "
    "(shadow_mode, SPINE_CDS_SHADOW_MODE). Request lines mark these decisions shadow=1."
)


def dev_mode_warning(cors_origins: tuple[str, ...]) -> str:
    """What ``serve`` prints in development mode. With CORS open to any origin, any web
    page open in a browser on the developer's machine can call the service, with no
    token, and have it fetch from any fhirServer it names, the developer's network
    included: its answers tell which addresses and ports answer (an attack suite's
    finding). The CDS Hooks sandbox needs only its own origin."""
    if cors_origins:
        cors = "CORS allows " + ", ".join(cors_origins)
    else:
        cors = (
            "CORS allows any origin: any web page open in a browser here can call this "
            "service and have it fetch from any fhirServer, on your network too (set "
            "cors_origins, e.g. https://sandbox.cds-hooks.org, to allow only the pages "
            "you use)"
        )
    return (
        f"DEVELOPMENT MODE: client JWTs are NOT verified and {cors}. "
        "Do not use with real patient data."
    )
