"""The documentation names every setting, so it cannot silently fall behind the code."""

from __future__ import annotations

import dataclasses
import re
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


def test_the_documented_scopes_reach_every_data_source() -> None:
    """A token with the scopes integration.md gives reads every search the service
    sends; with fewer, the optional checks quietly never apply."""
    from cds_service.datasources import SOURCES

    text = (DOCS / "integration.md").read_text()
    needed = {s.resource_type for s in SOURCES} | {"Medication"}  # the _include
    for scopes in re.findall(r'"scope": "([^"]+)"', text):
        granted = {scope.split("/")[1].split(".")[0] for scope in scopes.split()}
        assert needed <= granted, f"scopes missing: {sorted(needed - granted)}"
    assert re.findall(r'"scope": "', text)
    in_words = {9: "nine"}.get(len(SOURCES), str(len(SOURCES)))
    assert f"same {in_words} prefetch templates" in text


def test_prefetch_md_describes_every_data_source() -> None:
    from cds_service.datasources import SOURCES

    text = (DOCS / "prefetch.md").read_text()
    in_words = {9: "nine"}.get(len(SOURCES), str(len(SOURCES)))
    assert f"the same {in_words} keys" in text
    for source in SOURCES:
        assert f"`{source.key}`" in text, source.key
