"""The stored example patients: loading them, placed on a chosen order date.

The worked examples of the clinical rules (E1..E10 of the design's example scenarios,
plus seven more that exercise other rules and the 2026-11-28 revision) are stored as
JSON under ``patients/``, with day 0 (the episode onset, T0) on a fixed base date.
Nothing here reads the clock: the caller says on which date each order is placed, and
every date in the data is moved by the same number of days, so the same patients serve
tests, the demo and a FHIR server loaded on any day.

Every entry is a ``PUT`` with a fixed id, so loading a bundle twice leaves one copy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

#: Values of ``Example.expected``.
EXPECTED_VALUES = frozenset(
    {"advise-against", "support", "support-urgent", "insufficient-data", "no-card"}
)

_UCUM = "http://unitsofmeasure.org"
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
# Security label "test health data", as on the stored patients: marks synthetic records.
_TEST_DATA_LABEL = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "HTEST",
    "display": "test health data",
}

# A full-day date, optionally followed by a time and an offset. Only the date part is moved;
# the rest is kept character for character. Year or year-month precision values are left
# alone: "move by n days" has no meaning for them.
_DATE_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?"
)


@dataclass(frozen=True)
class Example:
    """One example patient, its data placed so that the order falls on a chosen date."""

    key: str
    patient_id: str
    title: str
    story: str
    expected: str
    why: str
    order_day: int
    bundle: dict[str, Any]
    draft_order: dict[str, Any]


def shift_dates(resource: Any, days: int) -> Any:
    """Return a copy of ``resource`` with every full date string moved by ``days`` days.

    Works on any JSON-like value (dicts, lists, strings, numbers). Strings that are a FHIR
    date, dateTime or instant with at least day precision are moved; time of day, fractional
    seconds and time-zone offset are kept exactly, and a date-only value stays date-only.
    """
    if isinstance(resource, str):
        return _shift_string(resource, days)
    if isinstance(resource, Mapping):
        return {key: shift_dates(value, days) for key, value in resource.items()}
    if isinstance(resource, list | tuple):
        return [shift_dates(item, days) for item in resource]
    return resource


def _shift_string(value: str, days: int) -> str:
    match = _DATE_RE.fullmatch(value)
    if match is None:
        return value
    try:
        moved = date.fromisoformat(match.group(1)) + timedelta(days=days)
    except ValueError:
        return value  # looks like a date but is not one (e.g. month 13): not ours to touch
    return moved.isoformat() + (match.group(2) or "")


def not_after(resource: Any, latest: datetime) -> Any:
    """A copy of ``resource`` in which every date-time with a time zone that lies after
    ``latest`` is ``latest`` itself, written in the value's own offset (``Z`` kept)."""
    if isinstance(resource, str):
        match = _DATE_RE.fullmatch(resource)
        if match is None or not match.group(2):
            return resource
        try:
            when = datetime.fromisoformat(resource)
        except ValueError:
            return resource
        if when.tzinfo is None or when <= latest:
            return resource
        moved = latest.astimezone(when.tzinfo).replace(microsecond=0)
        return moved.strftime("%Y-%m-%dT%H:%M:%SZ") if resource.endswith("Z") else moved.isoformat()
    if isinstance(resource, Mapping):
        return {key: not_after(value, latest) for key, value in resource.items()}
    if isinstance(resource, list | tuple):
        return [not_after(item, latest) for item in resource]
    return resource


def load_examples_as_of(now: datetime) -> list[Example]:
    """All examples placed for a client whose orders carry no date and are judged at the
    moment they are placed (the CDS Hooks sandbox): each order on the day ``now`` is in
    its example's own time zone, and nothing dated later than ``now`` (the day's results,
    stored at 08:00 local, and the order's own 10:00). With one date for all, a sandbox
    user in the early UTC hours saw the day's results "dated after the order" and another
    card than the one printed for the patient."""
    examples = []
    for meta in _index()["examples"]:
        offset = str(meta["tz_offset"])
        zone = datetime.fromisoformat(f"2000-01-01T00:00:00{offset}").tzinfo
        example = _build(meta, now.astimezone(zone).date())
        examples.append(
            replace(
                example,
                bundle=not_after(example.bundle, now),
                draft_order=not_after(example.draft_order, now),
            )
        )
    return examples


def example_keys() -> list[str]:
    """Keys of all stored examples, in index order."""
    return [str(meta["key"]) for meta in _index()["examples"]]


def load_examples(order_date: date) -> list[Example]:
    """All examples, each shifted so that its order is placed on ``order_date``."""
    return [_build(meta, order_date) for meta in _index()["examples"]]


def load_example(key: str, order_date: date) -> Example:
    """One example by key (e.g. ``"e01-improving"``), its order placed on ``order_date``."""
    for meta in _index()["examples"]:
        if meta["key"] == key:
            return _build(meta, order_date)
    raise KeyError(f"no example {key!r}; known: {', '.join(example_keys())}")


def _build(meta: Mapping[str, Any], order_date: date) -> Example:
    order_day = int(meta["order_day"])
    # Stored day 0 is the base date; after the shift day 0 is order_date - order_day.
    days = (order_date - timedelta(days=order_day) - _base_date()).days
    patient_id = str(meta["patient_id"])
    return Example(
        key=str(meta["key"]),
        patient_id=patient_id,
        title=str(meta["title"]),
        story=str(meta["story"]),
        expected=str(meta["expected"]),
        why=str(meta["why"]),
        order_day=order_day,
        bundle=shift_dates(_stored_bundle(str(meta["key"])), days),
        draft_order=_draft_order(
            patient_id,
            dict(meta["order_coding"]),
            order_date,
            str(meta["tz_offset"]),
            meta.get("order_priority"),
            meta.get("order_reason"),
        ),
    )


def _draft_order(
    patient_id: str,
    coding: dict[str, Any],
    order_date: date,
    tz_offset: str,
    priority: str | None = None,
    reason: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The imaging order as an EHR would put it in ``draftOrders``; an example may give it
    a priority and a stated reason (``order_priority``, ``order_reason``: a
    CodeableConcept), as the imaging revision's examples do."""
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"{patient_id}-order",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [coding], "text": coding.get("display", coding["code"])},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": f"{order_date.isoformat()}T10:00:00{tz_offset}",
    }
    if priority is not None:
        order["priority"] = priority
    if reason is not None:
        order["reasonCode"] = [reason]
    return order


@lru_cache(maxsize=1)
def _index() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_patients_dir().joinpath("index.json").read_text("utf-8"))
    return data


@cache
def _stored_bundle(key: str) -> dict[str, Any]:
    # Cached and never handed out: shift_dates always returns a fresh copy.
    data: dict[str, Any] = json.loads(_patients_dir().joinpath(f"{key}.json").read_text("utf-8"))
    return data


def _patients_dir() -> Traversable:
    return files(__package__ or "cds_service.examples").joinpath("patients")


def _base_date() -> date:
    return date.fromisoformat(str(_index()["base_date"]))


BASE_DATE: date = _base_date()
"""Day 0 (T0) in the stored files."""
