"""The replay's intermediate files: the partition lines the first pass writes (each with
its patient, so a worker groups them unparsed) and the row parts the workers write (so
the mapping process receives counts, not rows)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from cds_service.impact.export import ProblemLog
from cds_service.impact.partition import partition_export, read_partition
from cds_service.impact.rowparts import MissingPart, read_parts, write_part
from cds_service.impact.summary import ReplayRow


def _row(patient: str, authored_on: str, order_id: str) -> ReplayRow:
    return ReplayRow(patient, order_id, "http://loinc.org|x", authored_on, date(2025, 1, 1))


def test_a_patient_id_with_a_tab_or_newline_keeps_its_lines_together(tmp_path: Path) -> None:
    odd = 'p\t1\n"x'  # no FHIR id looks like this; the partition file must still hold it
    export = tmp_path / "export"
    export.mkdir()
    patients = [{"resourceType": "Patient", "id": pid} for pid in (odd, "plain")]
    conditions = [
        {"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": f"Patient/{p}"}}
        for i, p in enumerate((odd, "plain", odd))
    ]
    for name, resources in (("Patient", patients), ("Condition", conditions)):
        lines = "".join(json.dumps(r) + "\n" for r in resources)
        (export / f"{name}.ndjson").write_text(lines, encoding="utf-8")
    partitioned = partition_export([export], tmp_path / "parts", ProblemLog(), partitions=1)
    read = list(read_partition(partitioned.partitions[0]))
    by_patient: dict[str, list[str]] = {}
    for _, _, patient, body in read:
        by_patient.setdefault(patient, []).append(json.loads(body)["id"])
    # the export's files in name order (Condition, then Patient), each file's lines in order
    assert by_patient == {odd: ["c0", "c2", odd], "plain": ["c1", "plain"]}


def test_a_part_written_twice_is_one_whole_part_in_row_order(tmp_path: Path) -> None:
    rows = [
        _row("b", "2025-01-02", "o3"),
        _row("a", "2025-01-05", "o2"),
        _row("a", "2025-01-01", "o1"),
    ]
    write_part(tmp_path, 7, rows[:1])
    write_part(tmp_path, 7, rows)  # a partition run again (a Dask retry) replaces its part
    write_part(tmp_path, 2, [_row("c", "2025-03-01", "o9")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows-00002.pickle", "rows-00007.pickle"]
    parts = list(read_parts(tmp_path, [7, 2]))
    assert [[r.order_id for r in part] for part in parts] == [["o1", "o2", "o3"], ["o9"]]


def test_a_missing_part_is_named(tmp_path: Path) -> None:
    write_part(tmp_path, 0, [])
    with pytest.raises(MissingPart, match="partition 3 "):
        list(read_parts(tmp_path, [0, 3]))
