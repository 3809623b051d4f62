"""The ``spine-cds`` command: serve the service, and tools for integrators and reviewers.

``serve`` runs the service; ``try``, ``load-examples`` and ``review-examples`` play the
EHR's part; ``demo`` runs everything on one machine for a newcomer; ``report`` and
``audit-purge`` read and tidy the audit (their code is in ``cds_service.tools``). Tool
exit codes: 0 ok, 1 a review or demo mismatch, 2 usage or input error, 3 FHIR server
problem, 4 service error (130: the demo was interrupted).

Why one module of about 500 lines: it is the command line's table of contents. Each
command is its click options and a few lines that hand over to ``cds_service.tools``;
splitting the options of one command line over several files would make its help
harder to keep consistent, not easier to read.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date, datetime
from typing import Any

import click

from cds_service import __version__
from cds_service.settings import Settings, SettingsError, load_settings
from cds_service.stores import StoreError
from cds_service.tools.errors import EXIT_MISMATCH, ServiceError


def _settings_or_exit(
    config: str | None, overrides: dict[str, Any], notices: list[str] | None = None
) -> Settings:
    try:
        return load_settings(config_file=config, overrides=overrides, notices=notices)
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
    import logging

    from cds_service.server import (
        DeploymentError,
        check_database_writable,
        listening_line,
        metrics_directory,
    )

    overrides = {"host": host, "port": port, "workers": workers, "dev_mode": dev}
    notices: list[str] = []
    settings = _settings_or_exit(config, overrides, notices)
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
        raise click.ClickException(f"configuration error: {exc}") from None
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


# --- tools for integration engineers and clinical reviewers ------------------------------


@main.command("client-jwks")
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--kid", help="Key id [the key's RFC 7638 thumbprint].")
def client_jwks(key_file: str, kid: str | None) -> None:
    """Print the public JWKS of a client's PEM private key (for jwks_file or a jwks_url).

    Mint a key with: openssl ecparam -name secp384r1 -genkey -noout -out client-key.pem
    """
    from pathlib import Path

    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from cds_service.tools.try_hook import public_jwk

    try:
        key = load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise click.ClickException(f"{key_file}: not a PEM private key ({exc})") from None
    click.echo(json.dumps({"keys": [public_jwk(key, kid)]}, indent=2))


_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _order_date(value: datetime | None) -> date:
    """``--date`` or today (the shell may read the clock; the examples never do)."""
    return value.date() if value is not None else date.today()


@main.command("review-examples")
@click.option("--date", "order_date", type=_DATE, help="Date the orders are placed [today].")
@click.option("--json", "as_json", is_flag=True, help="Print the review as JSON.")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True),
    help="TOML settings file (e.g. a site's [rules] thresholds).",
)
@click.pass_context
def review_examples(
    ctx: click.Context, order_date: datetime | None, as_json: bool, config: str | None
) -> None:
    """Run the synthetic patients through the service and show each decision.

    Every example goes the whole way (order-select request with prefetch, validation,
    engine, card), in process. Per patient: expected and actual decision, the rules that
    fired, CRP baseline -> latest with % change, days since T0, the pain trend and the
    card summary. Exits 1 when any decision differs from the expected one.
    """
    from cds_service.tools.review import format_review, review_examples

    day = _order_date(order_date)
    rows = review_examples(day, config)
    if as_json:
        click.echo(
            json.dumps(
                {"orderDate": day.isoformat(), "examples": [r.to_dict() for r in rows]},
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        click.echo(format_review(rows, day))
    if not all(r.match for r in rows):
        ctx.exit(EXIT_MISMATCH)


@main.command("load-examples")
@click.option("--fhir-server", required=True, help="FHIR R4 base URL, e.g. https://host/fhir.")
@click.option(
    "--token",
    envvar="FHIR_ACCESS_TOKEN",
    help="Bearer access token for the FHIR server [env FHIR_ACCESS_TOKEN, which keeps it "
    "out of the process list].",
)
@click.option("--date", "order_date", type=_DATE, help="Date the orders are placed [today].")
def load_examples_command(fhir_server: str, token: str | None, order_date: datetime | None) -> None:
    """Load the synthetic patients into a FHIR server as transaction Bundles.

    Prints each patient id and what it demonstrates. Dates are moved so that each
    example's order falls on --date: use the same date with `spine-cds try --date`.
    Loading twice leaves one copy (every entry is a PUT with a fixed id).
    """
    from cds_service.tools.fhir_http import FhirEndpoint
    from cds_service.tools.load_examples import describe, load_into

    day = _order_date(order_date)
    count = 0
    with FhirEndpoint(fhir_server, token) as endpoint:
        click.echo(f"Loading the example patients into {endpoint.base} (orders on {day}):")
        for loaded in load_into(endpoint, day):
            click.echo(describe(loaded))
            count += 1
        click.echo(f"{count} patients loaded. Try one:")
        from cds_service.tools.commands import spine_cds_command

        token_part = " (with FHIR_ACCESS_TOKEN set)" if token else ""
        click.echo(
            f"  {spine_cds_command()} try --fhir-server {endpoint.base} --patient spine-cds-e1 "
            f"--order 'http://www.ama-assn.org/go/cpt|72158' --date {day}{token_part}"
        )


@main.command("try")
@click.option("--fhir-server", required=True, help="The EHR's FHIR R4 base URL.")
@click.option(
    "--token",
    envvar="FHIR_ACCESS_TOKEN",
    help="Bearer token: used for the FHIR queries and sent as fhirAuthorization "
    "[env FHIR_ACCESS_TOKEN, which keeps it out of the process list].",
)
@click.option("--patient", "patient_id", required=True, help="Patient id on the FHIR server.")
@click.option(
    "--order",
    required=True,
    help="SYSTEM|CODE (e.g. 'http://www.ama-assn.org/go/cpt|72158') or a ServiceRequest JSON file.",
)
@click.option(
    "--hook",
    type=click.Choice(["order-select", "order-sign"]),
    default="order-select",
    show_default=True,
)
@click.option("--service-url", help="Base URL of a running service [default: in process].")
@click.option("--no-prefetch", is_flag=True, help="Send no prefetch: the service fetches it.")
@click.option("--json", "as_json", is_flag=True, help="Print the request and response as JSON.")
@click.option(
    "--date",
    "when",
    help="authoredOn of the draft order: YYYY-MM-DD or an ISO date-time [now].",
)
@click.option("--detail", is_flag=True, help="Also print each card's full detail.")
@click.option(
    "--client-key",
    type=click.Path(dir_okay=False),
    help="PEM private key to sign the client JWT a secure-mode service requires "
    "(with --client-iss and --service-url; see docs/deployment.md).",
)
@click.option("--client-iss", help="Issuer (iss) of the client JWT, as in trusted_clients_file.")
@click.option("--client-kid", help="Key id of the client JWT [the key's RFC 7638 thumbprint].")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True),
    help="TOML settings file for the in-process service.",
)
def try_command(
    fhir_server: str,
    token: str | None,
    patient_id: str,
    order: str,
    hook: str,
    service_url: str | None,
    no_prefetch: bool,
    as_json: bool,
    when: str | None,
    detail: bool,
    client_key: str | None,
    client_iss: str | None,
    client_kid: str | None,
    config: str | None,
) -> None:
    """Act as the EHR: send one order for one patient to the service and show the cards.

    Checks the patient exists, runs the service's prefetch templates against the FHIR
    server (unless --no-prefetch), sends the CDS Hooks request and prints the cards.
    Exit codes: 0 ok, 2 usage or input error, 3 FHIR server problem, 4 service error.
    """
    from cds_service.tools.render import render_cards
    from cds_service.tools.services import error_text
    from cds_service.tools.try_hook import ClientSigner, TryOptions, authored_on, run_try

    if config and service_url:
        raise click.UsageError("--config applies to the in-process service only")
    if (client_key is None) != (client_iss is None) or (client_key and not service_url):
        raise click.UsageError("--client-key needs --client-iss and --service-url")
    signer = ClientSigner(client_key, client_iss, client_kid) if client_key and client_iss else None
    options = TryOptions(
        fhir_server=fhir_server,
        patient_id=patient_id,
        order=order,
        hook=hook,
        token=token,
        service_url=service_url,
        no_prefetch=no_prefetch,
        authored_on=authored_on(when) if when is not None else None,
        now=authored_on(datetime.now().astimezone()),
        config_file=config,
        signer=signer,
    )
    started = time.monotonic()
    result = run_try(options)
    elapsed_ms = (time.monotonic() - started) * 1000
    for key, why in result.left_out.items():
        click.echo(f"warning: prefetch {key!r} not sent: {why}", err=True)
    answer = result.answer
    if as_json:
        click.echo(json.dumps(result.exchange(), indent=2, ensure_ascii=False))
    else:
        if no_prefetch:
            sent = "no prefetch sent: the service fetches from fhirServer"
        else:
            sent = "prefetch: " + (
                ", ".join(f"{k} {n}" for k, n in result.prefetch_counts.items()) or "none"
            )
        click.echo(f"Patient: {patient_id} on {fhir_server.rstrip('/')}; {hook}; {sent}")
        if service_url:
            timing = "round trip from this machine, network included"
        else:
            timing = (
                "in-process timing: the hook call alone, after a warm-up call, no network"
                " between EHR and service"
            )
        click.echo(
            f"Service: {result.service_label} ({result.service.id}) answered "
            f"{answer.status} in {result.elapsed_ms:.0f} ms ({timing}; the whole command "
            f"took {elapsed_ms:.0f} ms)"
        )
        if result.shadow_mode:
            click.echo(click.style("The service is in SHADOW MODE: it shows no cards.", bold=True))
        click.echo("")
        if answer.status == 200 and isinstance(answer.body, dict):
            click.echo(
                render_cards(answer.body, detail=detail, shadow_mode=bool(result.shadow_mode))
            )
    if answer.status != 200:
        raise ServiceError(f"the service answered {answer.status}: {error_text(answer.body)}")


@main.command()
@click.option(
    "--patient",
    "patients",
    multiple=True,
    help="Only this example: key (e01-improving) or patient id (spine-cds-e1); repeatable.",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave both servers up until Ctrl-C and print a CDS Hooks sandbox link per patient.",
)
@click.option("--date", "order_date", type=_DATE, help="Date the orders are placed [today].")
@click.option("--detail", is_flag=True, help="Also print each card's full detail.")
@click.option("--fhir-port", type=int, default=0, help="FHIR test server port [a free one].")
@click.option("--service-port", type=int, default=0, help="Service port [a free one].")
@click.pass_context
def demo(
    ctx: click.Context,
    patients: tuple[str, ...],
    keep_running: bool,
    order_date: datetime | None,
    detail: bool,
    fhir_port: int,
    service_port: int,
) -> None:
    """Run everything on this machine and show each example patient's card.

    Starts the project's FHIR test server (from a source checkout; needs Node and npm)
    and the service (gunicorn, development mode, a throw-away database) on 127.0.0.1,
    loads the synthetic patients, sends order-select with prefetch for each, prints the
    patient's story and the card, and stops everything it started. Exits 1 when a
    decision differs from the expected one, 130 when interrupted.
    """
    from cds_service.tools.demo import run_demo

    code = run_demo(
        patients,
        _order_date(order_date),
        keep_running=keep_running,
        detail=detail,
        fhir_port=fhir_port,
        service_port=service_port,
    )
    ctx.exit(code)


@main.command("fhir-test-server")
@click.option("--port", type=int, default=8090, show_default=True, help="Port on 127.0.0.1.")
@click.option("--load-examples", "load", is_flag=True, help="Load the example patients.")
@click.option("--date", "order_date", type=_DATE, help="Date the orders are placed [today].")
@click.option(
    "--service-url",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The service the printed CDS Hooks sandbox links point at.",
)
@click.option(
    "--token",
    envvar="FHIR_TEST_SERVER_TOKEN",
    help="Require this bearer token [env FHIR_TEST_SERVER_TOKEN; default: open].",
)
def fhir_test_server(
    port: int, load: bool, order_date: datetime | None, service_url: str, token: str | None
) -> None:
    """Run the project's FHIR R4 test server until Ctrl-C (from a source checkout).

    Medplum's in-memory FHIR engine on 127.0.0.1 with CORS for browser clients such as
    the CDS Hooks sandbox. With --load-examples it loads the synthetic patients and
    prints a sandbox link for each.
    """
    from cds_service.tools.fhir_test_server import run_fhir_test_server

    if not 0 < port < 65536:
        raise click.BadParameter("expected 1-65535", param_hint="--port")
    run_fhir_test_server(port, load, _order_date(order_date), service_url, token)


@main.command()
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file, as for serve.")
@click.option("--since", type=_DATE, help="First day to include (UTC), YYYY-MM-DD.")
@click.option("--until", type=_DATE, help="Last day to include (UTC), YYYY-MM-DD.")
@click.option(
    "--png", type=click.Path(dir_okay=False), help="Also write the report as a PNG chart."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(
    config: str | None,
    since: datetime | None,
    until: datetime | None,
    png: str | None,
    as_json: bool,
) -> None:
    """Decisions, clinicians' feedback and latency, from the audit and feedback stores.

    Reads the database the service uses (settings as for serve: --config, SPINE_CDS_*).
    Prints invocations by service and decision (refusals by reason, shadow calls),
    accepted / overridden / no-feedback rates per decision with the override reasons,
    latency percentiles and how often the service fetched from the FHIR server.
    --png writes the same as a chart (needs matplotlib).
    """
    from cds_service.tools.errors import InputError
    from cds_service.tools.report import (
        EMPTY_MESSAGE,
        build_report,
        describe_source,
        open_stores,
        period_bounds,
    )
    from cds_service.tools.report_chart import png_unavailable, write_png
    from cds_service.tools.report_text import format_report

    if png and (problem := png_unavailable()):
        raise InputError(problem)  # before printing anything
    first = since.date() if since else None
    last = until.date() if until else None
    if first and last and last < first:
        raise InputError("--until is before --since")
    settings = _settings_or_exit(config, {})
    start, end = period_bounds(first, last)
    try:
        with open_stores(settings) as stores:
            result = build_report(
                stores.audit.records(start, end),
                stores.feedback.all(),
                first,
                last,
                describe_source(settings),
            )
    except StoreError as exc:
        raise InputError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(format_report(result))
        if not settings.audit_enabled:
            click.echo("Note: audit_enabled is false: new invocations are not being recorded.")
    if png:
        if result.total == 0:
            click.echo(f"{EMPTY_MESSAGE}: no chart written.", err=True)
            return
        try:
            write_png(result, png)
        except ImportError:
            raise InputError(png_unavailable() or "--png: matplotlib failed to load") from None
        except OSError as exc:
            raise InputError(f"--png {png}: {exc}") from None
        click.echo(f"Chart written to {png}", err=as_json)


@main.command("audit-purge")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file, as for serve.")
def audit_purge(config: str | None) -> None:
    """Delete audit records older than audit_retention_days now; print how many.

    The service also purges at startup and hourly; this is for scheduled jobs and for
    checking the retention does what it says.
    """
    from cds_service.tools.errors import InputError
    from cds_service.tools.report import open_stores

    settings = _settings_or_exit(config, {})
    try:
        with open_stores(settings) as stores:
            deleted = stores.audit.purge_expired()
            kept = len(stores.audit.records())
    except StoreError as exc:
        raise InputError(str(exc)) from None
    click.echo(
        f"Deleted {deleted} audit record(s) older than {settings.audit_retention_days} days; "
        f"{kept} kept."
    )
