"""The harness's commands, as ``spine-cds demo`` and ``spine-cds fhir-test-server``.

``spine-cds`` (``cds_service.cli``) offers them when this package is importable, i.e.
in a source checkout; their code is imported only when one of them runs, so no other
command, ``serve`` least of all, loads the harness.
"""

from __future__ import annotations

from datetime import datetime

import click

from cds_service.cli.options import DATE
from cds_service.cli.options import order_date as order_date_or_today

__all__ = ["COMMANDS", "demo", "fhir_test_server"]


@click.command("demo")
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
@click.option("--date", "order_date", type=DATE, help="Date the orders are placed [today].")
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
    from spine_cds_dev.demo import run_demo

    code = run_demo(
        patients,
        order_date_or_today(order_date),
        keep_running=keep_running,
        detail=detail,
        fhir_port=fhir_port,
        service_port=service_port,
    )
    ctx.exit(code)


@click.command("fhir-test-server")
@click.option("--port", type=int, default=8090, show_default=True, help="Port on 127.0.0.1.")
@click.option("--load-examples", "load", is_flag=True, help="Load the example patients.")
@click.option("--date", "order_date", type=DATE, help="Date the orders are placed [today].")
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
@click.option(
    "--no-smart",
    "no_smart",
    is_flag=True,
    help="Turn off the SMART launch and authorization endpoints (an open server, as"
    " public sandboxes are).",
)
def fhir_test_server(
    port: int,
    load: bool,
    order_date: datetime | None,
    service_url: str,
    token: str | None,
    no_smart: bool,
) -> None:
    """Run the project's FHIR R4 test server until Ctrl-C (from a source checkout).

    Medplum's in-memory FHIR engine on 127.0.0.1 with CORS for browser clients such as
    the CDS Hooks sandbox. With --load-examples it loads the synthetic patients and
    prints a sandbox link for each.
    """
    from spine_cds_dev.fhir_server_command import run_fhir_test_server

    if not 0 < port < 65536:
        raise click.BadParameter("expected 1-65535", param_hint="--port")
    run_fhir_test_server(
        port,
        load,
        order_date.date() if order_date else None,
        service_url,
        token,
        smart=not no_smart,
    )


#: By name, as ``spine-cds`` lists them.
COMMANDS: dict[str, click.Command] = {"demo": demo, "fhir-test-server": fhir_test_server}
