"""The startup warning about a trusted client without ``fhir_servers`` says what it
allows: since names are not resolved, that client's calls can probe internal https names
and ports (an attack review scanned the host's own ports through the 412 reasons)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cds_service.app import create_app
from tests.conftest import make_settings
from tests.support.jwks_server import JwksServer


def _warnings(tmp_path: Path, entry: dict[str, object], caplog: pytest.LogCaptureFixture) -> str:
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps([entry]))
    settings = make_settings(
        tmp_path,
        dev_mode=False,
        trusted_clients_file=str(clients),
        public_base_url="https://cds.example.org",
    )
    caplog.set_level(logging.WARNING)
    create_app(settings)
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_a_client_without_fhir_servers_is_warned_of_internal_probing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with JwksServer() as jwks:
        said = _warnings(
            tmp_path, {"iss": "https://ehr.example.org", "jwks_url": jwks.url()}, caplog
        )
    assert "trusted client https://ehr.example.org has no fhir_servers" in said
    assert "can probe internal https names and ports" in said


def test_a_client_with_fhir_servers_is_not_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    entry = {
        "iss": "https://ehr.example.org",
        "fhir_servers": ["https://fhir.example.org/r4"],
    }
    with JwksServer() as jwks:
        said = _warnings(tmp_path, {**entry, "jwks_url": jwks.url()}, caplog)
    assert "has no fhir_servers" not in said
