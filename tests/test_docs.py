"""The documentation names every setting, so it cannot silently fall behind the code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cds_service.engine.thresholds import RuleSettings
from cds_service.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    names = [name for name in Settings.model_fields if name != "rules"]
    names += [f.name for f in dataclasses.fields(RuleSettings)]
    missing = [name for name in names if f"| `{name}` |" not in text]
    assert not missing, f"settings missing from docs/settings.md: {missing}"


def test_documented_defaults_match_the_code() -> None:
    text = (DOCS / "settings.md").read_text()
    settings = [name for name in Settings.model_fields if name != "rules"]
    rules = [f.name for f in dataclasses.fields(RuleSettings)]
    for instance, names in ((Settings(), settings), (RuleSettings(), rules)):
        for name in names:
            value = getattr(instance, name)
            if value in ("", ()):
                expected = "empty"
            elif isinstance(value, bool):
                expected = f"`{str(value).lower()}`"
            else:
                expected = f"`{value}`"
            assert f"| `{name}` | {expected} |" in text, name
