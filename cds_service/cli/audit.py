"""The audit's commands: ``report`` (decisions, feedback, latency) and ``audit-purge``."""

from __future__ import annotations

import json
from datetime import datetime

import click

from cds_service.cli.options import DATE, settings_or_exit
from cds_service.stores import StoreError


@click.command()
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file, as for serve.")
@click.option("--since", type=DATE, help="First day to include (UTC), YYYY-MM-DD.")
@click.option("--until", type=DATE, help="Last day to include (UTC), YYYY-MM-DD.")
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
    Prints invocations by service and decision (refusals by reason, shadow calls), the
    calls refused for authentication (401) by reason,
    accepted / overridden / no-feedback rates per decision with the override reasons,
    latency percentiles and how often the service fetched from the FHIR server, then
    the order, Condition and Observation codes it was sent and did not recognise, and
    the orders sent with only a text, with counts (for a site's valueset_dir). --png
    writes the same as a chart (needs matplotlib).
    """
    from cds_service.tools.errors import InputError
    from cds_service.tools.report import EMPTY_MESSAGE, build_report
    from cds_service.tools.report_chart import png_unavailable, write_png
    from cds_service.tools.report_codes import format_unrecognised, unrecognised_codes
    from cds_service.tools.report_stores import describe_source, open_stores, period_bounds
    from cds_service.tools.report_text import format_report

    if png and (problem := png_unavailable()):
        raise InputError(problem)  # before printing anything
    first = since.date() if since else None
    last = until.date() if until else None
    if first and last and last < first:
        raise InputError("--until is before --since")
    settings = settings_or_exit(config, {})
    start, end = period_bounds(first, last)
    try:
        with open_stores(settings) as stores:
            records = stores.audit.records(start, end)
            result = build_report(
                records,
                stores.feedback.all(),
                first,
                last,
                describe_source(settings),
                stores.audit.refusals(start, end),
            )
    except StoreError as exc:
        raise InputError(settings.redact(str(exc))) from None
    codes = unrecognised_codes(records)
    if as_json:
        whole = {**result.to_dict(), "unrecognisedCodes": codes}
        click.echo(json.dumps(whole, indent=2, ensure_ascii=False))
    else:
        click.echo(format_report(result))
        click.echo()
        click.echo(format_unrecognised(codes))
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


@click.command("audit-purge")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file, as for serve.")
def audit_purge(config: str | None) -> None:
    """Delete audit records and feedback older than audit_retention_days now; print how many.

    The service also purges at startup and hourly; this is for scheduled jobs and for
    checking the retention does what it says.
    """
    from cds_service.tools.errors import InputError
    from cds_service.tools.report_stores import open_stores

    settings = settings_or_exit(config, {})
    try:
        with open_stores(settings) as stores:
            feedback_before = len(stores.feedback.all())
            deleted = stores.audit.purge_expired()  # the feedback with it
            kept = len(stores.audit.records())
            feedback_kept = len(stores.feedback.all())
    except StoreError as exc:
        raise InputError(settings.redact(str(exc))) from None
    click.echo(
        f"Deleted {deleted} audit record(s) older than {settings.audit_retention_days} days; "
        f"{kept} kept. Deleted {feedback_before - feedback_kept} feedback entry(ies);"
        f" {feedback_kept} kept."
    )
