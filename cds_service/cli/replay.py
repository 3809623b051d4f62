"""``spine-cds replay``: the rules replayed over a hospital's history, before go-live."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from cds_service.cli.options import fhir_server_option, settings_or_exit, token_option

if TYPE_CHECKING:
    from pathlib import Path

    from cds_service.settings import Settings
    from cds_service.stores import PatientKeyer


@click.command()
@click.argument("export", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for replayed-orders.csv (and .parquet), summary.json and summary.txt.",
)
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file, as for serve.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="the machine's cores",
    help="Local worker processes.",
)
@click.option("--partitions", type=click.IntRange(1, 512), help="Patient partitions [by size].")
@click.option("--dask-scheduler", help="Run on this Dask scheduler (tcp://host:8786).")
@click.option("--dask-local", type=click.IntRange(min=1), help="Run on a local Dask cluster of N.")
@click.option("--parquet", is_flag=True, help="Also write replayed-orders.parquet (pyarrow).")
@click.option("--png", type=click.Path(dir_okay=False), help="Also write the summary as a chart.")
@click.option("--html", type=click.Path(dir_okay=False), help="Also write the summary as a page.")
@click.option(
    "--patient-id",
    "patient_mode",
    type=click.Choice(["hash", "plain", "omit"]),
    help="How rows name the patient [audit_patient_id: a keyed hash, as in the audit].",
)
@click.option("--work-dir", type=click.Path(file_okay=False), help="Partition files [a temp dir].")
@fhir_server_option(
    "Run a Bulk Data $export on this FHIR server first, and replay what it gives.",
    required=False,
)
@click.option("--group", help="Export this Group (Group/ID/$export) [all patients].")
@token_option("Bearer token for the export")
@click.option(
    "--export-timeout",
    type=click.FloatRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds to wait for the export to finish.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def replay(
    export: tuple[str, ...],
    out_dir: str,
    config: str | None,
    workers: int,
    partitions: int | None,
    dask_scheduler: str | None,
    dask_local: int | None,
    parquet: bool,
    png: str | None,
    html: str | None,
    patient_mode: str | None,
    work_dir: str | None,
    fhir_server: str | None,
    group: str | None,
    token: str | None,
    export_timeout: float,
    as_json: bool,
    no_progress: bool,
) -> None:
    """Replay every past spine MRI/CT order of a patient with an NVO episode.

    EXPORT is a FHIR Bulk Data export: directories of .ndjson files, or the files
    (Patient, the orders as ServiceRequest, and the type each data source of the service
    reads: Condition, Observation, MedicationRequest, Procedure, ImagingStudy, ...).
    Or --fhir-server: the export is run there first ($export, polled, downloaded into
    OUT/export). Each order gets the decision the service would
    have given when it was placed, from the data on record then, through the service's
    own pipeline and settings (--config). Writes one row per order and a summary; bad
    lines are reported with file and line and skipped.
    """
    import sys
    from pathlib import Path

    from cds_service.impact.chart import write_html, write_png
    from cds_service.impact.run import ReplayError, ReplayOptions, run_replay
    from cds_service.impact.summary_text import format_summary
    from cds_service.tools.errors import InputError
    from cds_service.tools.report_chart import png_unavailable

    if fhir_server and export:
        raise InputError("give an export's files or --fhir-server, not both")
    if not export and not fhir_server:
        raise InputError("name the export (directories or .ndjson files) or --fhir-server")
    if dask_scheduler and dask_local:
        raise InputError("--dask-scheduler and --dask-local: give one or the other")
    if png and (problem := png_unavailable()):
        raise InputError(problem)
    if parquet:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError(
                "--parquet needs pyarrow (the `replay` extra): pip install 'spine-cds[replay]'"
            ) from None
    settings = settings_or_exit(config, {})
    keyer = _patient_keyer(settings, patient_mode or settings.audit_patient_id)
    shown = 0

    def on_problem(problem: object) -> None:
        nonlocal shown
        shown += 1
        if shown <= 100:
            click.echo(f"skipped: {problem}", err=True)
        elif shown == 101:
            click.echo("skipped: ... (more: see the summary's count)", err=True)

    if fhir_server:
        export = (
            str(_bulk_export(fhir_server, Path(out_dir) / "export", token, group, export_timeout)),
        )
    options = ReplayOptions(
        inputs=[Path(p) for p in export],
        out_dir=Path(out_dir),
        settings=settings,
        patient_key=keyer,
        workers=workers,
        partitions=partitions,
        dask_scheduler=dask_scheduler,
        dask_local=dask_local,
        progress=not no_progress and sys.stderr.isatty(),
        parquet=parquet,
        work_dir=Path(work_dir) if work_dir else None,
        on_problem=on_problem,
    )
    try:
        result = run_replay(options)
    except ReplayError as exc:
        raise InputError(str(exc)) from None
    summary = result.summary
    source = ", ".join(export)
    text = format_summary(summary, source)
    document = summary.to_dict()
    (options.out_dir / "summary.json").write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (options.out_dir / "summary.txt").write_text(text + "\n", encoding="utf-8")
    if png:
        write_png(summary, png)
    if html:
        write_html(summary, html, source)
    click.echo(json.dumps(document, indent=2, ensure_ascii=False) if as_json else text)
    written = [str(p) for p in result.outputs] + [p for p in (png, html) if p]
    click.echo(
        f"Replayed on {result.engine}, {result.partitions} partitions; written: "
        + ", ".join(written),
        err=True,
    )


def _bulk_export(
    server: str, directory: Path, token: str | None, group: str | None, timeout: float
) -> Path:
    """Run the $export into ``directory`` with the one downloader (cds_service.bulk_export:
    the group's, else the patient-level export); its errors say what failed and leave
    nothing behind (exit 3; a wrong argument exit 2)."""
    from cds_service.bulk_export import ExportProgress, download_export

    click.echo(f"Bulk export from {server.rstrip('/')} into {directory} ...", err=True)

    def show(progress: ExportProgress) -> None:
        if progress.phase != "downloading":
            click.echo(f"  export: {progress.phase} {progress.message}".rstrip(), err=True)

    done = download_export(
        server,
        directory,
        group_id=group,
        patient_level=group is None,
        bearer_token=token,
        poll_limit_s=timeout,
        progress=show,
    )
    errors = f"; the server reported {done.error_count} error(s)" if done.error_count else ""
    click.echo(f"  {len(done.files)} file(s) downloaded{errors}", err=True)
    return directory


def _patient_keyer(settings: Settings, mode: str) -> PatientKeyer:
    """How the rows name a patient: as the audit of these settings does. A keyed hash
    needs the audit's key: ``audit_hash_key``, else the one kept in the service's
    database (which must exist: a new key would match no audit record)."""
    from pathlib import Path

    from cds_service.stores import PatientKeyer, StoreError
    from cds_service.stores.patientkey import stored_hash_key
    from cds_service.stores.sql import open_database
    from cds_service.tools.errors import InputError

    if mode != "hash" or settings.audit_hash_key:
        return PatientKeyer(mode, settings.audit_hash_key)
    if not settings.database_url and not Path(settings.database_path).is_file():
        raise InputError(
            "rows name patients by the audit's keyed hash, whose key is audit_hash_key or "
            f"the one kept in the service's database, and there is no database at "
            f"{settings.database_path}: give the service's settings (--config), set "
            "SPINE_CDS_AUDIT_HASH_KEY, or choose --patient-id plain or omit"
        )
    try:
        db = open_database(settings.database_url, settings.database_path)
        try:
            return PatientKeyer("hash", stored_hash_key(db))
        finally:
            db.close()
    except StoreError as exc:
        raise InputError(str(exc)) from None
