"""The first pass over an export: every line to its patient's partition file on disk.

An export is one file per resource type, so one patient's record is spread over all of
them. One streaming pass writes each readable line, as it was written, to the
partition its patient hashes to (CRC-32 of the id, stable across runs and machines),
prefixed with where it came from (file index and line number, for the messages of the
second pass) and its patient's id, so the second pass groups a partition's lines by
patient without parsing them: it keeps each patient's lines as bytes and parses one
patient at a time (a few bytes a line held, not a partition of dicts: the worker's
memory and the heap its garbage collector walks stay small). Memory is one line at a
time whatever the export's size; a partition holds about 1/n of the patients and is
what one worker loads at once. Medications, the one type with no patient, go to a file
of their own that every partition reads.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from cds_service.impact.export import (
    INCLUDED_TYPES,
    ExportFile,
    ProblemLog,
    export_files,
    patient_of,
    read_lines,
)

__all__ = ["Partitioned", "partition_count", "partition_export", "read_partition"]

#: Bytes of export per partition the automatic count aims at: what one worker holds.
TARGET_PARTITION_BYTES = 4 * 1024 * 1024
MAX_PARTITIONS = 512  # one open file each during the first pass
MEDICATIONS = "medications.ndjson"


@dataclass
class Partitioned:
    """What the first pass wrote and read."""

    files: list[ExportFile]
    partitions: list[Path]
    medications: Path
    lines_by_type: dict[str, int] = field(default_factory=dict)
    skipped_types: dict[str, int] = field(default_factory=dict)

    @property
    def file_names(self) -> list[str]:
        return [str(f.path) for f in self.files]


def partition_count(files: Iterable[ExportFile], workers: int) -> int:
    """Enough partitions to keep each near TARGET_PARTITION_BYTES, and at least four per
    worker so a slow partition does not leave the others idle at the end."""
    size = sum(f.path.stat().st_size for f in files if f.path.is_file())
    wanted = max(4 * max(workers, 1), math.ceil(size / TARGET_PARTITION_BYTES))
    return min(wanted, MAX_PARTITIONS)


def partition_of(patient_id: str, partitions: int) -> int:
    return zlib.crc32(patient_id.encode("utf-8")) % partitions


def partition_export(
    paths: Iterable[Path],
    work_dir: Path,
    problems: ProblemLog,
    partitions: int | None = None,
    workers: int = 1,
) -> Partitioned:
    """Read every file of the export once and write the partitions under ``work_dir``."""
    files = export_files(paths, problems)
    count = partitions or partition_count(files, workers)
    work_dir.mkdir(parents=True, exist_ok=True)
    result = Partitioned(
        files=files,
        partitions=[work_dir / f"part-{i:04d}.ndjson" for i in range(count)],
        medications=work_dir / MEDICATIONS,
    )
    with ExitStack() as stack:
        outs: list[IO[bytes]] = [stack.enter_context(p.open("wb")) for p in result.partitions]
        medications = stack.enter_context(result.medications.open("wb"))
        for index, export_file in enumerate(files):
            for line in read_lines(export_file, index, problems, result.skipped_types):
                rtype = str(line.resource["resourceType"])
                result.lines_by_type[rtype] = result.lines_by_type.get(rtype, 0) + 1
                if rtype in INCLUDED_TYPES:
                    medications.write(line.raw + b"\n")
                    continue
                patient = patient_of(line.resource)
                assert patient is not None  # read_lines skips the lines without one
                target = outs[partition_of(patient, count)]
                target.write(
                    b"%d\t%d\t%s\t%s\n"
                    # the id as a JSON string: no tab or newline can end the field early
                    % (line.file_index, line.number, orjson.dumps(patient), line.raw)
                )
    return result


def read_partition(path: Path) -> Iterator[tuple[int, int, str, bytes]]:
    """The lines of one partition file: (file index, line number, patient id, the
    resource's NDJSON line as the export had it, unparsed)."""
    with path.open("rb") as handle:
        for raw in handle:
            file_index, number, patient, body = raw.rstrip(b"\n").split(b"\t", 3)
            yield int(file_index), int(number), orjson.loads(patient), body
