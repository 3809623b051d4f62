"""Synthetic example patients as FHIR R4 transaction Bundles.

The worked examples of the clinical rules (E1..E10 of the design's example scenarios, plus
two more that exercise other rules) are stored as JSON under ``patients/``, with day 0 (the
episode onset, T0) on a fixed base date. Nothing here reads the clock: the caller says on
which date each order is placed, and every date in the data is moved by the same number of
days, so the same patients serve tests, the demo and a FHIR server loaded on any day.

Every entry is a ``PUT`` with a fixed id, so loading a bundle twice leaves one copy.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

__all__ = [
    "BASE_DATE",
    "BENCHMARK_EXPECTED",
    "BENCHMARK_ORDER_DAY",
    "EXPECTED_VALUES",
    "Example",
    "benchmark_bundle",
    "example_keys",
    "load_example",
    "load_examples",
    "shift_dates",
    "split_transaction",
]

#: Values of ``Example.expected``.
EXPECTED_VALUES = frozenset(
    {"advise-against", "support", "support-urgent", "insufficient-data", "no-card"}
)

_LOINC = "http://loinc.org"
_ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
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
            patient_id, dict(meta["order_coding"]), order_date, str(meta["tz_offset"])
        ),
    )


def _draft_order(
    patient_id: str, coding: dict[str, Any], order_date: date, tz_offset: str
) -> dict[str, Any]:
    """The imaging order as an EHR would put it in ``draftOrders``."""
    return {
        "resourceType": "ServiceRequest",
        "id": f"{patient_id}-order",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [coding], "text": coding.get("display", coding["code"])},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": f"{order_date.isoformat()}T10:00:00{tz_offset}",
    }


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
    return files(__name__).joinpath("patients")


def _base_date() -> date:
    return date.fromisoformat(str(_index()["base_date"]))


BASE_DATE: date = _base_date()
"""Day 0 (T0) in the stored files."""


# --- benchmark patient -------------------------------------------------------------------

#: Day (from T0) on which a benchmark patient's order is meant to be placed; all its
#: observations lie before it.
BENCHMARK_ORDER_DAY = 42
#: What the rules should answer for a benchmark patient (steadily falling CRP and pain).
BENCHMARK_EXPECTED = "advise-against"

# Comorbidities for the benchmark patient: common ICD-10-CM codes unrelated to the spine.
_COMORBIDITIES: tuple[tuple[str, str], ...] = (
    ("I10", "Essential (primary) hypertension"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("E03.9", "Hypothyroidism, unspecified"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("E66.9", "Obesity, unspecified"),
    ("I48.91", "Unspecified atrial fibrillation"),
    ("F32.9", "Major depressive disorder, single episode, unspecified"),
)

_BENCH_LOINC = {
    "crp": ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "laboratory"),
    "esr": ("4537-7", "Erythrocyte sedimentation rate by Westergren method", "laboratory"),
    "pain": ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "survey"),
}


def benchmark_bundle(
    patient_id: str, n_observations: int = 200, n_conditions: int = 10
) -> dict[str, Any]:
    """A large, deterministic transaction Bundle for load tests.

    One Patient, one lumbar vertebral osteomyelitis Condition (onset on ``BASE_DATE``) plus
    ``n_conditions - 1`` unrelated comorbidities, and ``n_observations`` CRP, ESR and pain
    Observations spread over days 0 to ``BENCHMARK_ORDER_DAY - 1``, all falling steadily (so
    the expected answer is ``BENCHMARK_EXPECTED``). Dates are stored-base dates: move them
    with ``shift_dates``. Ids derive from ``patient_id``, so several benchmark patients can
    live in one server.
    """
    if n_observations < 0 or n_conditions < 1:
        raise ValueError("need n_observations >= 0 and n_conditions >= 1")
    subject = {"reference": f"Patient/{patient_id}"}
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": patient_id,
            "meta": {"security": [dict(_TEST_DATA_LABEL)]},
            "name": [{"family": "Example", "given": ["Benchmark"], "text": "Benchmark Example"}],
            "gender": "unknown",
            "birthDate": "1960-06-15",
        },
        _bench_condition(
            f"{patient_id}-nvo", "M46.26", "Osteomyelitis of vertebra, lumbar region", subject, 0
        ),
    ]
    for i in range(n_conditions - 1):
        code, display = _COMORBIDITIES[i % len(_COMORBIDITIES)]
        # Years before the episode; a repeat of the list is a later, separate entry.
        onset = -3650 + 30 * i
        resources.append(_bench_condition(f"{patient_id}-cond-{i}", code, display, subject, onset))
    span_minutes = (BENCHMARK_ORDER_DAY - 1) * 24 * 60
    kinds = ("crp", "esr", "pain")
    for i in range(n_observations):
        kind = kinds[i % len(kinds)]
        minutes = span_minutes * i // max(n_observations, 1) + 7 * 60
        resources.append(_bench_observation(f"{patient_id}-obs-{i}", kind, subject, minutes))
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def split_transaction(bundle: Mapping[str, Any], max_entries: int = 50) -> list[dict[str, Any]]:
    """Split a transaction Bundle into consecutive transactions of at most ``max_entries``.

    Servers cap the size of one transaction (the project's test server allows 50 updates),
    while a benchmark patient has hundreds of resources. Entry order is kept, so the Patient
    (first) is stored before anything that refers to it. Atomicity is per part only, which
    is fine for idempotent PUTs of test data.
    """
    if max_entries < 1:
        raise ValueError("max_entries must be >= 1")
    entries = list(bundle.get("entry", []))
    return [
        {"resourceType": "Bundle", "type": "transaction", "entry": entries[i : i + max_entries]}
        for i in range(0, len(entries), max_entries)
    ]


def _bench_condition(
    rid: str, code: str, display: str, subject: dict[str, str], onset_day: int
) -> dict[str, Any]:
    onset = BASE_DATE + timedelta(days=onset_day)
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {"coding": [{"system": _COND_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": _COND_VER, "code": "confirmed"}]},
        "category": [{"coding": [{"system": _COND_CATEGORY, "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": _ICD10CM, "code": code, "display": display}]},
        "subject": subject,
        "onsetDateTime": f"{onset.isoformat()}T07:00:00Z",
        "recordedDate": onset.isoformat(),
    }


def _bench_observation(
    rid: str, kind: str, subject: dict[str, str], minutes: int
) -> dict[str, Any]:
    code, display, category = _BENCH_LOINC[kind]
    t = minutes / (24 * 60)  # days since T0
    when = BASE_DATE + timedelta(days=minutes // (24 * 60))
    hh, mm = divmod(minutes % (24 * 60), 60)
    value: dict[str, Any]
    # Monotonic curves, so no noise can look like a rise or a worse pain score.
    if kind == "crp":
        crp = round(150 * math.exp(-t / 12) + 4, 1)
        value = {"valueQuantity": _quantity(crp, "mg/L")}
    elif kind == "esr":
        esr = round(95 * math.exp(-t / 40) + 10)
        value = {"valueQuantity": _quantity(esr, "mm/h")}
    else:
        pain = max(1, 8 - int(t) // 6)
        value = {"valueQuantity": _quantity(pain, "{score}")}
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{"system": _OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": _LOINC, "code": code, "display": display}]},
        "subject": subject,
        "effectiveDateTime": f"{when.isoformat()}T{hh:02d}:{mm:02d}:00Z",
        **value,
    }


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": _UCUM, "code": unit}
