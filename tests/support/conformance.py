"""Checks that every CDS Hooks response the tests see conforms to the spec.

The response schema says what may appear; ``find_empty_values`` adds the rule that
JSON Schema cannot say compactly: no null, and no empty string, array or object
anywhere except ``"cards": []``.
"""

from __future__ import annotations

from typing import Any

from cds_service import schemas
from cds_service.validation import json_path, validate


def find_empty_values(value: Any, path: tuple[Any, ...] = ()) -> list[str]:
    """JSON paths of every null, "", [] or {} in ``value`` (``$.cards`` itself allowed)."""
    found: list[str] = []
    if value is None or value == "" or value == [] or value == {}:
        if path != ("cards",):
            found.append(json_path(path))
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(find_empty_values(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(find_empty_values(item, (*path, index)))
    return found


def assert_conformant_response(body: Any) -> None:
    problems = validate(schemas.validator("response.schema.json"), body)
    assert not problems, f"response does not conform: {problems}"
    empties = find_empty_values(body)
    assert not empties, f"response has null or empty values at {empties}"
