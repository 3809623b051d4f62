"""Bad input to ``spine-cds replay``: each bad line or missing file named with file and
line, the run going on with the rest, the count in the summary, no patient data shown."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from pathlib import Path

from click.testing import CliRunner

from cds_service.cli import main
from cds_service.impact.run import ROWS_CSV
from tests.impact.helpers import write_population

SECRET = "Zebedee-Quartermaine"  # a name in a broken line: must never be printed


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["replay", "--workers", "1", "--no-progress", *args])
    return result.exit_code, result.stdout, result.stderr


def _spoil(export: Path) -> None:
    patients = export / "Patient.ndjson"
    lines = patients.read_text(encoding="utf-8").splitlines()
    lines[2] = '{"resourceType": "Patient", "name": [{"family": "' + SECRET + '"'  # cut short
    lines[3] = json.dumps(
        {"resourceType": "Observation", "id": "x", "subject": {"reference": "Patient/a"}}
    )
    lines[4] = "[1, 2]"
    patients.write_text("\n".join(lines) + "\n", encoding="utf-8")
    observations = export / "Observation.ndjson"
    lines = observations.read_text(encoding="utf-8").splitlines()
    lines[1] = json.dumps(
        {"resourceType": "Observation", "id": "y", "subject": {"display": SECRET}}
    )
    observations.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_bad_lines_and_a_missing_file_are_named_and_skipped(tmp_path: Path) -> None:
    export = write_population(tmp_path / "export", 200)
    _spoil(export)
    missing = tmp_path / "Condition.2.ndjson"
    code, out, err = _run(
        str(export), str(missing), "--out", str(tmp_path / "out"), "--patient-id", "plain"
    )
    assert code == 0, err
    patients, observations = export / "Patient.ndjson", export / "Observation.ndjson"
    assert f"{patients}:3: not JSON" in err
    assert f"{patients}:4: a Observation in a file of Patient resources: line skipped" in err
    assert f"{patients}:5: not a JSON object: line skipped" in err
    assert f"{observations}:2: a Observation with no subject that references a Patient" in err
    assert f"{missing}: no such file or directory: skipped" in err
    assert SECRET not in err + out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["skippedLines"] == 4
    assert summary["skippedFiles"] == 1
    assert "lines skipped: 4; files skipped: 1" in out
    with (tmp_path / "out" / ROWS_CSV).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == summary["orders"] > 20  # the rest of the export was replayed


def test_no_readable_file_at_all_is_an_input_error(tmp_path: Path) -> None:
    code, _, err = _run(
        str(tmp_path / "nothing-here"), "--out", str(tmp_path / "out"), "--patient-id", "plain"
    )
    assert code == 2
    assert "no NDJSON file to read" in err and "nothing-here: no such file or directory" in err
    assert not (tmp_path / "out" / ROWS_CSV).exists()


def test_rows_name_patients_by_the_audits_keyed_hash(tmp_path: Path) -> None:
    export = write_population(tmp_path / "export", 60)
    config = tmp_path / "spine-cds.toml"
    key = "replay-test-key-0123456789abcdef"
    config.write_text(f'audit_hash_key = "{key}"\n', encoding="utf-8")
    code, _, err = _run(str(export), "--out", str(tmp_path / "out"), "--config", str(config))
    assert code == 0, err
    with (tmp_path / "out" / ROWS_CSV).open(encoding="utf-8") as handle:
        named = {row["patient"] for row in csv.DictReader(handle)}
    ids = {
        line.split('"id":"')[1].split('"')[0]
        for line in (export / "Patient.ndjson").read_text().splitlines()
    }
    expected = {hmac.new(key.encode(), pid.encode(), hashlib.sha256).hexdigest() for pid in ids}
    assert named and named <= expected
    assert not named & ids


def test_hashing_without_a_key_or_database_says_what_to_do(
    tmp_path: Path, monkeypatch: object
) -> None:
    export = write_population(tmp_path / "export", 5)
    config = tmp_path / "spine-cds.toml"
    config.write_text(f'database_path = "{tmp_path / "absent.sqlite3"}"\n', encoding="utf-8")
    code, _, err = _run(str(export), "--out", str(tmp_path / "out"), "--config", str(config))
    assert code == 2
    assert "audit_hash_key" in err and "--patient-id plain or omit" in err


def test_a_work_dir_used_before_holds_nothing_of_the_last_run(tmp_path: Path) -> None:
    work = tmp_path / "work"
    big = write_population(tmp_path / "big", 120)
    small = write_population(tmp_path / "small", 30)
    out = tmp_path / "out"
    common = ["--out", str(out), "--patient-id", "plain", "--work-dir", str(work)]
    assert _run(str(big), "--partitions", "12", *common)[0] == 0
    code, _, err = _run(str(small), "--partitions", "3", *common)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    with (out / ROWS_CSV).open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == summary["orders"]
    assert summary["patients"] == 30
