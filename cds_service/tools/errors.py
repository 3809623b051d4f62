"""Errors of the command-line tools, each with the exit code scripts can rely on.

0 ok, 1 a review found a mismatch, 2 usage or input errors, 3 FHIR server problems,
4 service errors, 5 a search found nothing to judge (``observation-codes``: a patient
with no Observation, which a wrong id or a token's narrow scope gives too: exit 0 would
read as the all clear it is not). click prints the message as ``Error: ...`` on stderr
and exits with the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
import requests

EXIT_MISMATCH = 1
EXIT_USAGE = 2
EXIT_FHIR = 3
EXIT_SERVICE = 4
EXIT_NONE_FOUND = 5


class ToolError(click.ClickException):
    """A failure the user can act on; subclasses fix the exit code."""


class InputError(ToolError):
    """A wrong option or input file (exit 2)."""

    exit_code = EXIT_USAGE


class FhirServerError(ToolError):
    """The FHIR server could not be reached, refused us, or lacks what was asked (exit 3)."""

    exit_code = EXIT_FHIR


class ServiceError(ToolError):
    """The CDS service could not be reached or answered with an error (exit 4)."""

    exit_code = EXIT_SERVICE


def connection_reason(exc: BaseException) -> str:
    """A short reason (refused, unknown host, ...) instead of urllib3's nested repr."""
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host (name resolution failed)"),
        ("timed out", "connection timed out"),
        ("RemoteDisconnected", "the server closed the connection without answering"),
        ("Connection reset", "connection reset"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
    ):
        if needle in text:
            return reason
    return text[:300]


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    peer: str,
    error: type[ToolError],
    misuse: type[ToolError] = InputError,
    prefix: str = "",
    **kwargs: Any,
) -> requests.Response:
    """One request of the tools; a failure before an answer raised in words a person can
    act on, with ``prefix`` before them: a timeout or a connection that failed as
    ``error`` ("cannot reach the FHIR server at ...: connection refused"), a request that
    could not be sent (a malformed URL or header) as ``misuse``, named by its type alone
    (its text may quote the URL's query or a header, a token among them)."""
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout:
        raise error(f"{prefix}{peer} did not answer within {timeout:g} s") from None
    except requests.ConnectionError as exc:
        raise error(f"{prefix}cannot reach {peer}: {connection_reason(exc)}") from None
    except requests.RequestException as exc:
        raise misuse(f"{prefix}cannot call {peer}: {type(exc).__name__}") from None


def json_or_text(response: requests.Response) -> Any:
    """The body as JSON, else as text."""
    try:
        return response.json()
    except ValueError:
        return response.text


def outcome_issues(body: Any) -> list[str] | None:
    """Each issue of an OperationOutcome as text (its diagnostics, else its details'
    text, else its code; with the FHIRPath of ``expression`` when it gives one), or None
    when ``body`` is not an OperationOutcome: the one reading of a FHIR server's own
    explanation for the tools and the bulk export."""
    if not (isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome"):
        return None
    parts = []
    for issue in body.get("issue") or []:
        if not isinstance(issue, Mapping):
            continue
        details = issue.get("details")
        details_text = details.get("text") if isinstance(details, Mapping) else None
        text = issue.get("diagnostics") or details_text or issue.get("code") or "?"
        where = ", ".join(str(e) for e in issue.get("expression") or [])
        parts.append(f"{text} ({where})" if where else str(text))
    return parts
