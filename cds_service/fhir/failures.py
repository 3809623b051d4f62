"""Why an exchange with a FHIR server failed, in words an on-call engineer can act on.

Pure functions (no I/O): ``exchange`` hands them the status, the ``WWW-Authenticate``
header and at most ``OUTCOME_BYTES`` of an error answer's body, or the exception a
connection raised. Every reason is client-safe: it goes into a 412 body and the log line,
so it carries the server's codes (a status, an RFC 6750 error code, a FHIR issue-type
code: tokens from fixed vocabularies) and never free text from the server, which may
echo the query and so the patient id (an OperationOutcome's ``diagnostics`` often does).
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import orjson
import requests
import urllib3.exceptions

# An OperationOutcome that says why a search was refused is a few hundred bytes; one
# larger than this is not read for its code (the status alone is reported).
OUTCOME_BYTES = 4096
# The 31 codes of FHIR R4's IssueType (http://hl7.org/fhir/ValueSet/issue-type:
# ``not-supported``, ``login``, ``too-costly``...): only these are named; any other word
# the server put there may be free text (an attack review had a server's "john-smith"
# reach the 412 and the log).
_ISSUE_TYPES = frozenset(
    {
        "invalid", "structure", "required", "value", "invariant", "security", "login",
        "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
        "duplicate", "multiple-matches", "not-found", "deleted", "too-long", "code-invalid",
        "extension", "too-costly", "business-rule", "conflict", "transient", "lock-error",
        "no-store", "exception", "timeout", "incomplete", "throttled", "informational",
    }
)  # fmt: skip
# RFC 6750 section 3: ``Bearer realm="x", error="invalid_token", error_description="..."``.
# A parameter starts the header's list or follows a space or comma, and the ``=`` keeps
# ``error_description`` and ``error_uri`` from matching.
_BEARER_ERROR = re.compile(r'(?:^|[\s,])error\s*=\s*"?([A-Za-z_]+)')

# The search result parameters a server may not support (FHIR R4 search, 3.1.1.5).
_RESULT_PARAMETERS = ("_sort", "_count", "_include")

_STATUS_HINTS = {
    401: "access token missing or refused",
    403: "access not allowed",
    404: "not found",
    410: "gone",
    429: "too many requests",
}


def status_reason(
    status: int, www_authenticate: str = "", outcome_body: bytes = b"", url: str = ""
) -> str:
    """The reason for a non-200 answer: its status, what the status means, and the codes
    the server gave with it.

    A 401 whose ``WWW-Authenticate`` says ``error="invalid_token"`` is an expired or
    revoked token, not a missing one or a wrong scope: the EHR's token lifetime is then
    what to look at (an integrator's review found both read "missing or refused"). A
    FHIR server that refuses a search (``_sort`` or ``_include`` not supported) says why
    in an OperationOutcome: its first issue's code names the cause where the status
    alone left every call a 412 until someone guessed it (the same review)."""
    hint = _STATUS_HINTS.get(status, "")
    if not hint and 300 <= status < 400:
        hint = "redirects are not followed"
    elif not hint and status >= 500:
        hint = "server error"
    if status == 401 and bearer_error(www_authenticate) == "invalid_token":
        reason = (
            f"FHIR server answered {status}: "
            "access token refused as invalid or expired (invalid_token)"
        )
    else:
        reason = f"FHIR server answered {status}" + (f" ({hint})" if hint else "")
    code = outcome_code(outcome_body)
    if code:
        reason = f"{reason}; OperationOutcome issue code: {code}"
    asked = result_parameters(url) if status == 400 else []
    if asked:
        # A strict server refuses what it does not support, though asked to be lenient:
        # the parameters the integrator must check (an integration review: "not-supported"
        # alone did not say which).
        reason += f"; the search used {', '.join(asked)}, which the server must support or ignore"
    return reason


def result_parameters(url: str) -> list[str]:
    """The search result parameters (``_sort``, ``_count``, ``_include``) ``url`` uses, in
    the service's own spelling: only names from this fixed list are ever named, never a
    value (which holds the patient id)."""
    names = {name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    return [name for name in _RESULT_PARAMETERS if name in names]


def bearer_error(www_authenticate: str) -> str | None:
    """The RFC 6750 ``error`` code of a ``WWW-Authenticate`` header, if it has one."""
    found = _BEARER_ERROR.search(www_authenticate)
    return found.group(1) if found else None


def outcome_code(body: bytes) -> str | None:
    """The first issue's ``code`` of ``body`` when it is a small OperationOutcome and the
    code is a FHIR issue-type code; None otherwise (never the ``diagnostics``)."""
    if not body or len(body) > OUTCOME_BYTES:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("resourceType") != "OperationOutcome":
        return None
    issues = data.get("issue")
    if not isinstance(issues, list) or not issues or not isinstance(issues[0], dict):
        return None
    code = issues[0].get("code")
    return code if isinstance(code, str) and code in _ISSUE_TYPES else None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests wraps urllib3, which wraps the socket's error
    (as a cause, a context, an argument or a ``reason``)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        wrapped = (e.__cause__, e.__context__, getattr(e, "reason", None), *e.args)
        stack.extend(w for w in wrapped if isinstance(w, BaseException))


def connection_failure(exc: BaseException) -> str:
    """Why a connection to the FHIR server failed, in words an on-call engineer can act
    on: a private CA, a name that does not resolve and a refused port each say so (an
    integrator's review: all three read "refused, reset or closed", and a FHIR server
    behind a private CA is the usual go-live failure)."""
    causes = list(_causes(exc))
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return (
            "the FHIR server's TLS certificate is not trusted (a private CA must be in the "
            "service's CA bundle: REQUESTS_CA_BUNDLE)"
        )
    if any(isinstance(c, ssl.SSLError | requests.exceptions.SSLError) for c in causes):
        return "the TLS handshake with the FHIR server failed"
    if any(isinstance(c, socket.gaierror | urllib3.exceptions.NameResolutionError) for c in causes):
        return "the FHIR server's host name could not be resolved (DNS)"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "the FHIR server refused the connection (nothing listening at that port?)"
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return "the FHIR server reset the connection"
    return "the connection to the FHIR server failed (closed without an answer)"


def timeout_reason(exc: BaseException) -> str:
    """A connect timeout and a read timeout point at different problems (a firewall or
    a dead host; a slow server), so each says which it was."""
    if isinstance(exc, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError):
        return "could not connect to the FHIR server in time (connect timeout)"
    return "the FHIR server did not answer in time (read timeout)"
