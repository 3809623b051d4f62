"""``spine-cds observation-codes``: the codes a patient's Observations carry on the EHR's
FHIR server, and which of them the service reads (``cds_service.tools.observation_codes``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cds_service.cli.options import fhir_server_option, token_option


def _categories(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """The categories as given, each once, in order; an empty one is a mistake (it would
    search by patient alone while seeming to filter)."""
    if any(not value.strip() for value in values):
        raise click.BadParameter("a category may not be empty")
    return tuple(dict.fromkeys(value.strip() for value in values))


@click.command("observation-codes")
@fhir_server_option("Base URL of the EHR's FHIR server (R4).")
@token_option(
    "Bearer token for the FHIR server: sent only under its base URL, over https or to a "
    "loopback host, never along a redirect"
)
@click.option(
    "--patient",
    "patients",
    required=True,
    multiple=True,
    help="Patient id on the FHIR server (repeat for several patients).",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    callback=_categories,
    help=(
        "Search per Observation category and merge the results (repeat: e.g. laboratory, "
        "vital-signs, survey; a token, or SYSTEM|CODE) [none: one search by patient alone]. "
        "For servers that need a category with the patient."
    ),
)
@click.option(
    "--valueset-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A site's value-set files, as the service's valueset_dir [none: the shipped lists].",
)
@click.option(
    "--pages",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Pages of 200 Observations read per search (per patient, and category) at most.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the codes as JSON.")
def observation_codes_command(
    fhir_server: str,
    token: str | None,
    patients: tuple[str, ...],
    categories: tuple[str, ...],
    valueset_dir: Path | None,
    pages: int,
    as_json: bool,
) -> None:
    """List the codes of a patient's Observations and whether the service reads them.

    The service asks the FHIR server only for the CRP, ESR and pain codes it knows, so a
    result coded only with a local code never reaches it. A server that refuses a search
    by patient alone (400; Epic's may, to be confirmed with the vendor) is searched per
    category with --category laboratory --category vital-signs. Run this for a few patients with
    such results, and add the codes marked LOOK to a site value set if they are these
    tests. Shows codes and displays only, never values or dates.
    A patient with no Observation found (a wrong id, or a token whose scope does not
    cover them) is named in a warning, and the list is then no all clear.
    Exit codes: 0 ok, 2 usage or input error, 3 FHIR server problem (a failed search
    included: a 200 OperationOutcome, or a searchset holding only an error one),
    5 a patient had no Observation (the list is still printed).
    """
    from cds_service.tools.errors import EXIT_NONE_FOUND
    from cds_service.tools.fhir_http import FhirEndpoint
    from cds_service.tools.observation_codes import as_json as codes_json
    from cds_service.tools.observation_codes import as_text, observation_codes, warnings
    from cds_service.valuesets import load_value_sets

    try:
        value_sets = load_value_sets(valueset_dir)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--valueset-dir") from None
    with FhirEndpoint(fhir_server, token) as endpoint:
        seen = observation_codes(endpoint, patients, value_sets, pages, categories)
    if as_json:
        click.echo(json.dumps(codes_json(seen), indent=2, ensure_ascii=False))
        for warning in warnings(seen):  # the text has them; the JSON's reader may not look
            click.echo(f"Warning: {warning}", err=True)
    else:
        click.echo(as_text(seen))
    if seen.without_observations:
        click.get_current_context().exit(EXIT_NONE_FOUND)
