"""A partition's replayed rows on disk: written by the worker that replayed it, read back
in partition order by the process that writes the output.

A worker writes its rows where it ran rather than sending them back: while the workers
run, the process that maps the partitions receives a few counters per partition and
never unpickles, re-pickles or sorts rows, so it leaves the cores to the workers. It
reads each part once, at the end, to name each patient as the audit does (the key
never leaves that process) and to write the output. A part is written under a name of
its own and renamed when complete, so a partition run twice (a Dask retry) leaves one
whole part. The parts are this run's own files, in the work directory the partitions
are read from (pickle: trusted as the partitions are).
"""

from __future__ import annotations

import os
import pickle
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from cds_service.impact.summary import ReplayRow

__all__ = ["ROWS_DIR", "MissingPart", "read_parts", "row_order", "write_part"]

ROWS_DIR = "rows"


class MissingPart(Exception):
    """A partition was replayed but its rows are not where this process looks."""


def row_order(row: ReplayRow) -> tuple[str, str, str]:
    """Within a partition: by patient, then order time (as recorded), then order id."""
    return row.patient, row.authored_on, row.order_id


def part_path(rows_dir: Path, partition: int) -> Path:
    return rows_dir / f"rows-{partition:05d}.pickle"


def write_part(rows_dir: Path, partition: int, rows: Iterable[ReplayRow]) -> None:
    """The partition's rows, in ``row_order``, as one file of ``rows_dir``."""
    path = part_path(rows_dir, partition)
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with partial.open("wb") as handle:
            pickle.dump(sorted(rows, key=row_order), handle, pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_parts(rows_dir: Path, partitions: Iterable[int]) -> Iterator[list[ReplayRow]]:
    """Each partition's rows, in the order of ``partitions``; a part that is missing
    (a worker that wrote it where this process cannot see) is an error, not a gap."""
    for partition in partitions:
        path = part_path(rows_dir, partition)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise MissingPart(
                f"the replayed rows of partition {partition} are not in {rows_dir}"
            ) from None
        with handle:
            rows: list[ReplayRow] = pickle.load(handle)  # noqa: S301 (this run's own files)
        yield rows
