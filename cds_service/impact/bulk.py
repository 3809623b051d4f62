"""A FHIR Bulk Data export from a server, per the Bulk Data Access IG (v2): kick-off,
status polling with ``Retry-After``, download of the NDJSON files.

Kick-off: ``GET [base]/Patient/$export`` (or ``Group/[id]/$export``) with
``Prefer: respond-async`` and the types the replay reads, answered 202 with a
``Content-Location`` to poll. Polling: 202 while in progress (waiting what
``Retry-After`` says, in seconds or as an HTTP date, within bounds), 200 with the
manifest when complete, an error status with an OperationOutcome when it failed.
Download: each ``output`` file, with the bearer token when the manifest says
``requiresAccessToken``.

Nothing half-written is presented as complete: files are downloaded under a
``.partial`` name and renamed when whole, and ``manifest.json`` is written last, only
when every file is there. A failure or a time-out removes what this export wrote, asks
the server to delete the job (DELETE on the status URL) and raises ``BulkExportError``
saying what failed. The token is never put in a message.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

__all__ = ["BulkExport", "BulkExportError", "run_export"]

EXPORT_TYPES = (
    "Patient",
    "Condition",
    "Observation",
    "MedicationRequest",
    "Medication",
    "ServiceRequest",
    "ImagingStudy",
    "Procedure",
)
MANIFEST = "manifest.json"
DEFAULT_WAIT_S = 2.0
MAX_WAIT_S = 120.0
CHUNK = 1 << 20


class BulkExportError(Exception):
    """The export failed, was refused or did not finish in time; nothing is kept."""


@dataclass(frozen=True)
class BulkExport:
    """A finished export: the files downloaded and what the server reported."""

    directory: Path
    files: list[Path]
    transaction_time: str
    errors: int  # OperationOutcome lines the server listed under ``error``


def _problem(response: requests.Response) -> str:
    """The status and the OperationOutcome's diagnostics, if the body is one."""
    text = f"{response.status_code} {response.reason or ''}".strip()
    try:
        body = response.json()
    except ValueError:
        return text
    issues = body.get("issue") if isinstance(body, dict) else None
    said = [
        str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code"))
        for i in issues or []
        if isinstance(i, dict)
    ]
    return f"{text}: {'; '.join(said)}" if said else text


def retry_after(value: str | None, now: datetime) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date),
    within 0..MAX_WAIT_S; DEFAULT_WAIT_S when absent or unreadable."""
    if not value:
        return DEFAULT_WAIT_S
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_WAIT_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_WAIT_S
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_WAIT_S)


def run_export(
    base_url: str,
    directory: Path,
    token: str | None = None,
    group: str | None = None,
    types: Iterable[str] = EXPORT_TYPES,
    timeout_s: float = 3600.0,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_status: Callable[[str], None] | None = None,
) -> BulkExport:
    """Run one export into ``directory`` (which must not hold a previous one)."""
    base = base_url.rstrip("/") + "/"
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / MANIFEST).exists():
        raise BulkExportError(f"{directory} already holds an export ({MANIFEST}): use another")
    http = session or requests.Session()
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    kickoff = urljoin(base, f"Group/{group}/$export" if group else "Patient/$export")
    written: list[Path] = []
    status_url: str | None = None
    try:
        try:
            response = http.get(
                kickoff,
                params={"_type": ",".join(types), "_outputFormat": "application/fhir+ndjson"},
                headers={"Accept": "application/fhir+json", "Prefer": "respond-async", **auth},
                timeout=60,
            )
        except requests.RequestException as exc:
            raise BulkExportError(
                f"$export kick-off at {kickoff} failed: {type(exc).__name__}"
            ) from None
        if response.status_code != 202:
            raise BulkExportError(f"$export kick-off at {kickoff} answered {_problem(response)}")
        status_url = response.headers.get("Content-Location")
        if not status_url:
            raise BulkExportError("$export kick-off answered 202 without a Content-Location")
        status_url = urljoin(kickoff, status_url)
        manifest = _poll(http, status_url, auth, timeout_s, sleep, on_status)
        needs_token = bool(manifest.get("requiresAccessToken"))
        outputs = manifest.get("output")
        if not isinstance(outputs, list):
            raise BulkExportError("the export's manifest has no output list")
        for index, item in enumerate(outputs):
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise BulkExportError(f"the manifest's output[{index}] has no url")
            rtype = str(item.get("type") or "Resource")
            target = directory / f"{index + 1:04d}.{rtype}.ndjson"
            _download(http, urljoin(status_url, item["url"]), target, auth if needs_token else {})
            written.append(target)
        errors = 0
        for item in manifest.get("error") or []:
            if isinstance(item, dict):
                errors += int(item.get("count") or 1)
        (directory / (MANIFEST + ".partial")).write_text(json.dumps(manifest, indent=2))
        (directory / (MANIFEST + ".partial")).rename(directory / MANIFEST)
        return BulkExport(directory, written, str(manifest.get("transactionTime", "")), errors)
    except BaseException:
        for path in [*written, *directory.glob("*.partial")]:
            path.unlink(missing_ok=True)
        if status_url is not None:
            try:  # the IG's cancel: the server may free what it holds for the job
                http.delete(status_url, headers=auth, timeout=10)
            except requests.RequestException:
                pass
        raise


def _poll(
    http: requests.Session,
    status_url: str,
    auth: dict[str, str],
    timeout_s: float,
    sleep: Callable[[float], None],
    on_status: Callable[[str], None] | None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = http.get(
                status_url, headers={"Accept": "application/json", **auth}, timeout=60
            )
        except requests.RequestException as exc:
            raise BulkExportError(f"export status request failed: {type(exc).__name__}") from None
        if response.status_code == 200:
            try:
                manifest = response.json()
            except ValueError:
                raise BulkExportError("the export's manifest is not JSON") from None
            if not isinstance(manifest, dict):
                raise BulkExportError("the export's manifest is not a JSON object")
            return manifest
        if response.status_code != 202:
            raise BulkExportError(f"the export failed: {_problem(response)}")
        if on_status is not None:
            on_status(response.headers.get("X-Progress") or "in progress")
        wait = retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        if time.monotonic() + wait > deadline:
            raise BulkExportError(f"the export did not finish within {timeout_s:g} s")
        sleep(wait)


def _download(http: requests.Session, url: str, target: Path, auth: dict[str, str]) -> None:
    partial = target.with_name(target.name + ".partial")
    try:
        with http.get(
            url, headers={"Accept": "application/fhir+ndjson", **auth}, stream=True, timeout=60
        ) as response:
            if response.status_code != 200:
                raise BulkExportError(f"downloading {url} answered {_problem(response)}")
            with partial.open("wb") as handle:
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
    except requests.RequestException as exc:
        raise BulkExportError(f"downloading {url} failed: {type(exc).__name__}") from None
    partial.rename(target)
