"""What the replay tests share: a small generated export, patients grouped from it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from cds_service.impact.export import patient_of
from spine_cds_dev.population import PopulationSpec, generate, patient_resources


def write_population(directory: Path, patients: int, seed: int = 1) -> Path:
    generate(PopulationSpec(patients, seed), directory)
    return directory


def patients_of(spec: PopulationSpec) -> dict[str, list[dict[str, Any]]]:
    """Each generated patient's resources, by patient id."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resources in patient_resources(spec):
        for resource in resources:
            pid = patient_of(resource)
            assert pid is not None
            grouped[pid].append(resource)
    return grouped
