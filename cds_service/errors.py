"""Errors as values at the edge: every refusal is JSON that says what is wrong and where.

Clients never see a stack trace. Anything unexpected becomes a 500 with a reference id
that the log line carries too, so that the 3 a.m. reader can find it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = tuple(details)
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.details:
            out["details"] = [d.to_dict() for d in self.details]
        out.update(self.extra)
        return out
