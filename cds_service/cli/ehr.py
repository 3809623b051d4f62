"""The commands that play the EHR's part: ``try``, ``load-examples``,
``review-examples``, and ``client-jwks`` for the client JWT a secure service asks of
``try``. Their code is in ``cds_service.tools``."""

from __future__ import annotations

import json
import time
from datetime import datetime

import click

from cds_service.cli.options import DATE, fhir_server_option, token_option
from cds_service.cli.options import order_date as order_date_or_today
from cds_service.hook_declarations import DEFAULT_HOOK, HOOKS
from cds_service.tools.errors import EXIT_MISMATCH, ServiceError


@click.command("try")
@fhir_server_option("The EHR's FHIR R4 base URL.")
@token_option("Bearer token: used for the FHIR queries and sent as fhirAuthorization")
@click.option("--patient", "patient_id", required=True, help="Patient id on the FHIR server.")
@click.option(
    "--order",
    required=True,
    help="SYSTEM|CODE (e.g. 'http://www.ama-assn.org/go/cpt|72158') or a ServiceRequest JSON file.",
)
@click.option(
    "--hook",
    type=click.Choice(list(HOOKS)),
    default=DEFAULT_HOOK,
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
    "--client-jku",
    help="jku header of the client JWT: the JWKS URL, for an entry with jku_list_url or "
    "jku_allowlist (Oracle Health's shape).",
)
@click.option("--client-tenant", help="tenant claim of the client JWT, for an entry with tenant.")
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
    client_jku: str | None,
    client_tenant: str | None,
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
    if (client_jku or client_tenant) and not client_key:
        raise click.UsageError("--client-jku and --client-tenant need --client-key")
    signer = (
        ClientSigner(client_key, client_iss, client_kid, client_jku, client_tenant)
        if client_key and client_iss
        else None
    )
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


@click.command("client-jwks")
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


@click.command("load-examples")
@fhir_server_option("FHIR R4 base URL, e.g. https://host/fhir.")
@token_option("Bearer access token for the FHIR server")
@click.option("--date", "order_date", type=DATE, help="Date the orders are placed [today].")
def load_examples_command(fhir_server: str, token: str | None, order_date: datetime | None) -> None:
    """Load the synthetic patients into a FHIR server as transaction Bundles.

    Prints each patient id and what it demonstrates. Dates are moved so that each
    example's order falls on --date: use the same date with `spine-cds try --date`.
    Loading twice leaves one copy (every entry is a PUT with a fixed id).
    """
    from cds_service.examples import load_examples
    from cds_service.tools.fhir_http import FhirEndpoint
    from cds_service.tools.load_examples import describe, load_into

    day = order_date_or_today(order_date)
    count = 0
    with FhirEndpoint(fhir_server, token) as endpoint:
        click.echo(f"Loading the example patients into {endpoint.base} (orders on {day}):")
        for loaded in load_into(endpoint, load_examples(day)):
            click.echo(describe(loaded))
            count += 1
        click.echo(f"{count} patients loaded. Try one:")
        from cds_service.tools.commands import spine_cds_command

        token_part = " (with FHIR_ACCESS_TOKEN set)" if token else ""
        click.echo(
            f"  {spine_cds_command()} try --fhir-server {endpoint.base} --patient spine-cds-e1 "
            f"--order 'http://www.ama-assn.org/go/cpt|72158' --date {day}{token_part}"
        )


@click.command("review-examples")
@click.option("--date", "order_date", type=DATE, help="Date the orders are placed [today].")
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

    day = order_date_or_today(order_date)
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
