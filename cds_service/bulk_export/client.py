"""The shell of a Bulk Data export: HTTP to the FHIR server and files on disk.

Kick-off, status polling and download as the Bulk Data Access IG describes them; the
reading of the answers is in ``protocol`` (pure). The rules this module keeps:

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3.exceptions

from cds_service.bulk_export.protocol import (
    DEFAULT_TYPES,
    Manifest,
    ManifestFile,
    ProtocolError,
    escaped,
    is_transient,
    local_names,
    outcome_words,
    read_manifest,
    retry_after_seconds,
    since_problem,
    types_problem,
    wait_seconds,
)
from cds_service.fhir.urls import Origin, connect_origin, is_loopback_host, server_url_problem
from cds_service.tools.errors import FhirServerError, InputError, connection_reason

MANIFEST_NAME = "export-manifest.json"
ERRORS_DIR = "errors"
PARTIAL_PREFIX = ".export-partial-"
FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"
#: The IG's complete status is ``application/json``; errors are FHIR OperationOutcomes.
STATUS_ACCEPT = "application/json, application/fhir+json"
CHUNK = 1 << 16
MAX_REDIRECTS = 5
#: How many of the error files' OperationOutcome lines are quoted in the result.
QUOTED_ERRORS = 5
#: A last line without its newline longer than this is not parsed to check it is whole.
_TAIL_CHECK_LIMIT = 16 << 20
_REDIRECTS = {301, 302, 303, 307, 308}
#: The most of a manifest read (thousands of files fit in a few MiB), and of an error answer.
_ANSWER_LIMIT = 64 << 20
_ERROR_BODY_LIMIT = 1 << 20
#: The DELETE that cancels or frees a job is a courtesy: it must not hold up the exit long.
_DELETE_TIMEOUT_S = 10.0


class BulkExportError(FhirServerError):
    """The export failed, was refused, was cut short or did not finish in time
    (exit 3); nothing of it is left in the output directory."""


class BulkExportInputError(InputError):
    """A wrong argument: the FHIR base URL, a type, ``since``, the output directory (exit 2)."""


@dataclass(frozen=True)
class ExportProgress:
    """What the export is doing, for a progress line or bar.

    ``phase``: ``kick-off``, ``waiting`` (the server is preparing the files; ``message``
    holds its ``X-Progress``, bounded and escaped), ``downloading`` or ``done``.
    """

    phase: str
    message: str
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0


@dataclass(frozen=True)
class DownloadedFile:
    """One file of the export, whole, in its place."""

    type: str
    path: Path
    lines: int  # non-blank lines, each one resource
    bytes: int
    server_count: int | None  # the manifest's ``count``, when it gave one


@dataclass(frozen=True)
class ExportResult:
    """A complete export on disk: the files, the server's error files, and the manifest
    written last (its presence is what marks the directory complete)."""

    directory: Path
    manifest_path: Path
    transaction_time: str
    files: tuple[DownloadedFile, ...]
    error_files: tuple[DownloadedFile, ...]
    #: The first few issues of the error files, bounded and escaped, for the user.
    error_messages: tuple[str, ...]

    @property
    def error_count(self) -> int:
        return sum(f.lines for f in self.error_files)


Progress = Callable[[ExportProgress], None]


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


def _https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() == "https" or is_loopback_host(parts.hostname)


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


class _Http:
    """One export's requests: the token only to the base origin, redirects hop by hop."""

    def __init__(
        self,
        session: requests.Session,
        base: str,
        token: str | None,
        timeout_s: float,
        *,
        allow_http: bool,
    ) -> None:
        self.session = session
        self.base = base
        self.origin: Origin | None = connect_origin(base)
        self._token = token.strip() if token else None
        self.has_token = self._token is not None
        self.timeout_s = timeout_s
        self._allow_http = allow_http

    def url_problem(self, url: str) -> str | None:
        if connect_origin(url) is None:
            return "is not a plain http(s) URL"
        if not self._allow_http and not _https_or_loopback(url):
            return "is plain http to a host that is not loopback"
        return None

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str],
        with_token: bool,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout_s: float | None = None,
    ) -> requests.Response:
        """One request, redirects followed here (each hop checked, the token sent to a
        hop only on the base origin). ``what`` names the request in messages."""
        for _hop in range(MAX_REDIRECTS + 1):
            if problem := self.url_problem(url):
                raise BulkExportError(f"{what}: the URL {problem}; not contacted")
            # None removes any Authorization the caller's session carries by default.
            sent: dict[str, str | None] = {**headers, "Authorization": None}
            if with_token and self._token and connect_origin(url) == self.origin:
                sent["Authorization"] = f"Bearer {self._token}"
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    headers=sent,
                    timeout=timeout_s or self.timeout_s,
                    allow_redirects=False,
                    stream=stream,
                )
            except requests.Timeout:
                raise BulkExportError(
                    f"{what}: no answer within {timeout_s or self.timeout_s:g} s "
                    f"from {self._host(url)}"
                ) from None
            except requests.ConnectionError as exc:
                raise BulkExportError(
                    f"{what}: cannot reach {self._host(url)}: {connection_reason(exc)}"
                ) from None
            except requests.RequestException as exc:
                raise BulkExportError(f"{what}: {type(exc).__name__}") from None
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            response.close()
            url = urljoin(url, location)
            params = None  # the Location carries the whole URL
            if response.status_code == 303:
                method = "GET"
        raise BulkExportError(f"{what}: more than {MAX_REDIRECTS} redirects")

    def delete_quietly(self, status_url: str) -> None:
        """Cancel the job, or tell the server its files may go; a failure is no error."""
        try:
            response = self.request(
                "DELETE",
                status_url,
                what="DELETE",
                headers={"Accept": FHIR_JSON},
                with_token=True,
                timeout_s=min(self.timeout_s, _DELETE_TIMEOUT_S),  # on the way out
            )
            response.close()
        except BulkExportError:
            pass

    @staticmethod
    def _host(url: str) -> str:
        origin = connect_origin(url)
        return f"{origin[1]}:{origin[2]}" if origin else "the server"


def _json(response: requests.Response, what: str, limit: int = _ANSWER_LIMIT) -> Any:
    """The JSON of a (streamed) answer, read to at most ``limit`` bytes: a broken or
    hostile server cannot fill memory. Not JSON: the start of its text, or None."""
    try:
        data = response.raw.read(limit + 1, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError):
        raise BulkExportError(f"{what}: the answer was cut short") from None
    if len(data) > limit:
        raise BulkExportError(f"{what}: the answer is larger than {limit // (1 << 20)} MiB")
    try:
        return json.loads(data)
    except ValueError:
        return data[:2000].decode("utf-8", "replace") or None


class _Job:
    """The steps of one export, with the user's waits and progress."""

    def __init__(self, http: _Http, poll_min_s: float, poll_max_s: float, report: Progress):
        self.http = http
        self.poll_min_s = poll_min_s
        self.poll_max_s = poll_max_s
        self.report = report

    def _refused(self, status: int, what: str, body: Any) -> BulkExportError:
        if status == 401:
            why = (
                "the FHIR server refused the access token (401)"
                if self.http.has_token
                else "the FHIR server needs an access token (--token-file) (401)"
            )
        elif status == 403:
            why = "the FHIR server does not allow this export (403)"
        else:
            why = f"the FHIR server answered {status}"
        return BulkExportError(f"{what}: {why}: {outcome_words(body)}")

    def _wait(self, response: requests.Response, previous: float | None, deadline: float) -> float:
        asked = retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC))
        pause = wait_seconds(asked, previous, self.poll_min_s, self.poll_max_s)
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        return pause

    def kick_off(self, url: str, types: Sequence[str], since: str | None, deadline: float) -> str:
        """Ask for the export; the status URL. A 429 or 503 is retried as Retry-After says."""
        params = {"_outputFormat": FHIR_NDJSON, "_type": ",".join(types)}
        if since is not None:
            params["_since"] = since
        headers = {"Accept": FHIR_JSON, "Prefer": "respond-async"}
        what = "$export kick-off"
        pause: float | None = None
        while True:
            self.report(ExportProgress("kick-off", f"asking {self.http.base} for an export"))
            with self.http.request(
                "GET", url, what=what, headers=headers, with_token=True, params=params, stream=True
            ) as response:
                status = response.status_code
                if status == 202:
                    location = response.headers.get("Content-Location")
                    if not location:
                        raise BulkExportError(
                            f"{what}: the FHIR server accepted it (202) without a "
                            "Content-Location to poll"
                        )
                    return urljoin(url, location)
                if status in (429, 503) and time.monotonic() < deadline:
                    pause = self._wait(response, pause, deadline)
                    continue
                body = _json(response, what, _ERROR_BODY_LIMIT)
            if status in (404, 405, 501):
                raise BulkExportError(
                    f"{what}: the FHIR server at {self.http.base} does not offer this $export "
                    f"({status}): {outcome_words(body)}"
                )
            if status == 200:
                raise BulkExportError(
                    f"{what}: the FHIR server answered at once (200) instead of accepting an "
                    "asynchronous export (202); it does not seem to support Bulk Data $export"
                )
            if status in (429, 503):
                raise BulkExportError(
                    f"{what}: the FHIR server stayed busy ({status}) until the time limit"
                )
            raise self._refused(status, what, body)

    def poll(self, status_url: str, deadline: float, limit_s: float) -> Manifest:
        """Poll until the manifest, a failure or the deadline."""
        what = "$export status"
        pause: float | None = None
        last = "no progress reported"
        while True:
            if time.monotonic() >= deadline:
                raise BulkExportError(
                    f"the export did not finish within {limit_s:g} s ({last}); it was "
                    "cancelled and nothing was kept"
                )
            with self.http.request(
                "GET",
                status_url,
                what=what,
                headers={"Accept": STATUS_ACCEPT},
                with_token=True,
                stream=True,
            ) as response:
                status = response.status_code
                if status == 200:
                    body = _json(response, what)
                    try:
                        return read_manifest(body)
                    except ProtocolError as exc:
                        raise BulkExportError(f"{what}: {exc}") from None
                if status in (202, 429):
                    progress = response.headers.get("X-Progress")
                    if progress:
                        last = f"last progress: {escaped(progress, 100)}"
                    self.report(ExportProgress("waiting", last if progress else "in progress"))
                    pause = self._wait(response, pause, deadline)
                    continue
                body = _json(response, what, _ERROR_BODY_LIMIT)
                if status >= 500 and is_transient(body):
                    pause = self._wait(response, pause, deadline)
                    continue
            if status in (401, 403) and connect_origin(status_url) != self.http.origin:
                raise BulkExportError(
                    f"{what}: the status URL is on another origin than the FHIR server, so "
                    f"the access token was not sent to it, and it refused ({status})"
                )
            if status in (404, 410):
                raise BulkExportError(
                    f"{what}: the FHIR server no longer knows this export ({status}): "
                    f"{outcome_words(body)}"
                )
            if status in (401, 403):
                raise self._refused(status, what, body)
            raise BulkExportError(f"the export failed ({status}): {outcome_words(body)}")

    def download_all(
        self, manifest: Manifest, partial: Path, deadline: float | None
    ) -> tuple[list[DownloadedFile], list[DownloadedFile]]:
        """Every output and error file, whole, into ``partial``."""
        total = len(manifest.output) + len(manifest.error)
        done = 0
        size = 0
        results: list[list[DownloadedFile]] = [[], []]
        (partial / ERRORS_DIR).mkdir()
        for slot, items, folder in (
            (0, manifest.output, partial),
            (1, manifest.error, partial / ERRORS_DIR),
        ):
            for item, name in zip(items, local_names(items), strict=True):
                self.report(
                    ExportProgress("downloading", name, done, total, size),
                )
                file = self._download(item, folder / name, manifest.requires_access_token, deadline)
                results[slot].append(file)
                done += 1
                size += file.bytes
        return results[0], results[1]

    def _download(
        self, item: ManifestFile, target: Path, with_token: bool, deadline: float | None
    ) -> DownloadedFile:
        what = f"downloading {target.name}"
        response = self.http.request(
            "GET",
            urljoin(self.http.base + "/", item.url),
            what=what,
            headers={"Accept": FHIR_NDJSON},
            with_token=with_token,
            stream=True,
        )
        with response:
            if response.status_code != 200:
                body = _json(response, what, _ERROR_BODY_LIMIT)
                if response.status_code in (401, 403) and not with_token:
                    raise BulkExportError(
                        f"{what}: refused ({response.status_code}); the manifest said no "
                        "access token is needed, so none was sent"
                    )
                if response.status_code in (401, 403) and (
                    connect_origin(response.url) != self.http.origin
                ):
                    raise BulkExportError(
                        f"{what}: refused ({response.status_code}); the file is on another "
                        "origin than the FHIR server, so the access token was not sent to it"
                    )
                raise self._refused(response.status_code, what, body)
            counter = _LineCounter()
            size = 0
            try:
                with target.open("wb") as out:
                    while chunk := response.raw.read1(CHUNK, decode_content=True):
                        out.write(chunk)
                        counter.feed(chunk)
                        size += len(chunk)
                        if deadline is not None and time.monotonic() > deadline:
                            raise BulkExportError(
                                f"{what}: the download did not finish in time; nothing was kept"
                            )
            except (urllib3.exceptions.HTTPError, requests.RequestException) as exc:
                if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
                    reason = f"no data for {self.http.timeout_s:g} s"
                else:
                    reason = "the connection ended before the whole file was sent"
                raise BulkExportError(f"{what}: cut short ({reason}); nothing was kept") from None
            except OSError as exc:
                raise BulkExportError(f"{what}: cannot write it ({exc.strerror})") from None
        lines = counter.finish(what)
        if item.count is not None and item.count != lines:
            raise BulkExportError(
                f"{what}: the manifest counts {item.count} resources, the file holds {lines} "
                "lines; it is incomplete or wrong, nothing was kept"
            )
        return DownloadedFile(item.type, target, lines, size, item.count)


class _LineCounter:
    """Counts the non-blank lines of a stream of chunks, keeping only the unfinished
    last line; ``finish`` says whether a last line without its newline is whole JSON
    (a file cut at a line boundary cannot be told from a whole one, hence the manifest's
    ``count`` is checked too)."""

    def __init__(self) -> None:
        self.lines = 0
        self._tail = b""
        self._tail_too_long = False

    def feed(self, chunk: bytes) -> None:
        parts = (self._tail + chunk).split(b"\n")
        self._tail = parts.pop()
        self.lines += sum(1 for part in parts if part.strip())
        if parts:
            self._tail_too_long = False
        if len(self._tail) > _TAIL_CHECK_LIMIT:
            self._tail = self._tail[:1]  # too long to check: keep memory bounded
            self._tail_too_long = True

    def finish(self, what: str) -> int:
        if self._tail_too_long:
            self.lines += 1
        elif self._tail.strip():
            try:
                json.loads(self._tail)
            except ValueError:
                raise BulkExportError(
                    f"{what}: cut short (its last line is not whole); nothing was kept"
                ) from None
            self.lines += 1
        return self.lines
