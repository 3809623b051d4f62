"""How a refused client is described: a reason code for logs, a bare 401 for clients."""

from __future__ import annotations

import re

from cds_service.logs import shown
from cds_service.validation import json_type

REALM = "cds-services"

# Every reason a refusal can give. Each is explained in docs/integration.md ("When a call
# is refused"): an outside review found ten of them in the log and nowhere in the docs.
# tests/auth/test_reasons_documented.py holds the code's reasons to this set and this set
# to that table, so a new reason cannot reach the log undocumented.
REASONS = frozenset(
    {
        "missing-token",
        "malformed",
        "alg-not-allowed",
        "bad-typ",
        "missing-kid",
        "missing-claim:iss",
        "invalid-claim:iss",
        "unknown-issuer",
        "jku-not-allowed",
        "jku-required",
        "jku-list-unavailable",
        "jwks-unavailable",
        "unknown-kid",
        "key-mismatch",
        "bad-signature",
        "weak-key",
        "missing-claim:aud",
        "missing-claim:exp",
        "missing-claim:iat",
        "missing-claim:jti",
        "invalid-claim:aud",
        "wrong-audience",
        "invalid-claim:exp",
        "invalid-claim:iat",
        "invalid-claim:nbf",
        "expired",
        "iat-in-future",
        "not-yet-valid",
        "lifetime-too-long",
        "invalid-claim:jti",
        "invalid-claim:tenant",
        "missing-claim:tenant",
        "wrong-tenant",
        "replay-cache-unavailable",
        "replayed-jti",
    }
)
# A typ a refusal names as it came: what a media type is written with (RFC 6838), short.
_SHOWN_TYP = re.compile(r"[A-Za-z0-9!#$&^_.+/-]{1,64}")


class AuthError(Exception):
    """Authentication failed; ``reason`` is a short code safe to log.

    ``values`` are what an integrator needs to fix the refusal: the value presented and
    the one expected (``aud_presented``/``aud_expected``), the unknown ``iss``, the
    refused ``jku``, the JWKS URL and what its fetch gave. They go to the log only, never
    to the client (a bare 401 tells an attacker nothing), and are written with
    ``details()``: quoted, escaped and bounded, because the client chose most of them.
    The message is the reason only: the token is never part of it, nor of ``values``.
    """

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values

    def details(self) -> str:
        """``name=value`` pairs for a log line (empty when there are none)."""
        return " ".join(f"{name}={shown(value)}" for name, value in self.values.items())


def bad_typ(typ: object) -> AuthError:
    """The refusal of a header ``typ`` that names no JWT, saying what came: the value
    itself when it reads as a media type (``at+jwt``: an OAuth access token sent where
    the CDS client JWT belongs), else only what it is, a long or odd string being the
    client's text with nothing for the integrator in it. An outside review saw
    ``reason=bad-typ`` and nothing more."""
    if isinstance(typ, str) and _SHOWN_TYP.fullmatch(typ):
        came: dict[str, object] = {"typ": typ}
    elif isinstance(typ, str):
        came = {"typ_is": f"a string of {len(typ)} characters that is no media type"}
    else:
        came = {"typ_is": f"{json_type(typ)}, not a string"}  # as a 400 names a JSON type
    return AuthError("bad-typ", **came, typ_expected="JWT (or application/jwt)")


def www_authenticate(reason: str | None = None) -> str:
    """Value of ``WWW-Authenticate`` on a 401 (RFC 6750 section 3).

    No token at all gets the bare challenge; a presented but refused token
    adds ``error="invalid_token"``.  The specific reason is never sent: it
    would tell an attacker which check to work on.
    """
    if reason is None or reason == "missing-token":
        return f'Bearer realm="{REALM}"'
    return f'Bearer realm="{REALM}", error="invalid_token"'
