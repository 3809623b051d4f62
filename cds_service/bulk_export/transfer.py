"""HTTP to the FHIR server for a Bulk Data export: kick-off, status polling, download.

The token rule lives here (``_Http``): the bearer token goes only to the FHIR server's
own origin, and redirects are followed hop by hop so that the rule is applied to each.
Files stream to disk in chunks; ``lines.LineCounter`` checks each is whole as it arrives.
What the answers mean is ``protocol`` (pure); the export as a whole is ``client``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from cds_service.bulk_export.lines import LineCounter
from cds_service.bulk_export.protocol import (
    Manifest,
    ManifestFile,
    ProtocolError,
    escaped,
    is_transient,
    local_names,
    outcome_words,
    read_manifest,
    retry_after_seconds,
    wait_seconds,
)
from cds_service.bulk_export.results import (
    _ANSWER_LIMIT,
    _DELETE_TIMEOUT_S,
    _ERROR_BODY_LIMIT,
    _REDIRECTS,
    CHUNK,
    ERRORS_DIR,
    FHIR_JSON,
    FHIR_NDJSON,
    MAX_REDIRECTS,
    STATUS_ACCEPT,
    BulkExportError,
    DownloadedFile,
    ExportProgress,
    Progress,
)
from cds_service.fhir.urls import Origin, connect_origin, is_loopback_host
from cds_service.tools.errors import send


def _https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() == "https" or is_loopback_host(parts.hostname)


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
            response = send(
                self.session,
                method,
                url,
                timeout=timeout_s or self.timeout_s,
                peer=self._host(url),
                error=BulkExportError,
                misuse=BulkExportError,
                prefix=f"{what}: ",
                params=params,
                headers=sent,
                allow_redirects=False,
                stream=stream,
            )
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
            counter = LineCounter()
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
