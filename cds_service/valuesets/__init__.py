"""The shipped code lists (JSON files beside this module) and a loader for them.

Call ``load_code_lists`` once at startup (the runtime does); the result is immutable and
shared by all requests. A site extends the lists by putting more JSON files of the same shape in a
directory of its own (``extra_dir``); see fhir_mappers/valuesets.py for the format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fhir_mappers.antibiotics import Antibiotics, build_antibiotics
from fhir_mappers.valuesets import ValueSets, build_value_sets

__all__ = [
    "Antibiotics",
    "CodeLists",
    "ValueSets",
    "is_antibiotics",
    "load_code_lists",
    "load_value_sets",
    "shipped_files",
]

# The antibiotics value set has its own shape and reader (fhir_mappers/antibiotics.py).
ANTIBIOTICS = "antibiotics"


def is_antibiotics(data: Mapping[str, Any]) -> bool:
    """Whether a value-set file is the antibiotics list (read by its own reader)."""
    return data.get("valueSet") == ANTIBIOTICS


@dataclass(frozen=True)
class CodeLists:
    """Every list the service reads, built once at start-up from files read once."""

    value_sets: ValueSets  # shipped and a site's
    shipped: ValueSets  # the shipped lists alone (hooks.json is checked against them)
    antibiotics: Antibiotics


def shipped_files() -> list[tuple[str, dict[str, Any]]]:
    """The packaged value-set files as (file name, parsed JSON), in name order."""
    package = resources.files(__name__)
    loaded = []
    for item in sorted(package.iterdir(), key=lambda entry: entry.name):
        if item.name.endswith(".json"):
            loaded.append((item.name, _parse(item.name, item.read_text(encoding="utf-8"))))
    return loaded


def _site_files(extra_dir: Path | None) -> list[tuple[str, dict[str, Any]]]:
    """A site's files in ``extra_dir`` (none without one), in name order."""
    if extra_dir is None:
        return []
    if not extra_dir.is_dir():
        raise ValueError(f"value-set directory not found: {extra_dir}")
    return [
        (str(path), _parse(str(path), path.read_text(encoding="utf-8")))
        for path in sorted(extra_dir.glob("*.json"))
    ]


def _all_files(extra_dir: Path | None) -> list[tuple[str, dict[str, Any]]]:
    return shipped_files() + _site_files(extra_dir)


def load_value_sets(extra_dir: Path | None = None) -> ValueSets:
    """Shipped lists plus every *.json in extra_dir; ValueError names a bad file or entry."""
    return build_value_sets(f for f in _all_files(extra_dir) if not is_antibiotics(f[1]))


def load_code_lists(extra_dir: Path | None = None) -> CodeLists:
    """Every list, each file read and parsed once; ValueError names a bad file or entry."""
    shipped_files_, site_files = shipped_files(), _site_files(extra_dir)
    files = shipped_files_ + site_files

    def code_lists(chosen: list[tuple[str, dict[str, Any]]]) -> ValueSets:
        return build_value_sets(f for f in chosen if not is_antibiotics(f[1]))

    value_sets = code_lists(files)
    return CodeLists(
        value_sets=value_sets,
        shipped=code_lists(shipped_files_) if site_files else value_sets,
        antibiotics=build_antibiotics(f for f in files if is_antibiotics(f[1])),
    )


def _parse(name: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object")
    return data
