"""The synthetic population: deterministic, shaped like the examples, with what replay needs."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

from cds_service.datasources import SOURCES
from cds_service.examples import example_keys, load_example
from spine_cds_dev.population import RESOURCE_TYPES, PopulationSpec, generate, main


def _read(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_seed_same_bytes_and_a_smaller_population_is_a_prefix(tmp_path: Path) -> None:
    generate(PopulationSpec(300, seed=7), tmp_path / "a")
    generate(PopulationSpec(300, seed=7), tmp_path / "b")
    generate(PopulationSpec(100, seed=7), tmp_path / "small")
    generate(PopulationSpec(300, seed=8), tmp_path / "other")
    assert _read(tmp_path / "a") == _read(tmp_path / "b")
    assert _read(tmp_path / "a") != _read(tmp_path / "other")
    for name, content in _read(tmp_path / "small").items():
        assert (tmp_path / "a" / name).read_bytes().startswith(content)


def test_every_line_is_a_resource_of_its_file_linked_to_a_written_patient(tmp_path: Path) -> None:
    counts = generate(PopulationSpec(500), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{t}.ndjson" for t in RESOURCE_TYPES
    )
    patients = {
        json.loads(line)["id"] for line in (tmp_path / "Patient.ndjson").read_text().splitlines()
    }
    assert len(patients) == 500 == counts["Patient"]
    statuses: Counter[str] = Counter()
    for rtype in RESOURCE_TYPES[1:]:
        for line in (tmp_path / f"{rtype}.ndjson").read_text().splitlines():
            resource = json.loads(line)
            assert resource["resourceType"] == rtype
            assert resource["subject"]["reference"].removeprefix("Patient/") in patients
            if rtype == "ServiceRequest":
                statuses[resource["status"]] += 1
    # orders with and without a study after them, antibiotics, studies of both kinds, and
    # the examples' spine operation (e39), earlier study and imaging report (e40)
    assert statuses["completed"] > 0 and statuses["revoked"] > 0
    assert min(counts[t] for t in RESOURCE_TYPES) > 0
    procedures = (tmp_path / "Procedure.ndjson").read_text()
    assert '"code":"22612"' in procedures  # e39's fusion, not only performed studies


def test_every_type_a_data_source_reads_and_the_examples_hold_has_a_file() -> None:
    """The examples' types (a new one fails here, not mid-run) and each declared data
    source's type, so every source flows through the replay of the population."""
    example_types = {
        resource["resourceType"]
        for key in example_keys()
        for entry in load_example(key, date(2026, 3, 2)).bundle["entry"]
        for resource in [entry["resource"]]
    }
    declared = {s.resource_type for s in SOURCES}
    assert example_types | declared | {"ServiceRequest"} <= set(RESOURCE_TYPES)
    assert "DiagnosticReport" in example_types  # e40: the test sees a report to write


def test_command_line(tmp_path: Path) -> None:
    assert main([str(tmp_path / "out"), "--patients", "20", "--seed", "3"]) == 0
    assert (tmp_path / "out" / "Patient.ndjson").read_text().count("\n") == 20
