"""A large synthetic patient for the benchmarks, and splitting transactions for loading.

The benchmark patient has many Observations and Conditions (a realistic prefetch of a
few hundred resources) with steadily falling CRP and pain, so the rules answer
advise-against; servers cap the size of one transaction, hence ``split_transaction``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cds_service.examples.stored import (  # shared FHIR constants
    _COND_CATEGORY,
    _COND_CLINICAL,
    _COND_VER,
    _OBS_CATEGORY,
    _TEST_DATA_LABEL,
    _UCUM,
    BASE_DATE,
)
from fhir_mappers.codesystems import ICD10CM, LOINC

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
        "code": {"coding": [{"system": ICD10CM, "code": code, "display": display}]},
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
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": subject,
        "effectiveDateTime": f"{when.isoformat()}T{hh:02d}:{mm:02d}:00Z",
        **value,
    }


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": _UCUM, "code": unit}
