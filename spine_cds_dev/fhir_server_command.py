"""``spine-cds fhir-test-server``: the project's FHIR test server on its own, on a fixed
port, optionally with the example patients loaded, until Ctrl-C (development harness:
it runs from a source checkout)."""

from __future__ import annotations

import socket
import sys
import time
from datetime import UTC, date, datetime

import click

from cds_service.examples import Example, load_examples, load_examples_as_of
from cds_service.tools.commands import spine_cds_command
from cds_service.tools.errors import FhirServerError
from cds_service.tools.fhir_http import FhirEndpoint
from cds_service.tools.load_examples import load_into
from spine_cds_dev.demo import sandbox_lines, try_command
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.processes import (
    checkout_root,
    fhir_server_for,
    interrupts_held,
    start_fhir_server,
    stop_signals_as_interrupt,
)


def _check_port_free(port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Node listens
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise FhirServerError(
                f"port {port} is in use on 127.0.0.1: stop what listens there (an earlier"
                " FHIR test server?) or choose another port with --port"
            ) from None


def access_line(token: str | None, smart: bool) -> str:
    """How a client gets in, as the banner says it: "open" only when it is open."""
    reads = "FHIR reads need no token" if token is None else "FHIR reads need the token you gave"
    if smart:
        return (
            f"  {reads}; SMART launch and authorization on (apps launched from a card get"
            " a token; --no-smart makes it an open server)"
        )
    return "  open: no authorization, SMART off" if token is None else f"  {reads}; SMART off"


def act_as_the_ehr(base: str, example: Example, service_url: str, token: str | None) -> list[str]:
    """The ``try`` lines, complete: the service the sandbox links name (without
    ``--service-url``, ``try`` runs a service of its own in process, and a newcomer
    never called the one started), and, for a server that needs a token, the variable
    ``try`` reads it from (``--token`` would show it in the process list; it is not
    printed here either). An integrator's review followed the line and got 401."""
    order_date = date.fromisoformat(example.draft_order["authoredOn"][:10])
    lines = [
        f"Or act as the EHR from another terminal, in this directory (calls the service at"
        f" {service_url}; leave out --service-url to run one in process):"
    ]
    if token is not None:
        lines.append("  export FHIR_ACCESS_TOKEN=...   (the token this server was started with)")
    lines.append("  " + try_command(base, example.patient_id, order_date, service_url))
    return lines


def run_fhir_test_server(
    port: int,
    load: bool,
    order_date: date | None,
    service_url: str,
    token: str | None = None,
    smart: bool = True,
) -> int:
    """Run the project's FHIR test server on 127.0.0.1:``port`` until Ctrl-C, optionally
    with the example patients loaded, and print how to use it (sandbox links for a
    service at ``service_url``, a ``try`` command). 0 on Ctrl-C; ToolError on a problem.

    Without ``order_date`` the examples are placed for the sandbox, whose orders carry no
    date: each on today in its own time zone, nothing dated after now
    (``load_examples_as_of``)."""
    checkout_root()
    _check_port_free(port)
    fhir_server: FhirTestServer | None = None
    with stop_signals_as_interrupt():
        try:
            click.echo(f"Starting the FHIR test server on 127.0.0.1:{port} (data in memory) ...")
            fhir_server = fhir_server_for(port, token, smart)
            start_fhir_server(fhir_server)
            base = fhir_server.base_url
            click.echo(f"  FHIR test server at {base} (pid {fhir_server.pid})")
            examples: list[Example] = []
            placed = order_date or datetime.now(UTC).date()
            if load:
                said = (
                    f"orders placed on {order_date}"
                    if order_date
                    else "orders placed now, on today's date in each patient's time zone"
                )
                click.echo(f"Loading the example patients ({said}) ...")
                to_load = (
                    load_examples(order_date)
                    if order_date
                    else load_examples_as_of(datetime.now(UTC))
                )
                with FhirEndpoint(base, token) as endpoint:
                    for loaded in load_into(endpoint, to_load):
                        examples.append(loaded.example)
                        click.echo(f"  {loaded.example.patient_id:<16}{loaded.example.title}")
            click.echo("")
            click.echo(click.style(f"FHIR R4 base URL: {base}", bold=True))
            click.echo(access_line(token, smart))
            click.echo(
                "  CORS: any origin, preflight included (browser clients such as the CDS"
                " Hooks sandbox can read it)"
            )
            if examples:
                click.echo(f"With the service running at {service_url} (bash scripts/serve.sh):")
                click.echo("\n".join(sandbox_lines(service_url, base, examples)))
                if order_date is not None:
                    click.echo(
                        f"  Note: the orders were placed on {order_date}, but the sandbox's"
                        " orders carry no date and are evaluated now: load without --date"
                        " for the sandbox to show the expected cards."
                    )
                first = examples[0]
                click.echo("\n".join(act_as_the_ehr(base, first, service_url, token)))
            else:
                click.echo("Load the example patients into it from another terminal:")
                click.echo(
                    f"  {spine_cds_command()} load-examples --fhir-server {base} --date {placed}"
                )
            click.echo("Press Ctrl-C to stop it.")
            sys.stdout.flush()
            while fhir_server.is_running():
                time.sleep(0.5)
            raise FhirServerError("the FHIR test server stopped unexpectedly")
        except KeyboardInterrupt:
            click.echo("")
        finally:
            if fhir_server is not None:
                with interrupts_held():
                    fhir_server.stop()
                    click.echo("Stopped the FHIR test server.")
    return 0
