"""The JSON Schemas of the CDS Hooks bodies: one folder, read by the service and the tests.

Each schema is compiled twice. jsonschema-rs (compiled code) answers "is this body
valid?" in microseconds, so a conforming request pays almost nothing for its check;
jsonschema explains a refused body field by field, with JSON paths, and runs only then
(``SchemaCheck``). On the benchmark's request the jsonschema walk alone cost about a
third of the floor's whole request (performance-notes.md; bench/profile_hook.py).
Both read the same files, and a test holds them to the same answers.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from cds_service.validation import ExplainingValidator, SchemaCheck

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
    return ExplainingValidator(schema, registry=registry())


@cache
def fast_registry() -> jsonschema_rs.Registry:
    """``registry()`` for jsonschema-rs: all schemas by their $id, built once."""
    return jsonschema_rs.Registry([(load_schema(n)["$id"], load_schema(n)) for n in SCHEMA_FILES])


@cache
def fast_validator(name: str) -> jsonschema_rs.Validator:
    """The compiled validator of one schema, cross-file $refs resolved from the shipped
    files only (no network: ``offline``)."""
    return jsonschema_rs.validator_for(load_schema(name), registry=fast_registry(), offline=True)


@cache
def uuid_pattern() -> re.Pattern[str]:
    """The schemas' own test of a UUID (``common.schema.json``, ``$defs.uuid``)."""
    return re.compile(load_schema("common.schema.json")["$defs"]["uuid"]["pattern"])


def check(name: str) -> SchemaCheck:
    """Both validators of one schema, for the request path."""
    return SchemaCheck(fast=fast_validator(name), precise=validator(name))
