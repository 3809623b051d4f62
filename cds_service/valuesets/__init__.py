"""The shipped code lists (JSON files beside this module) and a loader for them.

Call ``load_value_sets`` once at startup; the result is immutable and shared by all
requests. A site extends the lists by putting more JSON files of the same shape in a
directory of its own (``extra_dir``); see fhir_mappers/valuesets.py for the format.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from fhir_mappers.valuesets import ValueSets, build_value_sets

__all__ = ["ValueSets", "load_value_sets", "shipped_files"]


def shipped_files() -> list[tuple[str, dict[str, Any]]]:
    """The packaged value-set files as (file name, parsed JSON), in name order."""
    package = resources.files(__name__)
    loaded = []
    for item in sorted(package.iterdir(), key=lambda entry: entry.name):
        if item.name.endswith(".json"):
            loaded.append((item.name, _parse(item.name, item.read_text(encoding="utf-8"))))
    return loaded


def load_value_sets(extra_dir: Path | None = None) -> ValueSets:
    """Shipped lists plus every *.json in extra_dir; ValueError names a bad file or entry."""
    files = shipped_files()
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise ValueError(f"value-set directory not found: {extra_dir}")
        for path in sorted(extra_dir.glob("*.json")):
            files.append((str(path), _parse(str(path), path.read_text(encoding="utf-8"))))
    return build_value_sets(files)


def _parse(name: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object")
    return data
