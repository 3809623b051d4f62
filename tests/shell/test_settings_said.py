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
