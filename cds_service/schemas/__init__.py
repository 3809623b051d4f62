"""The JSON Schemas of the CDS Hooks bodies: one folder, read by the service and the tests."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_FILES = (
    "common.schema.json",
    "order-select.request.schema.json",
    "order-sign.request.schema.json",
    "response.schema.json",
    "feedback.schema.json",
    "discovery.schema.json",
)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """One schema file as a dict (cached: the files never change while running)."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def registry() -> Registry[Any]:
    """All schemas by their $id, so that cross-file $refs resolve without network access."""
    pairs = []
    for name in SCHEMA_FILES:
        schema = load_schema(name)
        pairs.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(pairs)


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator built once (building costs far more than validating)."""
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry())


def request_schema_for(hook: str) -> str:
    """The request schema file for a hook this service implements."""
    return f"{hook}.request.schema.json"
