"""The as-of view: what was on the record when an order was placed, and nothing later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cds_service.bulk_export import DEFAULT_TYPES
from cds_service.datasources import SOURCES
from cds_service.impact import asof
from cds_service.impact.asof import RULES, VIEW_TYPES, as_of, is_before, missing_rules, order_time
from cds_service.impact.export import READ_TYPES
from cds_service.impact.replayer import Replayer, worker_settings
from cds_service.impact.run import ReplayError, ReplayOptions, run_replay
from cds_service.settings import load_settings
from cds_service.stores import PatientKeyer

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


def _ids(resources: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in resources]


def test_procedure_performed_before_the_order() -> None:
    base = {"resourceType": "Procedure", "status": "completed"}
    done = dict(base, id="a", performedDateTime="2025-03-09T09:00:00+01:00")
    period = dict(base, id="b", performedPeriod={"start": "2025-03-01", "end": "2025-03-20"})
    later = dict(base, id="c", performedDateTime="2025-03-10T10:30:00+01:00")
    later_period = dict(base, id="d", performedPeriod={"start": "2025-03-11"})
    undated = dict(base, id="e")
    view = as_of([done, period, later, later_period, undated], _when())
    assert _ids(view.resources) == ["a", "b"]
    assert view.undated == {"Procedure without a readable performed time": 1}


def test_imaging_study_started_before_the_order() -> None:
    base = {"resourceType": "ImagingStudy", "status": "available"}
    studies = [
        dict(base, id="a", started="2025-03-10T08:00:00+01:00"),
        dict(base, id="b", started="2025-03-10T10:00:00+01:00"),  # the order's instant
        dict(base, id="c", started="2025-03-10"),  # only the order's day: not provably before
        dict(base, id="d"),
    ]
    view = as_of(studies, _when())
    assert _ids(view.resources) == ["a"]
    assert view.undated == {"ImagingStudy without a readable started time": 1}


def test_diagnostic_report_effective_and_issued_before_the_order() -> None:
    base = {"resourceType": "DiagnosticReport", "status": "final"}
    reports = [
        dict(base, id="a", effectiveDateTime="2025-03-09T08:00:00Z", issued="2025-03-09T12:00:00Z"),
        # the study before the order, its report after: not on the chart
        dict(base, id="b", effectiveDateTime="2025-03-09T08:00:00Z", issued="2025-03-10T12:00:00Z"),
        dict(base, id="c", effectiveDateTime="2025-03-11T08:00:00Z"),
        dict(base, id="d", effectivePeriod={"start": "2025-03-08", "end": "2025-03-09"}),
        dict(base, id="e", effectivePeriod={"start": "2025-03-08", "end": "2025-03-12"}),
        dict(base, id="f", issued="2025-03-09T08:00:00Z"),  # no effective time: its issue
        dict(base, id="g"),
        dict(base, id="h", effectiveDateTime="yesterday"),
    ]
    view = as_of(reports, _when())
    assert _ids(view.resources) == ["a", "d", "f"]
    assert view.undated == {
        "DiagnosticReport without an effective or issued time": 1,
        "DiagnosticReport with an unreadable effective or issued time": 1,
    }


def test_the_patient_is_always_there() -> None:
    patient = {"resourceType": "Patient", "id": "p", "birthDate": "2025-03-11"}
    assert as_of([patient], _when()).resources == [patient]


def test_every_declared_data_source_has_a_date_rule() -> None:
    """The table of data sources is the one list: each type it reads, and the Patient,
    has its as-of rule; a new source without one fails here."""
    declared = {s.resource_type for s in SOURCES} | {"Patient"}
    assert declared <= set(RULES)
    assert declared == VIEW_TYPES
    assert missing_rules() == []
    assert missing_rules([*VIEW_TYPES, "Encounter"]) == ["Encounter"]


def test_a_type_without_a_rule_is_an_error_not_dropped_or_kept() -> None:
    with pytest.raises(ValueError, match="no as-of rule for resources of type 'Encounter'"):
        as_of([{"resourceType": "Encounter", "period": {"start": "2025-01-01"}}], _when())


def test_the_replay_refuses_to_start_with_a_source_it_cannot_date(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(asof, "VIEW_TYPES", VIEW_TYPES | {"Encounter"})
    expected = r"no as-of rule .* for the data source type Encounter"
    with pytest.raises(RuntimeError, match=expected):
        Replayer(worker_settings(load_settings(environ={})))
    options = ReplayOptions(
        inputs=[tmp_path],
        out_dir=tmp_path / "out",
        settings=load_settings(environ={}),
        patient_key=PatientKeyer("plain"),
        workers=1,
    )
    with pytest.raises(ReplayError, match=expected):
        run_replay(options)
    assert not (tmp_path / "out").exists()


def test_the_export_reader_reads_every_declared_type_and_export_asks_for_them() -> None:
    assert {s.resource_type for s in SOURCES} | {"Patient", "Medication"} <= READ_TYPES
    assert set(DEFAULT_TYPES) == READ_TYPES  # a replay's $export asks for what it reads


def test_the_docs_state_a_rule_for_each_type() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "replay.md").read_text("utf-8")
    section = text.split('## What "on the record at the order\'s time" means')[1].split("\n## ")[0]
    for rtype in RULES:
        assert f"`{rtype}`" in section, rtype
