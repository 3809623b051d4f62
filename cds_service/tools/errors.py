"""Errors of the command-line tools, each with the exit code scripts can rely on.

0 ok, 1 a review found a mismatch, 2 usage or input errors, 3 FHIR server problems,
4 service errors. click prints the message as ``Error: ...`` on stderr and exits with
the code.
"""

from __future__ import annotations

import click

EXIT_MISMATCH = 1
EXIT_USAGE = 2
EXIT_FHIR = 3
EXIT_SERVICE = 4


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
