"""``$export`` against the project's real FHIR test server, which does not offer it.

The Node test server (Medplum's engine) has no Bulk Data export; a hospital's server
may not either. Against it the download must stop at the kick-off with a message that
says so, and leave nothing behind. (The protocol itself is tested against
tests/support/bulk_export_server.py in tests/test_bulk_export.py.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cds_service.bulk_export import BulkExportError, download_export
from spine_cds_dev.fhir_server import FhirTestServer

TOKEN = "test-token-" + uuid.uuid4().hex

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as running:
        yield running


@pytest.mark.parametrize("level", ["system", "patient", "group"])
def test_a_server_without_export_is_named_and_nothing_is_kept(
    server: FhirTestServer, tmp_path: Path, level: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(BulkExportError, match=r"does not offer this \$export") as caught:
        download_export(
            server.base_url,
            out,
            bearer_token=TOKEN,
            patient_level=level == "patient",
            group_id="cohort" if level == "group" else None,
            timeout_s=30,
            poll_limit_s=30,
        )
    assert caught.value.exit_code == 3
    assert TOKEN not in caught.value.message
    assert not out.exists()
