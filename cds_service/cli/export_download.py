"""``export-download``: download a FHIR Bulk Data export ($export) into a directory.

Only the download; ``replay`` reads the directory it leaves. The work is
``cds_service.bulk_export.download_export``; this module holds the options.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export-download")
@click.option("--fhir-server", required=True, help="FHIR base URL that supports $export.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the NDJSON files; created when missing, must not hold an export.",
)
@click.option(
    "--type",
    "types",
    multiple=True,
    help="Resource type to export (repeat, or comma-separated); default: those replay reads.",
)
@click.option("--since", help="Only resources changed since this FHIR instant (_since).")
@click.option("--group", "group_id", help="Export the patients of this Group (Group/[id]/$export).")
@click.option("--patients", is_flag=True, help="Patient-level export (Patient/$export).")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File holding the bearer access token for the FHIR server.",
)
@click.option(
    "--wait",
    "poll_limit_s",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Seconds the server may take to prepare the export.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds to wait for each answer or each piece of a file.",
)
@click.option("--allow-http", is_flag=True, help="Allow plain http to a host that is not loopback.")
@click.option("--keep-on-server", is_flag=True, help="Do not DELETE the job once downloaded.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def export_download(
    fhir_server: str,
    out_dir: Path,
    types: tuple[str, ...],
    since: str | None,
    group_id: str | None,
    patients: bool,
    token_file: Path | None,
    poll_limit_s: float,
    timeout_s: float,
    allow_http: bool,
    keep_on_server: bool,
    quiet: bool,
) -> None:
    """Run $export on a FHIR server and download its NDJSON files into --out.

    Kick-off, polling as Retry-After says and download, per the Bulk Data Access IG. The
    directory is complete when export-manifest.json is in it; on a failure or time-out
    nothing of the export is left there. The token goes only to the FHIR server's own
    origin, and to the files only when the server says they need it.
    """
    from cds_service.bulk_export import DEFAULT_TYPES, ExportProgress, download_export
    from cds_service.tools.errors import InputError

    token = None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--token-file {token_file}: cannot read it ({exc})") from None
        if not token:
            raise InputError(f"--token-file {token_file}: the file is empty")
    wanted = [t.strip() for value in types for t in value.split(",") if t.strip()]

    def show(event: ExportProgress) -> None:
        if quiet:
            return
        if event.phase == "downloading":
            click.echo(
                f"downloading {event.files_done + 1}/{event.files_total}: {event.message}", err=True
            )
        else:
            click.echo(f"{event.phase}: {event.message}", err=True)

    result = download_export(
        fhir_server,
        out_dir,
        types=wanted or DEFAULT_TYPES,
        since=since,
        group_id=group_id,
        patient_level=patients,
        timeout_s=timeout_s,
        poll_limit_s=poll_limit_s,
        bearer_token=token,
        allow_http=allow_http,
        delete_when_done=not keep_on_server,
        progress=show,
    )
    for file in result.files:
        click.echo(f"{file.path.name}\t{file.type}\t{file.lines} resources")
    click.echo(
        f"Export of {result.transaction_time}: {len(result.files)} file(s) in {result.directory}; "
        f"manifest {result.manifest_path.name}"
    )
    if result.error_files:
        click.echo(
            f"The server reported {result.error_count} error(s) (files in "
            f"{result.directory / 'errors'}):",
            err=True,
        )
        for message in result.error_messages:
            click.echo(f"  {message}", err=True)
