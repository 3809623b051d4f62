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

from fhir_mappers.antibiotics import Antibiotics, build_antibiotics
from fhir_mappers.valuesets import ValueSets, build_value_sets

__all__ = ["Antibiotics", "ValueSets", "load_antibiotics", "load_value_sets", "shipped_files"]

# The antibiotics value set has its own shape and reader (fhir_mappers/medications.py).
ANTIBIOTICS = "antibiotics"


def _is_antibiotics(data: dict[str, Any]) -> bool:
    return data.get("valueSet") == ANTIBIOTICS


def shipped_files() -> list[tuple[str, dict[str, Any]]]:
    """The packaged value-set files as (file name, parsed JSON), in name order."""
    package = resources.files(__name__)
    loaded = []
    for item in sorted(package.iterdir(), key=lambda entry: entry.name):
        if item.name.endswith(".json"):
            loaded.append((item.name, _parse(item.name, item.read_text(encoding="utf-8"))))
    return loaded


def _all_files(extra_dir: Path | None) -> list[tuple[str, dict[str, Any]]]:
    files = shipped_files()
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise ValueError(f"value-set directory not found: {extra_dir}")
        for path in sorted(extra_dir.glob("*.json")):
            files.append((str(path), _parse(str(path), path.read_text(encoding="utf-8"))))
    return files


def load_value_sets(extra_dir: Path | None = None) -> ValueSets:
    """Shipped lists plus every *.json in extra_dir; ValueError names a bad file or entry."""
    return build_value_sets(f for f in _all_files(extra_dir) if not _is_antibiotics(f[1]))


def load_antibiotics(extra_dir: Path | None = None) -> Antibiotics:
    """The antibiotics value set, shipped and a site's (files whose valueSet is
    "antibiotics"); ValueError names a bad file or entry."""
    return build_antibiotics(f for f in _all_files(extra_dir) if _is_antibiotics(f[1]))


def _parse(name: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object")
    return data
