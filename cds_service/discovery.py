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


def _default_hooks_text() -> str:
    # Installed wheel: hooks.json is packaged inside cds_service. Source checkout or
    # editable install: it is the top-level file of the repository.
    packaged = resources.files("cds_service").joinpath("hooks.json")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "hooks.json").read_text(encoding="utf-8")


def load_discovery(path: str = "") -> Discovery:
    """Read and check hooks.json at startup; a broken file stops the service with a reason."""
    text = Path(path).read_text(encoding="utf-8") if path else _default_hooks_text()
    document = json.loads(text)
    problems = validate(schemas.validator("discovery.schema.json"), document)
    if problems:
        listed = "; ".join(f"{p.path}: {p.message}" for p in problems)
        raise ValueError(f"hooks.json does not conform to CDS Hooks discovery: {listed}")
    services: dict[str, Service] = {}
    for entry in document["services"]:
        if entry["hook"] not in HOOKS:
            raise ValueError(
                f"hooks.json: service {entry['id']!r} uses unsupported hook {entry['hook']!r}"
                f" (declared hooks: {', '.join(HOOKS)})"
            )
        if entry["id"] in services:
            raise ValueError(f"hooks.json: duplicate service id {entry['id']!r}")
        services[entry["id"]] = Service(
            id=entry["id"],
            hook=entry["hook"],
            title=entry.get("title", entry["id"]),
            prefetch=dict(entry.get("prefetch", {})),
        )
    return Discovery(document=document, services=services)
