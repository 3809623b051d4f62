"""A first start in secure mode names every missing prerequisite at once, with the way out
to development mode (an integrator's review: the audit key's error came first, and only
after fixing it did the public_base_url one appear; nothing said --dev)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.runtime import build_runtime
from cds_service.settings import SettingsError, load_settings


def test_every_gap_is_named_with_the_dev_mode_hint(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"database_path": str(tmp_path / "db")})
    with pytest.raises(SettingsError) as raised:
        build_runtime(settings)
    said = str(raised.value)
    assert "(1) public_base_url must be set" in said
    assert "(2) audit_hash_key must be set" in said
    assert "spine-cds serve --dev" in said


def test_one_gap_is_named_alone_with_the_hint(tmp_path: Path) -> None:
    settings = load_settings(
        environ={},
        overrides={"database_path": str(tmp_path / "db"), "audit_patient_id": "omit"},
    )
    with pytest.raises(SettingsError) as raised:
        build_runtime(settings)
    said = str(raised.value)
    assert said.startswith("public_base_url must be set") and "(1)" not in said
    assert "spine-cds serve --dev" in said
