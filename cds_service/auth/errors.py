"""How a refused client is described: a reason code for logs, a bare 401 for clients."""

from __future__ import annotations

from cds_service.logs import shown

REALM = "cds-services"


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


def www_authenticate(reason: str | None = None) -> str:
    """Value of ``WWW-Authenticate`` on a 401 (RFC 6750 section 3).

    No token at all gets the bare challenge; a presented but refused token
    adds ``error="invalid_token"``.  The specific reason is never sent: it
    would tell an attacker which check to work on.
    """
    if reason is None or reason == "missing-token":
        return f'Bearer realm="{REALM}"'
    return f'Bearer realm="{REALM}", error="invalid_token"'
