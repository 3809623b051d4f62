"""What a Bulk Data export gives back: its constants, errors, progress and result.

Shared by ``client`` (the export as a whole, files on disk) and ``transfer`` (HTTP to
the server); kept apart so that neither imports the other's internals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cds_service.tools.errors import FhirServerError, InputError

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
