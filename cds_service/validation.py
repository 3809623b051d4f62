"""Turning JSON Schema failures into errors a client developer can act on.

A 400 names the JSON path of each problem (``$.context.selections[0]``) and what was
expected, so an integration engineer can fix the request without reading our code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from jsonschema import ValidationError
from jsonschema.validators import Draft202012Validator

MAX_REPORTED_ERRORS = 20
# A property name is the client's to choose: what an answer (and its audit row) repeats of
# one is bounded, and so is each path and message, however many or long the names sent.
MAX_NAME_CHARS = 40
MAX_PATH_CHARS = 200
MAX_MESSAGE_CHARS = 300
MAX_NAMES_LISTED = 3


def _bounded(text: str, limit: int) -> str:
    """``text`` without control characters, cut to ``limit`` characters with "…"."""
    text = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown_name(name: object) -> str:
    """A property name from the request as an error repeats it: printable, at most
    MAX_NAME_CHARS characters."""
    return _bounded(str(name), MAX_NAME_CHARS)


def shown_path(path: str) -> str:
    """A request path as an error repeats it: each segment as ``shown_name`` shows it (a
    service id the client made up is cut as the 404 for it cuts it; a route's own
    segments are shorter), the whole at most MAX_PATH_CHARS characters."""
    return _bounded("/".join(shown_name(part) for part in path.split("/")), MAX_PATH_CHARS)


@dataclass(frozen=True)
class FieldError:
    """One problem in a request body: where it is and what was expected (both bounded:
    MAX_PATH_CHARS and MAX_MESSAGE_CHARS)."""

    path: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _bounded(self.path, MAX_PATH_CHARS))
        object.__setattr__(self, "message", _bounded(self.message, MAX_MESSAGE_CHARS))

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def reported(errors: Sequence[FieldError], total: int | None = None) -> list[FieldError]:
    """At most MAX_REPORTED_ERRORS of ``errors``, the last saying how many more there were
    ("... (and 99980 more)"), so that an answer and its audit row stay small however many
    problems a body holds (an attack review: 100,000 bad selections gave an 11 MB 400 and
    an 11 MB audit row) and the client still learns its list is not whole. ``total``: how
    many there were when ``errors`` holds only the first of them (a caller with thousands
    need not make every one)."""
    count = len(errors) if total is None else total
    if count <= MAX_REPORTED_ERRORS:
        return list(errors)
    kept = list(errors[:MAX_REPORTED_ERRORS])
    last = kept[-1]
    more = f" (and {count - MAX_REPORTED_ERRORS} more)"
    kept[-1] = FieldError(last.path, _bounded(last.message, MAX_MESSAGE_CHARS - len(more)) + more)
    return kept


def json_path(parts: Iterable[Any]) -> str:
    """``["context", "selections", 0]`` -> ``$.context.selections[0]``; each name as
    ``shown_name`` repeats it."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{shown_name(part)}"
    return out


def _describe(error: ValidationError) -> str:
    """A short message that says what was expected, without echoing large values."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator = error.validator
    if validator == "required":
        return "required field is missing"
    if validator == "const":
        return f"expected {schema.get('const')!r}"
    if validator == "enum":
        return f"expected one of {schema.get('enum')!r}"
    if validator == "type":
        return f"expected type {schema.get('type')!r}, got {type(error.instance).__name__}"
    if validator == "pattern":
        what = schema.get("description") or f"a string matching {schema.get('pattern')}"
        return f"expected {what}"
    if validator == "minItems":
        return f"expected at least {schema.get('minItems')} item(s)"
    if validator == "maxItems":
        what = schema.get("description") or f"at most {schema.get('maxItems')} item(s)"
        return f"expected {what}"
    if validator == "minLength":
        return "expected a non-empty string"
    if validator == "maxLength":
        return f"expected at most {schema.get('maxLength')} characters"
    if validator == "dependentRequired":
        return str(error.message).replace("is a dependency of", "is required when sending")
    if validator == "minimum":
        return f"expected a number >= {schema.get('minimum')}"
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(schema.get("properties", {}))
        extra = [k for k in error.instance if k not in known]
        listed = ", ".join(repr(shown_name(k)) for k in extra[:MAX_NAMES_LISTED])
        more = f" and {len(extra) - MAX_NAMES_LISTED} more" if len(extra) > MAX_NAMES_LISTED else ""
        return f"unexpected field(s) {listed}{more}: expected only {sorted(known)!r}"[:300]
    return str(error.message)[:200]


def _leaf_errors(error: ValidationError) -> Iterable[ValidationError]:
    """allOf/$ref wrap the useful error; report the innermost ones."""
    if error.context:
        for sub in error.context:
            yield from _leaf_errors(sub)
    else:
        yield error


def validate(validator: Draft202012Validator, instance: Any) -> list[FieldError]:
    """All problems in ``instance``, ordered by path, at most MAX_REPORTED_ERRORS
    (``reported``)."""
    found: dict[tuple[str, str], FieldError] = {}
    for error in validator.iter_errors(instance):
        for leaf in _leaf_errors(error):
            parts = list(leaf.absolute_path)
            if leaf.validator == "required":
                match = re.match(r"'([^']*)' is a required property", str(leaf.message))
                if match:
                    parts.append(match.group(1))
            item = FieldError(json_path(parts), _describe(leaf))
            found.setdefault((item.path, item.message), item)
    return reported(sorted(found.values(), key=lambda e: (e.path, e.message)))


@dataclass(frozen=True)
class SchemaCheck:
    """One schema, checked fast and explained precisely (see cds_service.schemas).

    The compiled validator only ever lets a body through; the refusals and their
    messages come from jsonschema. A body that only the compiled one refuses is
    refused too, with its words: jsonschema reads a pattern's ``$`` as Python does, so
    ``"patient-1\n"`` passed ``^...$`` there, while JSON Schema's regular expressions
    (ECMA-262) end at the end of the string.
    """

    fast: jsonschema_rs.Validator
    precise: Draft202012Validator

    def problems(self, instance: Any) -> list[FieldError]:
        """What ``validate`` says of ``instance``: [] when it conforms."""
        if self.fast.is_valid(instance):
            return []
        return validate(self.precise, instance) or _fast_problems(self.fast, instance)


def _fast_problems(fast: jsonschema_rs.Validator, instance: Any) -> list[FieldError]:
    found: list[FieldError] = []
    for error in fast.iter_errors(instance):
        kind = error.kind
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Pattern):
            message = f"expected a string matching {kind.pattern} (with nothing after it)"
        else:  # not met so far: the two validators differ only on patterns
            message = "does not conform to the schema"
        found.append(FieldError(json_path(error.instance_path), message))
    return reported(sorted(found, key=lambda e: (e.path, e.message)))
