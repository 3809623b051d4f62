"""The CDS Hooks 2.0 prefetch templates filled for one request: ``{{context.patientId}}``
and the user tokens, each value URL-encoded, so that a template with no value in this
request is left out and said, never sent with a hole. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from cds_service.fhir.bundles import Problem

_TOKEN = re.compile(r"\{\{\s*([^{}\s]*)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9.\-]{1,64}$")


def _user_reference(context: Mapping[str, Any]) -> tuple[str, str] | None:
    """``context.userId`` as (resource type, id); it may also be given as an absolute URL."""
    user = context.get("userId")
    if not isinstance(user, str):
        return None
    parts = user.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-1]:
        return None
    return parts[-2], parts[-1]


def _token_value(name: str, context: Mapping[str, Any]) -> str | None:
    """The URL-encoded value of one template token, or None when the request has none."""
    if name in _USER_TOKENS:
        user = _user_reference(context)
        if user is None or user[0] != _USER_TOKENS[name]:
            return None
        value = user[1]
    elif name.startswith("context.") and "." not in name[len("context.") :]:
        raw = context.get(name[len("context.") :])
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            return None  # only root-level primitives can fill a template
        value = str(raw)
        if name == "context.userId" and _REFERENCE.match(value):
            return value  # "Practitioner/123": the slash is meant (e.g. a read template)
    else:
        return None
    if not value.strip("."):
        return None  # "." and ".." would climb the URL path
    return quote(value, safe="")


def render_queries(
    templates: Mapping[str, str], context: Mapping[str, Any]
) -> tuple[dict[str, str], tuple[Problem, ...]]:
    """Fill the CDS Hooks 2.0 tokens of each template; a template with a token that has no
    value in this request is left out and reported."""
    queries: dict[str, str] = {}
    problems: list[Problem] = []
    for key, template in templates.items():
        missing: list[str] = []

        def fill(match: re.Match[str], missing: list[str] = missing) -> str:
            value = _token_value(match.group(1), context)
            if value is None:
                missing.append(match.group(1) or "(empty)")
                return ""
            return value

        query = _TOKEN.sub(fill, template)
        if missing:
            names = ", ".join("{{" + name + "}}" for name in missing)
            problems.append(Problem(key, f"the template's {names} has no value in this request"))
        else:
            queries[key] = query
    return queries, tuple(problems)
