"""What the audit keeps of an invocation, and how it is written as text.

The records (``AuditRecord``, ``Refusal``, ``RefusalCount``), the store's protocol, and
the serialisation of a record's JSON columns without credentials. No database here: the
SQL store is ``audit.py``, its writer thread ``audit_queue.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

MAX_LABEL_LENGTH = 100  # a refusal's endpoint, service, reason or issuer, as stored
DECISIONS = frozenset(
    {
        "advise-against",
        "support",
        "support-urgent",
        "insufficient-data",
        "not-applicable",
        "error",
    }
)
# Keys (compared in lower case) whose values are credentials and never stored.
TOKEN_KEYS = frozenset(
    {
        "access_token",
        "authorization",
        "fhirauthorization",
        "id_token",
        "refresh_token",
        "token",
        "jwt",
        "password",
        "client_secret",
    }
)


@dataclass(frozen=True)
class AuditRecord:
    """One invocation as the audit keeps it; ``received_at`` must be timezone-aware."""

    hook_instance: str
    service_id: str
    hook: str
    received_at: datetime
    patient_key: str | None
    decision: str
    reason: str | None
    rules_fired: tuple[str, ...]
    counts: Mapping[str, int]
    data_sources: Mapping[str, str]
    card_uuids: tuple[str, ...]
    status: int
    latency_ms: float
    fhir_ms: float | None
    shadow: bool
    detail: Mapping[str, Any] = field(default_factory=dict)
    # Who was shown the cards: the trusted issuer (None: development mode). Kept in
    # ``audit_cards`` with each card uuid, not in ``audit_log``.
    client: str | None = None

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None or self.received_at.utcoffset() is None:
            raise ValueError("AuditRecord.received_at must be timezone-aware")
        if self.decision not in DECISIONS:
            raise ValueError(f"AuditRecord.decision {self.decision!r} is not one of {DECISIONS}")


@dataclass(frozen=True)
class Refusal:
    """A call refused before authentication (401): what is kept of it, as a count."""

    received_at: datetime
    endpoint: str
    service_id: str  # "-" when the path named no known service
    reason: str  # the verifier's reason code
    issuer: str  # a trusted issuer the token claimed, else "-" (never attacker text)
    status: int = 401


@dataclass(frozen=True)
class RefusalCount:
    """``audit_refusals``: how many refusals of one kind in one minute."""

    minute: datetime
    endpoint: str
    service_id: str
    reason: str
    issuer: str
    status: int
    count: int


def label(value: str) -> str:
    """A refusal's label as stored: printable ASCII, bounded (never a new row per byte)."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in value)
    return clean[:MAX_LABEL_LENGTH] or "-"


class AuditStore(Protocol):
    def record(self, rec: AuditRecord) -> None:
        """Store one record; never raises (a failure is logged and counted)."""
        ...

    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRecord]:
        """Records with ``since <= received_at < until``, oldest first."""
        ...

    def purge(self, older_than: datetime) -> int:
        """Delete records received before ``older_than``; how many went."""
        ...

    def record_refusal(self, refusal: Refusal) -> None:
        """Count one refused call in its minute; never raises."""
        ...

    def refusals(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[RefusalCount]:
        """The refusal counts of the minutes in ``[since, until)``, oldest first."""
        ...

    def card_shown_to(self, card_uuid: str, client: str | None, service_id: str) -> bool:
        """Whether the audit holds ``card_uuid`` as shown to ``client`` by ``service_id``."""
        ...


_LEAVES = frozenset({str, int, float, bool, type(None)})


def without_tokens(value: Any) -> Any:
    """``value`` with every mapping key that names a credential dropped, at any depth."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    # Leaves are tested inline: a detail holds thousands, and a call plus a Mapping
    # check for each made this walk cost more than the rest of the audit write.
    if kind is dict or isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = k if type(k) is str else str(k)
            if key.lower() not in TOKEN_KEYS:
                out[key] = v if type(v) in _LEAVES else without_tokens(v)
        return out
    if isinstance(value, list | tuple):
        return [v if type(v) in _LEAVES else without_tokens(v) for v in value]
    return value


_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def to_json(value: Any) -> str:
    """Compact JSON with sorted keys; orjson for speed (a detail is ~30 KB), the standard
    library for what orjson refuses (keys that are not strings, integers over 64 bits)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# The token keys that hold no other (a key containing "token" is caught by "token").
_TOKEN_WORDS = tuple(
    sorted(k for k in TOKEN_KEYS if not any(other != k and other in k for other in TOKEN_KEYS))
)


def detail_json(detail: Mapping[str, Any]) -> str:
    """``detail`` as JSON without credentials. It is serialised first and walked only when
    the text holds a word that may be part of such a key, in any case: the walk costs
    several times the serialisation, and the engine's details never hold such a key."""
    text = to_json(detail)
    lowered = text.lower()
    if any(word in lowered for word in _TOKEN_WORDS):
        text = to_json(without_tokens(detail))
    return text
