"""Errors as values at the edge: every refusal is JSON that says what is wrong and where.

Clients never see a stack trace. Anything unexpected becomes a 500 with a reference id
that the log line carries too, so that the 3 a.m. reader can find it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cds_service.logs import shown
from cds_service.validation import FieldError


class ApiError(Exception):
    """A refusal with an HTTP status, a stable error code and a human message."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        details: Sequence[FieldError] = (),
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        misconfigured: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = tuple(details)
        self.extra = extra or {}
        self.headers = headers or {}
        # A refusal that comes from how the client or this service is set up, not from
        # one call's data: it repeats on every call until someone fixes the settings, so
        # its request line is logged at WARNING (app.py), not INFO.
        self.misconfigured = misconfigured

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.details:
            out["details"] = [d.to_dict() for d in self.details]
        out.update(self.extra)
        return out

    def log_fields(self) -> str:
        """What the request's log line says of this refusal: the error code, the JSON
        paths of the field errors (never their messages, which may quote a value) and,
        for a 412, the prefetch keys that could not be had. Paths and keys are the
        client's names (a property it sent), so they are quoted and escaped as any
        client-chosen value on a log line is."""
        out = f" error={self.error}"
        if self.details:
            out += f" fields={shown(','.join(d.path for d in self.details))}"
        missing = [m.get("key") for m in self.extra.get("missing", []) if isinstance(m, dict)]
        if missing:
            out += f" missing={shown(','.join(str(k) for k in missing))}"
        return out
