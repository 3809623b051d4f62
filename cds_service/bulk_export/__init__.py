"""Download a FHIR Bulk Data export (``$export``) from a FHIR server, per the Bulk Data
Access IG: kick-off, status polling with ``Retry-After``, download of the NDJSON files.

The one entry point is ``download_export`` (see its docstring for every argument)::

    download_export(fhir_base_url: str, out_dir: Path, *, types=DEFAULT_TYPES,
                    since: str | None = None, group_id: str | None = None,
                    patient_level: bool = False, session: requests.Session | None = None,
                    timeout_s: float = 60.0, poll_limit_s: float = 3600.0,
                    download_limit_s: float | None = None, poll_min_s: float = 1.0,
                    poll_max_s: float = 120.0, bearer_token: str | None = None,
                    allow_http: bool = False, delete_when_done: bool = True,
                    progress: Callable[[ExportProgress], None] | None = None,
                    ) -> ExportResult

It returns only when every file is whole in ``out_dir`` and ``export-manifest.json``
is written; otherwise it raises ``BulkExportError`` (a click exception, exit 3) or
``BulkExportInputError`` (exit 2) with nothing of the export left behind. ``protocol``
reads the server's answers (pure); ``client`` is the I/O. ``spine-cds export-download``
is the command; docs/bulk-export.md the user's guide.
"""

from cds_service.bulk_export.client import download_export
from cds_service.bulk_export.protocol import DEFAULT_TYPES
from cds_service.bulk_export.results import (
    MANIFEST_NAME,
    BulkExportError,
    BulkExportInputError,
    DownloadedFile,
    ExportProgress,
    ExportResult,
)

__all__ = [
    "DEFAULT_TYPES",
    "MANIFEST_NAME",
    "BulkExportError",
    "BulkExportInputError",
    "DownloadedFile",
    "ExportProgress",
    "ExportResult",
    "download_export",
]
