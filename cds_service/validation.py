"""Turning JSON Schema failures into errors a client developer can act on.

A 400 names the JSON path of each problem (``$.context.selections[0]``) and what was
expected, so an integration engineer can fix the request without reading our code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

import jsonschema_rs
from jsonschema import ValidationError
from jsonschema.validators import Draft202012Validator, extend

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


# JSON's names for what a body holds (JSON Schema's, with "integer" for a whole number):
# a client developer reads these, not Python's NoneType, str or list (an outside review).
_JSON_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int, which bool is too
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)
_WITH_ARTICLE = {
    "null": "null",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "an array",
    "object": "an object",
}


def json_type(value: object) -> str:
    """What a JSON value is, as JSON names it, with its article: "null", "an array"."""
    name = (
        "null" if value is None else next((n for k, n in _JSON_NAMES if isinstance(value, k)), "")
    )
    return _WITH_ARTICLE.get(name, "a value")


def _expected_types(expected: object) -> str:
    """A schema's ``type`` in words: "an object", "an object or null"."""
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join(_WITH_ARTICLE.get(str(name), str(name)) for name in names)


# The members each object of the body being explained must have (the object's id -> the
# names), noted as the schema's "required" keywords are checked: a null member is told to
# be left out only where it may be. Set for the length of one ``validate``.
_required_of: ContextVar[dict[int, set[str]] | None] = ContextVar("required_of", default=None)
_check_required = Draft202012Validator.VALIDATORS["required"]


def _noting_required(
    validator: Any, required: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    noted = _required_of.get()
    if noted is not None and isinstance(instance, dict) and isinstance(required, list):
        noted.setdefault(id(instance), set()).update(n for n in required if isinstance(n, str))
    yield from _check_required(validator, required, instance, schema)


# The validator that explains a refused body (``validate``): Draft 2020-12's, noting
# what each object requires.
ExplainingValidator = cast(
    type[Draft202012Validator],
    extend(Draft202012Validator, {"required": _noting_required}),  # type: ignore[no-untyped-call]
)


@dataclass(frozen=True)
class _NullMember:
    """A null where the schema has no null, kept small until every object's required
    members are known: where it is, what belongs there, and its object's id and name
    (none for an array's item or the body itself)."""

    path: str
    wanted: str
    parent: int | None
    name: str | None

    @classmethod
    def of(cls, error: ValidationError, body: Any) -> _NullMember:
        schema = error.schema if isinstance(error.schema, dict) else {}
        *parents, name = error.absolute_path or [0]
        parent = body
        for part in parents:
            parent = parent[part]
        path, wanted = json_path(error.absolute_path), _expected_types(schema.get("type"))
        if isinstance(name, str):
            return cls(path, wanted, id(parent), name)
        return cls(path, wanted, None, None)

    def message(self, required: dict[int, set[str]]) -> str:
        """What to do about it: some clients write an absent optional member as null, and
        the spec has it left out (an outside review saw "expected type 'object', got
        NoneType" and no way forward)."""
        if self.parent is None:
            return f"null is not allowed here: send {self.wanted}"
        if self.name in required.get(self.parent, ()):
            return f"null is not allowed here: the member is required, as {self.wanted}"
        return f"null is not allowed here: leave the member out (or send {self.wanted})"


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
        return f"expected {_expected_types(schema.get('type'))}, got {json_type(error.instance)}"
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
    (``reported``). A null member is told whether it may be left out only by an
    ``ExplainingValidator`` (``schemas.validator``); another says to leave it out."""
    found: dict[tuple[str, str], FieldError] = {}
    nulls: list[_NullMember] = []  # said once every object's required members are known
    required: dict[int, set[str]] = {}
    token = _required_of.set(required)
    try:
        for error in validator.iter_errors(instance):
            for leaf in _leaf_errors(error):
                if leaf.validator == "type" and leaf.instance is None:
                    nulls.append(_NullMember.of(leaf, instance))
                    continue
                parts = list(leaf.absolute_path)
                if leaf.validator == "required":
                    match = re.match(r"'([^']*)' is a required property", str(leaf.message))
                    if match:
                        parts.append(match.group(1))
                item = FieldError(json_path(parts), _describe(leaf))
                found.setdefault((item.path, item.message), item)
    finally:
        _required_of.reset(token)
    for null in nulls:
        item = FieldError(null.path, null.message(required))
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
