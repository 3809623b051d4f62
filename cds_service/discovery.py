"""hooks.json: the discovery document, the one place where services and prefetch are defined."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cds_service import schemas
from cds_service.hook_declarations import HOOKS, HookDeclaration
from cds_service.validation import validate


@dataclass(frozen=True)
class Service:
    """One entry of hooks.json, with the declaration of its hook."""

    id: str
    hook: str
    title: str
    prefetch: dict[str, str]

    @property
    def declaration(self) -> HookDeclaration:
        """What the code knows of this service's hook (``hook_declarations``)."""
        return HOOKS[self.hook]


@dataclass(frozen=True)
class Discovery:
    """The discovery document as served, and its services by id."""

    document: dict[str, Any]
    services: dict[str, Service]
    # What an error names: the setting and its file, or the shipped hooks.json.
    source: str = "hooks.json"


def _default_hooks_text() -> str:
    # Installed wheel: hooks.json is packaged inside cds_service. Source checkout or
    # editable install: it is the top-level file of the repository.
    packaged = resources.files("cds_service").joinpath("hooks.json")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "hooks.json").read_text(encoding="utf-8")


def _read_document(path: str, source: str) -> Any:
    if not path:
        return json.loads(_default_hooks_text())
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{source} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{source} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source} cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON: {exc}") from None


def load_discovery(path: str = "") -> Discovery:
    """Read and check hooks.json at startup; a broken file stops the service with a reason.

    Every ValueError names where the document came from: ``hooks_file <path>`` for a
    site's file, as the other file settings do, else the shipped ``hooks.json``.
    """
    source = f"hooks_file {path}" if path else "hooks.json"
    document = _read_document(path, source)
    problems = validate(schemas.validator("discovery.schema.json"), document)
    if problems:
        listed = "; ".join(f"{p.path}: {p.message}" for p in problems)
        raise ValueError(f"{source} does not conform to CDS Hooks discovery: {listed}")
    services: dict[str, Service] = {}
    for entry in document["services"]:
        if entry["hook"] not in HOOKS:
            raise ValueError(
                f"{source}: service {entry['id']!r} uses unsupported hook {entry['hook']!r}"
                f" (declared hooks: {', '.join(HOOKS)})"
            )
        if entry["id"] in services:
            raise ValueError(f"{source}: duplicate service id {entry['id']!r}")
        services[entry["id"]] = Service(
            id=entry["id"],
            hook=entry["hook"],
            title=entry.get("title", entry["id"]),
            prefetch=dict(entry.get("prefetch", {})),
        )
    return Discovery(document=document, services=services, source=source)
