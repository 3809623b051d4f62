"""Settings a typo would quietly break are refused or said (an integrator's review)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cds_service.settings import SettingsError, load_settings
from cds_service.stores.sql import SqliteDatabase


@pytest.mark.parametrize(
    "origin",
    [
        "sandbox.cds-hooks.org",
        "https://sandbox.cds-hooks.org/",
        "https://x.org/app",
        "ftp://x.org",
        # read by flask-cors as patterns matching the start of any origin (an attack suite)
        "https://*",
        "https://*.ex.org",
        "http://[::1]",
        "https://:pw@ex.org",
        "https://ex.org:0",
        "https://ex.org:99999",
        "https://ex.org?",
        "https://ex .org",
    ],
)
def test_a_cors_origin_a_browser_never_sends_is_refused(origin: str) -> None:
    with pytest.raises(SettingsError, match="is not an origin"):
        load_settings(environ={}, overrides={"cors_origins": origin})


def test_an_origin_with_a_port_is_kept() -> None:
    settings = load_settings(environ={}, overrides={"cors_origins": "https://ehr.example.org:8443"})
    assert settings.cors_origins == ("https://ehr.example.org:8443",)


def test_a_database_in_a_new_directory_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        SqliteDatabase(tmp_path / "typo" / "spine-cds.sqlite3").close()
    assert "database_path: created the directory" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        SqliteDatabase(tmp_path / "typo" / "again.sqlite3").close()
    assert "created the directory" not in caplog.text


def test_a_raw_at_sign_in_the_database_password_is_refused() -> None:
    # the driver's error quoted what followed it at startup, past the log's masking
    with pytest.raises(SettingsError, match="percent-encode an @"):
        load_settings(environ={}, overrides={"database_url": "postgresql://u:se@cret@db/x"})


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("https://cds.example.org/cds-services", "https://cds.example.org"),
        ("https://cds.example.org/cds-services/", "https://cds.example.org"),
        ("https://cds.example.org:8443/spine/cds-services", "https://cds.example.org:8443/spine"),
    ],
)
def test_a_public_base_url_ending_in_cds_services_is_refused_with_the_base_to_give(
    given: str, base: str
) -> None:
    # An outside review: the discovery URL given as the base made every expected aud
    # .../cds-services/cds-services/<id>, and every EHR call a 401.
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"SPINE_CDS_PUBLIC_BASE_URL": given})
    said = str(refused.value)
    assert said.startswith(f"public_base_url {given!r} ends in /cds-services")
    assert f"give {base!r} (discovery is then {base}/cds-services" in said


def test_a_base_path_that_only_contains_cds_services_is_kept() -> None:
    for url in ("https://cds.example.org/cds-services/spine", "https://x.org/my-cds-services"):
        assert load_settings(environ={"SPINE_CDS_PUBLIC_BASE_URL": url}).public_base_url == url
