"""What the Bulk Data Access IG's answers mean, read without any I/O.

The completion manifest, ``Retry-After``, an OperationOutcome's words and the local
names of the files: each read here from values the shell hands in (the current time
too), so that a server's odd answer becomes a clear message naming the field, and the
shell in ``client`` only moves bytes.

Whatever a server says is bounded and escaped before it reaches a message: a hostile
or broken server must not be able to flood a terminal or write control characters to it.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cds_service.impact.export import READ_TYPES
from cds_service.tools.errors import outcome_issues

#: The resource types a replay reads (``cds_service.impact.export.READ_TYPES``, from the
#: table of data sources: a new source's type is exported too); ``--type`` replaces it.
DEFAULT_TYPES = tuple(sorted(READ_TYPES))

#: A FHIR resource type name: it becomes part of a local file name, so nothing else passes.
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
#: How much of a server's own text a message quotes.
SERVER_TEXT_LIMIT = 300
#: An ``_since`` value: a FHIR instant (the IG requires one), time zone included.
_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})",
)


class ProtocolError(ValueError):
    """An answer that does not follow the IG; the message names what is wrong."""


def is_resource_type(value: object) -> bool:
    return isinstance(value, str) and _RESOURCE_TYPE.fullmatch(value) is not None


def types_problem(types: Sequence[str]) -> str | None:
    """Why ``types`` cannot be asked for, or None."""
    if not types:
        return "at least one resource type is needed"
    for value in types:
        if not is_resource_type(value):
            return f"{escaped(value)} is not a FHIR resource type name"
    return None


def since_problem(since: str | None) -> str | None:
    """Why ``since`` is not a FHIR instant (``2024-01-31T00:00:00Z``), or None."""
    if since is None or _INSTANT.fullmatch(since):
        return None
    return (
        f"{escaped(since)} is not a FHIR instant: give a date and time with a time zone, "
        "such as 2024-01-31T00:00:00Z"
    )


def escaped(value: object, limit: int = SERVER_TEXT_LIMIT) -> str:
    """``value`` as one printable line of at most ``limit`` characters, quoted."""
    text = str(value)
    cut = len(text) > limit
    # repr escapes what is not printable (controls, line breaks) and keeps the rest.
    return repr(text[:limit] + ("..." if cut else ""))


def outcome_words(body: Any) -> str:
    """The diagnostics of an OperationOutcome (or a short view of any other body),
    bounded and escaped, for a message."""
    issues = outcome_issues(body)
    if issues is not None:
        if not issues:
            return "an OperationOutcome with no issues"
        return "OperationOutcome: " + escaped("; ".join(issues))
    if body is None or (isinstance(body, str) and not body.strip()):
        return "an empty body"
    return "body " + escaped(body if isinstance(body, str) else repr(body), 120)


def is_transient(body: Any) -> bool:
    """The IG's sign that a failed status request should be retried later: an
    OperationOutcome whose issues are all ``transient`` or one of its sub-codes, save
    ``exception``: servers use it for an export that failed for good, and retrying that
    would only wait for the deadline."""
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return False
    codes = [i.get("code") for i in body.get("issue") or [] if isinstance(i, Mapping)]
    transient = {"transient", "lock-error", "no-store", "timeout", "throttled", "incomplete"}
    return bool(codes) and all(code in transient for code in codes)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait that ``Retry-After`` asks for (delta-seconds or an HTTP-date),
    or None when it is absent or unreadable (the caller backs off on its own)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def wait_seconds(
    retry_after: float | None, previous: float | None, minimum: float, maximum: float
) -> float:
    """How long to wait before the next status request: what the server asked for,
    else twice the previous wait; always within [minimum, maximum]."""
    if retry_after is not None:
        wanted = retry_after
    elif previous is None:
        wanted = minimum
    else:
        wanted = previous * 2
    return min(maximum, max(minimum, wanted))


@dataclass(frozen=True)
class ManifestFile:
    """One ``output`` or ``error`` item of the manifest."""

    type: str
    url: str
    count: int | None


@dataclass(frozen=True)
class Manifest:
    """The completion manifest, checked."""

    transaction_time: str
    request: str
    requires_access_token: bool
    output: tuple[ManifestFile, ...]
    error: tuple[ManifestFile, ...]


def read_manifest(body: Any) -> Manifest:
    """The manifest of a complete export; ProtocolError naming the field otherwise."""
    if not isinstance(body, Mapping):
        raise ProtocolError("the completion manifest is not a JSON object")
    transaction_time = body.get("transactionTime")
    if not isinstance(transaction_time, str) or not transaction_time:
        raise ProtocolError("the completion manifest has no transactionTime")
    request = body.get("request")
    if not isinstance(request, str):
        raise ProtocolError("the completion manifest has no request URL")
    requires = body.get("requiresAccessToken")
    if not isinstance(requires, bool):
        raise ProtocolError("the completion manifest's requiresAccessToken is not true or false")
    return Manifest(
        transaction_time=transaction_time,
        request=request,
        requires_access_token=requires,
        output=_items(body, "output"),
        error=_items(body, "error"),
    )


def _items(body: Mapping[str, Any], name: str) -> tuple[ManifestFile, ...]:
    value = body.get(name, [])
    if not isinstance(value, list):
        raise ProtocolError(f"the completion manifest's {name} is not a list")
    items = []
    for i, item in enumerate(value):
        where = f"the completion manifest's {name}[{i}]"
        if not isinstance(item, Mapping):
            raise ProtocolError(f"{where} is not an object")
        rtype, url, count = item.get("type"), item.get("url"), item.get("count")
        if not is_resource_type(rtype):
            raise ProtocolError(f"{where}.type {escaped(rtype, 80)} is not a resource type")
        if not isinstance(url, str) or not url:
            raise ProtocolError(f"{where}.url is missing")
        if count is not None and (
            not isinstance(count, int) or isinstance(count, bool) or count < 0
        ):
            raise ProtocolError(f"{where}.count is not a whole number")
        items.append(ManifestFile(type=str(rtype), url=url, count=count))
    return tuple(items)


def local_names(files: Sequence[ManifestFile]) -> list[str]:
    """The file name each item is saved under: ``Patient.ndjson``, then
    ``Patient.2.ndjson``...; made from the checked type only, never from the URL, so a
    server cannot choose where a file lands."""
    seen: dict[str, int] = {}
    names = []
    for item in files:
        n = seen[item.type] = seen.get(item.type, 0) + 1
        names.append(f"{item.type}.ndjson" if n == 1 else f"{item.type}.{n}.ndjson")
    return names
