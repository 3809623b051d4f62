"""Reading a Bulk Data export: its NDJSON files, line by line, and what is wrong in them.

An export is a set of ``.ndjson`` files, one resource a line, one resource type a file
(the Bulk Data Access IG); the file's name usually says the type (``Patient.ndjson``,
``1.Observation.ndjson``, ``Observation_2.ndjson``). Each file is read as a stream of
lines, never whole. A line that is not JSON, not an object, of another type than its
file, or of a patient-linked type with no Patient reference is a ``Problem`` naming the
file and line, and reading goes on. The line's content is never quoted: it is patient
data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cds_service.impact.asof import VIEW_TYPES

__all__ = [
    "INCLUDED_TYPES",
    "ORDER_TYPE",
    "PERFORMED_TYPES",
    "READ_TYPES",
    "ExportFile",
    "Line",
    "Problem",
    "ProblemLog",
    "export_files",
    "patient_of",
    "read_lines",
]

#: The spine orders a replay replays.
ORDER_TYPE = "ServiceRequest"
#: What says a study was performed after an order (``basedOn``, or its date).
PERFORMED_TYPES = ("ImagingStudy", "Procedure")
#: What a search of a data source brings in through ``_include`` (no patient of its own).
INCLUDED_TYPES = ("Medication",)
#: The resource types a replay reads: a hook's data (the Patient and the type of each
#: declared data source, ``asof.VIEW_TYPES``), what the searches include, the orders and
#: the performed studies; other types in an export are counted and skipped.
READ_TYPES = frozenset({*VIEW_TYPES, *INCLUDED_TYPES, ORDER_TYPE, *PERFORMED_TYPES})
_NAME_PARTS = re.compile(r"[._\-\s]+")


@dataclass(frozen=True)
class Problem:
    """Something skipped, and where: the file, the line (None for the whole file)."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


class ProblemLog:
    """Every problem counted; the first ``keep`` kept for the summary; each one handed
    to ``on_problem`` as it is found (the command line prints it), so a broken export
    of millions of lines costs a counter, not a list."""

    def __init__(self, keep: int = 100, on_problem: Callable[[Problem], None] | None = None):
        self.keep = keep
        self.kept: list[Problem] = []
        self.count = 0
        self.files = 0  # of the count, whole files (missing, unreadable, empty)
        self.on_problem = on_problem

    def append(self, problem: Problem) -> None:
        self.count += 1
        if problem.line is None:
            self.files += 1
        if len(self.kept) < self.keep:
            self.kept.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)


@dataclass(frozen=True)
class ExportFile:
    """One NDJSON file; ``resource_type`` from its name, None when the name says none."""

    path: Path
    resource_type: str | None


@dataclass(frozen=True)
class Line:
    """One readable resource line: where it came from, the bytes as written, parsed."""

    file_index: int
    number: int
    raw: bytes
    resource: dict[str, Any]


def _type_from_name(path: Path) -> str | None:
    for part in _NAME_PARTS.split(path.name):
        if part in READ_TYPES:
            return part
    return None


def export_files(paths: Iterable[Path], problems: ProblemLog) -> list[ExportFile]:
    """The NDJSON files named (or held by the directories named), in a stable order, and
    a Problem for each path that does not exist or holds no NDJSON file."""
    files: list[ExportFile] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix == ".ndjson" and p.is_file())
            if not found:
                problems.append(Problem(str(path), None, "no .ndjson file in this directory"))
            files += [ExportFile(p, _type_from_name(p)) for p in found]
        elif path.is_file():
            files.append(ExportFile(path, _type_from_name(path)))
        else:
            problems.append(Problem(str(path), None, "no such file or directory: skipped"))
    return files


def patient_of(resource: dict[str, Any]) -> str | None:
    """The id of the patient a resource belongs to: a Patient's own id, else the id in
    its ``subject`` (or ``patient``) reference to a Patient; None when there is none."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and rid else None
    for name in ("subject", "patient"):
        ref = resource.get(name)
        target = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(target, str):
            head, sep, rid = target.rpartition("Patient/")
            if sep and rid and "/" not in rid and (not head or head.endswith("/")):
                return rid
            return None
    return None


def read_lines(
    export_file: ExportFile, file_index: int, problems: ProblemLog, skipped: dict[str, int]
) -> Iterator[Line]:
    """The resources of one file, streamed; a bad line adds a Problem and is skipped, a
    line of a type the replay does not read is counted in ``skipped`` (type -> lines)."""
    name = str(export_file.path)
    try:
        handle = export_file.path.open("rb")
    except OSError as exc:
        problems.append(Problem(name, None, f"cannot be read: {exc.strerror or exc}"))
        return
    with handle:
        for number, raw in enumerate(handle, 1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                resource = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                problems.append(Problem(name, number, f"not JSON ({exc.msg}): line skipped"))
                continue
            if not isinstance(resource, dict):
                problems.append(Problem(name, number, "not a JSON object: line skipped"))
                continue
            rtype = resource.get("resourceType")
            if not isinstance(rtype, str):
                problems.append(Problem(name, number, "no resourceType: line skipped"))
                continue
            if export_file.resource_type and rtype != export_file.resource_type:
                problems.append(
                    Problem(
                        name,
                        number,
                        f"a {rtype} in a file of {export_file.resource_type} resources: "
                        "line skipped",
                    )
                )
                continue
            if rtype not in READ_TYPES:
                skipped[rtype] = skipped.get(rtype, 0) + 1
                continue
            if rtype not in INCLUDED_TYPES and patient_of(resource) is None:
                what = "no id" if rtype == "Patient" else "no subject that references a Patient"
                problems.append(Problem(name, number, f"a {rtype} with {what}: line skipped"))
                continue
            yield Line(file_index, number, raw, resource)
