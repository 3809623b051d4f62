"""The as-of view: what was on the record when an order was placed, and nothing later."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.impact.asof import as_of, is_before, order_time

ORDER = {"authoredOn": "2025-03-10T10:00:00+01:00"}


def _when() -> Any:
    when = order_time(ORDER)
    assert when is not None
    return when


@pytest.mark.parametrize(
    ("value", "before"),
    [
        ("2025-03-10T08:59:59+01:00", True),
        ("2025-03-10T09:00:00Z", False),  # 10:00+01:00 is 09:00Z: not before
        ("2025-03-10T08:59:59Z", True),
        ("2025-03-09", True),
        ("2025-03-10", False),  # a day known only as the order's day: not provably before
        ("2025-03", False),  # the month has days after the order
        ("2025-02", True),
        ("2025", False),
        ("2024", True),
        ("not a date", None),
        (None, None),
    ],
)
def test_is_before(value: object, before: bool | None) -> None:
    assert is_before(value, _when()) is before


def _obs(effective: str, issued: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Observation", "effectiveDateTime": effective}
    if issued:
        out["issued"] = issued
    out.update(extra)
    return out


def test_observation_needs_effective_and_issued_before_the_order() -> None:
    kept = _obs("2025-03-09T08:00:00+01:00", "2025-03-09T09:00:00+01:00", id="a")
    pending = _obs("2025-03-10T08:00:00+01:00", "2025-03-10T11:00:00+01:00", id="b")
    later = _obs("2025-03-11T08:00:00+01:00", id="c")
    no_issued = _obs("2025-03-10T07:00:00+01:00", id="d")
    undated = {"resourceType": "Observation", "id": "e"}
    view = as_of([kept, pending, later, no_issued, undated], _when())
    assert [r["id"] for r in view.resources] == ["a", "d"]
    assert view.undated == {"Observation without a readable effective time": 1}


def test_condition_recorded_after_the_order_is_left_out_even_with_an_earlier_onset() -> None:
    condition = {
        "resourceType": "Condition",
        "onsetDateTime": "2025-03-01T00:00:00Z",
        "recordedDate": "2025-03-11",
    }
    assert as_of([condition], _when()).resources == []


def test_condition_abated_after_the_order_was_active_then() -> None:
    condition = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"code": "resolved"}]},
        "recordedDate": "2025-01-01",
        "abatementDateTime": "2025-05-01",
    }
    [seen] = as_of([condition], _when()).resources
    assert "abatementDateTime" not in seen
    assert seen["clinicalStatus"]["coding"][0]["code"] == "active"
    abated_before = dict(condition, abatementDateTime="2025-02-01")
    [kept] = as_of([abated_before], _when()).resources
    assert kept["abatementDateTime"] == "2025-02-01"


def test_antibiotic_orders_authored_before_with_their_medication() -> None:
    before = {
        "resourceType": "MedicationRequest",
        "authoredOn": "2025-03-01T10:00:00Z",
        "medicationReference": {"reference": "Medication/m1"},
    }
    after = dict(before, authoredOn="2025-03-12T10:00:00Z")
    medication = {"resourceType": "Medication", "id": "m1"}
    view = as_of([before, after], _when(), {"Medication/m1": medication})
    assert view.resources == [before, medication]
