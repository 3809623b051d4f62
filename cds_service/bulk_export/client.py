"""The shell of a Bulk Data export: the export as a whole, and its files on disk.

Kick-off, status polling and download as the Bulk Data Access IG describes them: the
HTTP is in ``transfer``, the reading of the answers in ``protocol`` (pure), what comes
back in ``results``. The rules the export keeps:

- The bearer token goes only to the FHIR server's own origin (scheme, host, port as the
  HTTP stack connects): the kick-off, the status URL and, when the manifest says
  ``requiresAccessToken``, the files. Redirects are followed here, hop by hop, so the
  same rule is applied to each hop; requests' own redirect handling is off.
- Every URL the server hands back passes the service's checks for a FHIR base URL
  (``connect_origin``) and is https unless it is on the loopback interface or plain
  http was allowed explicitly.
- Files are streamed to disk in chunks (memory bounded whatever the export's size) under
  a temporary directory inside the output directory; only when every file is whole are
  they moved into place and ``export-manifest.json`` written, last. On any failure,
  time-out or interrupt the temporary directory is removed, the job is cancelled on the
  server (DELETE on the status URL) and ``BulkExportError`` says what failed.
- No token and no patient data in a message: a server's own words are quoted bounded and
  escaped, file URLs (which may carry signed query strings) are never written down.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from cds_service.bulk_export.protocol import (
    DEFAULT_TYPES,
    Manifest,
    escaped,
    outcome_words,
    since_problem,
    types_problem,
)
from cds_service.bulk_export.results import (
    ERRORS_DIR,
    MANIFEST_NAME,
    PARTIAL_PREFIX,
    QUOTED_ERRORS,
    BulkExportError,
    BulkExportInputError,
    DownloadedFile,
    ExportProgress,
    ExportResult,
    Progress,
)
from cds_service.bulk_export.transfer import _Http, _https_or_loopback, _Job
from cds_service.fhir.urls import server_url_problem


def download_export(
    fhir_base_url: str,
    out_dir: Path,
    *,
    types: Sequence[str] = DEFAULT_TYPES,
    since: str | None = None,
    group_id: str | None = None,
    patient_level: bool = False,
    session: requests.Session | None = None,
    timeout_s: float = 60.0,
    poll_limit_s: float = 3600.0,
    download_limit_s: float | None = None,
    poll_min_s: float = 1.0,
    poll_max_s: float = 120.0,
    bearer_token: str | None = None,
    allow_http: bool = False,
    delete_when_done: bool = True,
    progress: Progress | None = None,
) -> ExportResult:
    """Run a Bulk Data export on ``fhir_base_url`` and download it into ``out_dir``.

    Kick-off ``GET [base]/$export`` (``Patient/$export`` with ``patient_level``,
    ``Group/[group_id]/$export`` with ``group_id``) asking for ``types`` changed since
    ``since`` (a FHIR instant), then poll the status URL as ``Retry-After`` says (bounded
    to [``poll_min_s``, ``poll_max_s``], doubling from ``poll_min_s`` when the server
    does not say), for at most ``poll_limit_s`` from the kick-off, then download every
    ``output`` and ``error`` file (all of it within ``download_limit_s`` when given).
    ``timeout_s`` bounds each connect and each wait for bytes.

    Returns the ``ExportResult`` once every file is whole in ``out_dir`` (``Patient.ndjson``,
    ``Patient.2.ndjson``...; the server's error files in ``errors/``) and
    ``export-manifest.json`` written. ``out_dir`` is created when missing and must not
    already hold an export. Raises ``BulkExportInputError`` for a wrong argument before
    anything is sent, ``BulkExportError`` for a failure, refusal, a file cut short or a
    time-out; then nothing of the export is left in ``out_dir``, and the server's job is
    cancelled (DELETE on the status URL; also sent after success unless
    ``delete_when_done`` is false, as the IG suggests).

    ``bearer_token`` is sent to the FHIR server's origin only; to the files only when the
    manifest says ``requiresAccessToken``. Plain http is refused except on the loopback
    interface unless ``allow_http``. ``progress`` is called with an ``ExportProgress``
    at each step. ``session`` lets a caller supply its own (proxies, CA bundle); it is
    not closed here.
    """
    base = _checked_base(fhir_base_url, allow_http)
    if problem := types_problem(types):
        raise BulkExportInputError(f"--type: {problem}")
    if problem := since_problem(since):
        raise BulkExportInputError(f"--since: {problem}")
    if group_id is not None and patient_level:
        raise BulkExportInputError("ask for a Group export or a Patient export, not both")
    if group_id is not None and not group_id:
        raise BulkExportInputError("--group: the Group id is empty")
    if bearer_token is not None and not bearer_token.strip():
        raise BulkExportInputError("the access token is empty")
    out_dir = Path(out_dir)
    created_out_dir = _prepare_out_dir(out_dir)
    own_session = session is None
    http = _Http(
        session or requests.Session(), base, bearer_token, timeout_s, allow_http=allow_http
    )
    job = _Job(http, poll_min_s, poll_max_s, progress or (lambda _event: None))
    status_url: str | None = None
    partial: Path | None = None
    try:
        if group_id is not None:
            kick_off_url = f"{base}/Group/{quote(group_id, safe='')}/$export"
        elif patient_level:
            kick_off_url = f"{base}/Patient/$export"
        else:
            kick_off_url = f"{base}/$export"
        try:  # before the kick-off: a directory we cannot write stops us before any work
            partial = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=out_dir))
        except OSError as exc:
            raise BulkExportInputError(
                f"--out {out_dir}: cannot write there ({exc.strerror})"
            ) from None
        poll_deadline = time.monotonic() + poll_limit_s
        status_url = job.kick_off(kick_off_url, types, since, poll_deadline)
        manifest = job.poll(status_url, poll_deadline, poll_limit_s)
        download_deadline = (
            time.monotonic() + download_limit_s if download_limit_s is not None else None
        )
        files, error_files = job.download_all(manifest, partial, download_deadline)
        result = _put_in_place(out_dir, partial, manifest, base, types, files, error_files)
        partial = None
        if delete_when_done:
            http.delete_quietly(status_url)
        job.report(
            ExportProgress(
                "done",
                f"{len(result.files)} file(s), {sum(f.lines for f in result.files)} resources",
                len(result.files),
                len(result.files),
                sum(f.bytes for f in result.files),
            )
        )
        return result
    except BaseException:
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        if created_out_dir:
            _remove_if_empty(out_dir)
        if status_url is not None:
            http.delete_quietly(status_url)  # cancel the job, or free its files
        raise
    finally:
        if own_session:
            http.session.close()


# --- arguments and the output directory ------------------------------------------------


def _checked_base(url: str, allow_http: bool) -> str:
    problem = server_url_problem(url)
    if problem is not None:
        raise BulkExportInputError(
            f"--fhir-server {escaped(url, 200)}: {problem.replace('fhirServer ', '')}"
        )
    if not allow_http and not _https_or_loopback(url):
        raise BulkExportInputError(
            f"--fhir-server {escaped(url, 200)}: must be https (plain http only on the "
            "loopback interface, unless allowed explicitly)"
        )
    return url.rstrip("/")


def _prepare_out_dir(out_dir: Path) -> bool:
    """Create ``out_dir`` when missing (True then) or check it holds no export yet."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BulkExportInputError(f"--out {out_dir}: is not a directory")
    if out_dir.is_dir():
        taken = [
            p.name
            for p in out_dir.iterdir()
            if p.name in (MANIFEST_NAME, ERRORS_DIR) or p.suffix == ".ndjson"
        ]
        if taken:
            raise BulkExportInputError(
                f"--out {out_dir}: already holds an export ({', '.join(sorted(taken)[:3])}); "
                "choose an empty or new directory"
            )
        return False
    try:
        out_dir.mkdir(parents=True)
    except OSError as exc:
        raise BulkExportInputError(f"--out {out_dir}: cannot create it ({exc.strerror})") from None
    return True


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # not empty, or gone: leave it


def _put_in_place(
    out_dir: Path,
    partial: Path,
    manifest: Manifest,
    base: str,
    types: Sequence[str],
    files: list[DownloadedFile],
    error_files: list[DownloadedFile],
) -> ExportResult:
    """Move the whole files from ``partial`` into ``out_dir``, then write the manifest
    last (through a temporary name, so it is either absent or whole). If a move fails,
    what was moved is removed again."""
    placed: list[DownloadedFile] = []
    placed_errors: list[DownloadedFile] = []
    try:
        for f in files:
            placed.append(_move(f, out_dir / f.path.name))
        if error_files:
            (out_dir / ERRORS_DIR).mkdir()
            for f in error_files:
                placed_errors.append(_move(f, out_dir / ERRORS_DIR / f.path.name))
    except OSError as exc:
        for f in [*placed, *placed_errors]:
            f.path.unlink(missing_ok=True)
        _remove_if_empty(out_dir / ERRORS_DIR)
        raise BulkExportError(
            f"--out {out_dir}: cannot put the files in place ({exc.strerror}); nothing was kept"
        ) from None
    messages = tuple(_error_messages(placed_errors))
    record = {
        "fhirServer": base,
        "transactionTime": manifest.transaction_time,
        "types": list(types),
        "files": [_file_record(f, out_dir) for f in placed],
        "errors": [_file_record(f, out_dir) for f in placed_errors],
        "errorMessages": list(messages),
    }
    manifest_path = out_dir / MANIFEST_NAME
    temporary = partial / MANIFEST_NAME
    temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, manifest_path)
    shutil.rmtree(partial, ignore_errors=True)
    return ExportResult(
        directory=out_dir,
        manifest_path=manifest_path,
        transaction_time=manifest.transaction_time,
        files=tuple(placed),
        error_files=tuple(placed_errors),
        error_messages=messages,
    )


def _move(file: DownloadedFile, target: Path) -> DownloadedFile:
    os.replace(file.path, target)
    return DownloadedFile(file.type, target, file.lines, file.bytes, file.server_count)


def _file_record(file: DownloadedFile, out_dir: Path) -> dict[str, Any]:
    return {
        "type": file.type,
        "file": file.path.relative_to(out_dir).as_posix(),
        "count": file.lines,
        "bytes": file.bytes,
    }


def _error_messages(error_files: Sequence[DownloadedFile]) -> Iterator[str]:
    """The first few issues of the error files (OperationOutcome lines), for the user."""
    quoted = 0
    for file in error_files:
        with file.path.open("rb") as lines:
            for raw in lines:
                if quoted >= QUOTED_ERRORS:
                    return
                if not raw.strip():
                    continue
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                quoted += 1
                yield f"{file.path.name}: {outcome_words(body)}"


# --- HTTP ------------------------------------------------------------------------------
