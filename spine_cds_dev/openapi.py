"""The OpenAPI document's components, converted from the JSON Schema files.

cds_service/openapi.json describes the service; its request and response schemas are
the files in cds_service/schemas, converted here: each ``$defs`` entry becomes the
component ``<file>.<name>`` and every ``$ref`` is rewritten to match. A few components
are written by hand in the document (``HAND_WRITTEN``). tests/web/test_openapi.py
holds the shipped document to this conversion; after editing a schema file::

    .venv/bin/python -m spine_cds_dev.openapi --write
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import cds_service
from cds_service import schemas

OPENAPI_PATH = Path(cds_service.__file__).parent / "openapi.json"
COMPONENTS = "#/components/schemas/"
# Components written by hand in the document (not converted from a schema file).
HAND_WRITTEN = frozenset({"error", "health", "feedback-result"})


def component_name(file_name: str) -> str:
    """``order-select.request.schema.json`` -> ``order-select.request``."""
    return file_name.removesuffix(".schema.json")


def _rewrite_refs(value: Any, own: str, names_by_id: dict[str, str]) -> Any:
    """``#/$defs/x`` (own file) and ``<$id>#/$defs/x`` (another file) -> component refs."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                base, _, fragment = item.partition("#")
                if not fragment.startswith("/$defs/") or "/" in fragment[len("/$defs/") :]:
                    raise ValueError(f"cannot convert $ref {item!r}: only /$defs/<name> is known")
                target = own if base == "" else names_by_id[base]
                out[key] = f"{COMPONENTS}{target}.{fragment[len('/$defs/') :]}"
            else:
                out[key] = _rewrite_refs(item, own, names_by_id)
        return out
    if isinstance(value, list):
        return [_rewrite_refs(item, own, names_by_id) for item in value]
    return value


def components_from_schema_files() -> dict[str, Any]:
    """The OpenAPI components the schema files convert to (the only allowed conversion)."""
    names_by_id = {
        schemas.load_schema(name)["$id"]: component_name(name) for name in schemas.SCHEMA_FILES
    }
    out: dict[str, Any] = {}
    for file_name in schemas.SCHEMA_FILES:
        schema = copy.deepcopy(schemas.load_schema(file_name))
        name = component_name(file_name)
        definitions = schema.pop("$defs", {})
        schema.pop("$schema", None)
        schema.pop("$id", None)
        if set(schema) - {"title", "description"}:  # a file that is only a $defs holder has none
            out[name] = _rewrite_refs(schema, name, names_by_id)
        for def_name, definition in definitions.items():
            out[f"{name}.{def_name}"] = _rewrite_refs(definition, name, names_by_id)
    return out


def write_components(path: Path = OPENAPI_PATH) -> None:
    """Regenerate the converted components of the document in place."""
    document = json.loads(path.read_text(encoding="utf-8"))
    current = document["components"]["schemas"]
    hand = {name: current[name] for name in current if name in HAND_WRITTEN}
    document["components"]["schemas"] = {**components_from_schema_files(), **hand}
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print("usage: python -m spine_cds_dev.openapi --write", file=sys.stderr)
        return 2
    write_components()
    print(f"rewrote the converted components of {OPENAPI_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
