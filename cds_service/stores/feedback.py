"""The feedback store: what clinicians did with the cards (accepted, overridden and why).

Feedback may arrive more than once (the spec allows retries, and with several
instances a retry may reach another one): each entry gets a key derived from its
whole content, the key is unique in the table, and ``INSERT ... ON CONFLICT DO
NOTHING`` lets the database itself decide which copy was first. The entry is kept as
JSON with the fields a report needs in columns, but only the fields the CDS Hooks spec
gives a feedback entry (``spec_fields``): anything else a client adds is dropped, so a
client cannot make the store keep what it likes. Each ``outcomeTimestamp`` is kept as the
UTC instant it names, spelled one way (``in_utc``), before the key is derived: the same
outcome sent as ``...48Z``, ``...48+00:00`` or ``...48.000Z`` is one outcome. ``all``
returns the entries in the order they happened (their ``outcomeTimestamp``), so the
report's "last feedback" of a card is the last the clinician gave, not the last to
arrive. Feedback is kept as long as the audit it refers to: ``purge`` is called with the
audit's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cds_service.stores.sql import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id {id},
    dedupe_key TEXT NOT NULL UNIQUE,
    service_id TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL,
    override_system TEXT,
    override_code TEXT,
    override_display TEXT,
    accepted_suggestions TEXT,
    entry_json TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card_uuid)
"""

INSERT = (
    "INSERT INTO feedback (dedupe_key, service_id, card_uuid, outcome, outcome_timestamp,"
    " override_system, override_code, override_display, accepted_suggestions, entry_json,"
    " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (dedupe_key) DO NOTHING"
)


# CDS Hooks 2.0 feedback: the fields of an entry, of an override reason, of a reason's
# Coding and of an accepted suggestion (the schema checked their types and lengths).
ENTRY_FIELDS = ("card", "outcome", "acceptedSuggestions", "overrideReason", "outcomeTimestamp")
OVERRIDE_FIELDS = ("reason", "userComment")
CODING_FIELDS = ("system", "code", "display")
SUGGESTION_FIELDS = ("id",)


def _only(value: Any, names: Sequence[str]) -> dict[str, Any]:
    return {k: value[k] for k in names if k in value} if isinstance(value, dict) else {}


def spec_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` with only the fields the CDS Hooks spec defines, at every level."""
    kept = _only(entry, ENTRY_FIELDS)
    if "acceptedSuggestions" in kept:
        kept["acceptedSuggestions"] = [
            _only(s, SUGGESTION_FIELDS) for s in kept["acceptedSuggestions"]
        ]
    if "overrideReason" in kept:
        override = _only(kept["overrideReason"], OVERRIDE_FIELDS)
        if "reason" in override:
            override["reason"] = _only(override["reason"], CODING_FIELDS)
        kept["overrideReason"] = override
    return kept


def not_stored(body: Mapping[str, Any], shown: Callable[[object], str] = str) -> list[str]:
    """The paths of the fields sent that ``spec_fields`` does not keep (an ``extension``,
    a field of a later CDS Hooks version), the body's own beside ``feedback`` too, for the
    answer to name: an integration review saw an entry's ``extension`` answered
    ``{"stored": 1}`` and gone without a word. ``shown`` writes each name as the answer
    repeats it (bounded, printable: its re-check saw names of 5,000 characters and
    control characters echoed as sent)."""
    paths: list[str] = []

    def unkept(value: object, names: Sequence[str], path: str) -> None:
        if isinstance(value, Mapping):
            paths.extend(f"{path}.{shown(name)}" for name in value if name not in names)

    unkept(body, ("feedback",), "$")
    for i, entry in enumerate(body.get("feedback") or ()):
        at = f"$.feedback[{i}]"
        unkept(entry, ENTRY_FIELDS, at)
        for j, suggestion in enumerate(entry.get("acceptedSuggestions") or ()):
            unkept(suggestion, SUGGESTION_FIELDS, f"{at}.acceptedSuggestions[{j}]")
        override = entry.get("overrideReason")
        unkept(override, OVERRIDE_FIELDS, f"{at}.overrideReason")
        if isinstance(override, Mapping):
            unkept(override.get("reason"), CODING_FIELDS, f"{at}.overrideReason.reason")
    return paths


def outcome_instant(stamp: str) -> datetime:
    """The instant an ``outcomeTimestamp`` (RFC 3339, with its time zone) names;
    ValueError when it names none (month 13, 31 February, no time zone). The one reading
    of it, for the route's check, the stored spelling and the order of ``all``. A lower-case
    ``t`` or ``z`` (RFC 3339 allows them) is read as upper case; a leap second (``:60``)
    as ``:59``, which Python's datetime cannot hold."""
    upper = stamp.upper()
    when = datetime.fromisoformat(upper[:17] + "59" + upper[19:] if _leap(upper) else upper)
    if when.tzinfo is None:
        raise ValueError(f"no time zone in {stamp!r}")
    try:
        # an instant that is no year 1-9999 in UTC ("0001-01-01T00:00:00+14:00") cannot be
        # stored in one spelling or ordered: an attack review's 500, now the route's 400
        when.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{stamp!r} is outside the years 1-9999 in UTC") from None
    return when


def _leap(stamp: str) -> bool:
    return stamp[17:19] == "60"


def in_utc(stamp: str) -> str:
    """``stamp`` as the one spelling of its instant: UTC, ``Z``, whole seconds and the
    fraction only when it is not zero, to the microsecond (``2026-12-07T22:00:00Z``,
    ``2026-12-07T22:00:00.25Z``). CDS Hooks gives the outcome time in UTC, and a
    review found the same instant stored three times when sent as ``...48Z``,
    ``...48+00:00`` and ``...48.000Z`` (the dedupe key is over the entry's text)."""
    when = outcome_instant(stamp).astimezone(UTC)
    # the year in four digits: strftime writes year 999 as "999", which is not RFC 3339
    # and which outcome_instant could not read back to order the report (a review)
    text = f"{when.year:04d}" + when.strftime("-%m-%dT%H:%M:%S")
    if _leap(stamp):  # offsets are whole minutes: the seconds are as sent
        text = text[:17] + "60"
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass(frozen=True)
class StoreResult:
    stored: int
    duplicates: int


class FeedbackStore(Protocol):
    def add(
        self,
        service_id: str,
        entries: Sequence[dict[str, Any]],
        now: datetime | None = None,
        client: str | None = None,
    ) -> StoreResult:
        """Store entries not seen before from ``client`` (the trusted issuer that sent
        them; None in development mode); report how many were repeats."""
        ...

    def all(self) -> list[dict[str, Any]]:
        """Every stored entry: ``{"service_id", "entry", "received_at"}``, in the order
        they happened (``outcomeTimestamp``; ties in the order they arrived)."""
        ...

    def purge(self, older_than: datetime) -> int:
        """Delete entries received before ``older_than``; how many went."""
        ...


def dedupe_key(service_id: str, entry: dict[str, Any], client: str | None = None) -> str:
    """Same service, same client and same entry content -> same key, whatever the key
    order. Two clients shown the same card (its uuid is the decision's, not the
    client's) each have their outcome kept: an attack review saw the second client's
    answered "duplicates": 1 and its outcome dropped. Without a client (development
    mode) the key is as it always was."""
    parts: list[Any] = [service_id, entry] if client is None else [service_id, client, entry]
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _row(service_id: str, entry: dict[str, Any], key: str, received: str) -> tuple[Any, ...]:
    reason = entry.get("overrideReason", {}).get("reason", {})
    accepted = entry.get("acceptedSuggestions")
    return (
        key,
        service_id,
        entry["card"],
        entry["outcome"],
        entry["outcomeTimestamp"],
        reason.get("system"),
        reason.get("code"),
        reason.get("display"),
        json.dumps(accepted) if accepted is not None else None,
        json.dumps(entry, sort_keys=True),
        received,
    )


class SqlFeedbackStore:
    """Feedback in the service's database (SQLite file or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        db.create_schema(SCHEMA)

    def add(
        self,
        service_id: str,
        entries: Sequence[dict[str, Any]],
        now: datetime | None = None,
        client: str | None = None,
    ) -> StoreResult:
        received = _received(now or datetime.now(UTC))
        kept = [spec_fields(e) for e in entries]
        for entry in kept:
            entry["outcomeTimestamp"] = in_utc(entry["outcomeTimestamp"])
        keyed = sorted(((dedupe_key(service_id, e, client), e) for e in kept), key=lambda p: p[0])
        stored = 0
        # Inserting in key order means two concurrent requests with overlapping entries
        # take the unique-index locks in the same order and cannot deadlock (PostgreSQL).
        with self._db.transaction() as tx:
            for key, entry in keyed:
                stored += tx.execute(INSERT, _row(service_id, entry, key, received))
        return StoreResult(stored=stored, duplicates=len(entries) - stored)

    def all(self) -> list[dict[str, Any]]:
        with self._db.transaction(write=False) as tx:
            rows = tx.query("SELECT service_id, entry_json, received_at FROM feedback ORDER BY id")
        stored = [
            {"service_id": service, "entry": json.loads(entry), "received_at": received}
            for service, entry, received in rows
        ]
        # In Python, not SQL: rows stored before ``in_utc`` keep the spelling they came in
        # (another zone, a fraction), whose text order is not time order. The sort is
        # stable, so the same instant keeps the order of arrival.
        return sorted(stored, key=_happened)

    def purge(self, older_than: datetime) -> int:
        with self._db.transaction() as tx:
            return tx.execute(
                "DELETE FROM feedback WHERE received_at < ?", (_received(older_than),)
            )


def _happened(row: dict[str, Any]) -> datetime:
    """When the clinician acted, by the entry's ``outcomeTimestamp``; for a row stored
    before that time was checked and cannot be read, when it was received."""
    try:
        return outcome_instant(str(row["entry"].get("outcomeTimestamp", "")))
    except ValueError:
        return datetime.fromisoformat(row["received_at"])


def _received(moment: datetime) -> str:
    """``received_at`` as stored (text in both dialects): UTC, fixed width, so that text
    order is time order (rows stored before used ``isoformat``: the same up to the
    microseconds, which it omits when zero, and which a day's retention does not see)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
