"""How a refused client is described: a reason code for logs, a bare 401 for clients."""

from __future__ import annotations

REALM = "cds-services"


class AuthError(Exception):
    """Authentication failed; ``reason`` is a short code safe to log.

    The message is the reason only: the token is never part of it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def www_authenticate(reason: str | None = None) -> str:
    """Value of ``WWW-Authenticate`` on a 401 (RFC 6750 section 3).

    No token at all gets the bare challenge; a presented but refused token
    adds ``error="invalid_token"``.  The specific reason is never sent: it
    would tell an attacker which check to work on.
    """
    if reason is None or reason == "missing-token":
        return f'Bearer realm="{REALM}"'
    return f'Bearer realm="{REALM}", error="invalid_token"'
