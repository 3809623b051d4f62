"""``spine-cds replay``'s run: partition the export, replay the partitions, write the output.

Two passes. The first (``partition``) streams the export once into partition files in
the work directory. The second maps ``replayer.replay_partition`` over them on an
existing engine: local processes (``concurrent.futures.ProcessPoolExecutor``) by
default, or a Dask cluster (an existing scheduler, or a local one). There is no
scheduler of our own: the engine hands out partitions, this module collects results.

Each worker writes the rows of the partitions it replays to the work directory
(``rowparts``) and sends back only their counts, so this process stays idle while the
workers run. At the end the rows are written in partition order (the same output for
the same export and partition count, whatever order the partitions finished in), each
patient named as the audit names it (``stores.patientkey``: the key never leaves this
process). Memory is one partition at a time, in the workers and here.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cds_service.impact.asof import rules_problem
from cds_service.impact.export import Problem, ProblemLog
from cds_service.impact.partition import Partitioned, partition_export
from cds_service.impact.replayer import (
    PartitionResult,
    PartitionTask,
    replay_partition,
    worker_settings,
)
from cds_service.impact.rowparts import ROWS_DIR, MissingPart, read_parts
from cds_service.impact.summary import ROW_COLUMNS, Summary
from cds_service.settings import Settings

__all__ = ["ReplayError", "ReplayOptions", "ReplayResult", "run_replay"]

ROWS_CSV = "replayed-orders.csv"
ROWS_PARQUET = "replayed-orders.parquet"


class ReplayError(Exception):
    """The run cannot go on (no input at all, an engine that cannot be reached)."""


@dataclass
class ReplayOptions:
    inputs: list[Path]
    out_dir: Path
    settings: Settings
    patient_key: Callable[[str], str | None]
    workers: int = 1
    partitions: int | None = None
    dask_scheduler: str | None = None
    dask_local: int | None = None
    progress: bool = False
    parquet: bool = False
    work_dir: Path | None = None
    on_problem: Callable[[Problem], None] | None = None


@dataclass
class ReplayResult:
    summary: Summary
    outputs: list[Path] = field(default_factory=list)
    partitions: int = 0
    engine: str = ""
    # seconds of each stage: the first pass, the replay of the partitions, the writing
    seconds: dict[str, float] = field(default_factory=dict)


def _progress(total: int, enabled: bool) -> Any:
    """A progress bar over partitions (tqdm), or a stand-in that does nothing."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, unit="partition", desc="replay", leave=False)

    class _Quiet:
        def update(self, n: int = 1) -> None: ...
        def set_postfix_str(self, s: str) -> None: ...
        def close(self) -> None: ...

    return _Quiet()


@contextmanager
def _engine(
    options: ReplayOptions,
) -> Iterator[tuple[str, Callable[[list[PartitionTask]], Iterator[PartitionResult]]]]:
    """The engine that maps partitions over workers: a name and ``map``, which yields
    results as they finish."""
    if options.dask_scheduler or options.dask_local:
        try:
            from dask.distributed import Client, LocalCluster
            from dask.distributed import as_completed as dask_completed
        except ImportError:
            raise ReplayError(
                "--dask-scheduler/--dask-local need Dask distributed: install the `replay` "
                "extra (pip install 'spine-cds[replay]')"
            ) from None
        cluster = None
        try:
            if options.dask_scheduler:
                client = Client(options.dask_scheduler, timeout="10s")
                name = f"Dask scheduler {options.dask_scheduler}"
            else:
                cluster = LocalCluster(
                    n_workers=options.dask_local,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
                client = Client(cluster)
                name = f"local Dask cluster of {options.dask_local} workers"
        except OSError as exc:
            if cluster is not None:
                cluster.close()
            raise ReplayError(f"cannot reach the Dask scheduler: {exc}") from None

        def dask_map(tasks: list[PartitionTask]) -> Iterator[PartitionResult]:
            # as_completed lets go of each future it yields: no list here keeps them, so
            # a partition's rows are freed once written (memory: one partition at a time)
            for future in dask_completed(client.map(replay_partition, tasks, pure=False)):
                try:
                    partial = future.result()
                except OSError as exc:
                    hint = (
                        " (with a remote scheduler, --work-dir must be on storage every "
                        "worker sees at the same path)"
                        if options.dask_scheduler
                        else ""
                    )
                    raise ReplayError(
                        f"a Dask worker could not read its partition or write its rows: {exc}{hint}"
                    ) from None
                future.release()
                yield partial

        try:
            yield name, dask_map
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    workers = max(1, options.workers)
    # spawn: a clean interpreter per worker, whatever threads this process runs
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:

        def local_map(tasks: list[PartitionTask]) -> Iterator[PartitionResult]:
            # no list of the futures: as_completed drops each one it yields, and with it
            # the partition's result (a list here kept every row until the end)
            for future in as_completed({pool.submit(replay_partition, t) for t in tasks}):
                try:
                    partial = future.result()
                except BrokenProcessPool:
                    raise ReplayError(
                        "a worker process died (killed, or out of memory: try --partitions "
                        "with a larger number, or fewer --workers)"
                    ) from None
                yield partial

        yield f"{workers} local process{'es' if workers > 1 else ''}", local_map


def run_replay(options: ReplayOptions) -> ReplayResult:
    """Replay the export named by ``options.inputs``; write rows and summary files."""
    undatable = rules_problem()
    if undatable:  # before reading a line: checked again in each worker's Replayer
        raise ReplayError(undatable)
    problems = ProblemLog(on_problem=options.on_problem)
    owned = options.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="spine-cds-replay-")) if owned else options.work_dir
    assert work is not None
    try:
        workers = options.dask_local or options.workers
        started = time.perf_counter()
        partitioned = partition_export(
            options.inputs, work / "partitions", problems, options.partitions, workers
        )
        first_pass = time.perf_counter() - started
        if not partitioned.files:
            raise ReplayError("no NDJSON file to read: " + "; ".join(map(str, problems.kept)))
        summary = Summary()
        summary.lines.update(partitioned.lines_by_type)
        summary.other_types.update(partitioned.skipped_types)
        result = ReplayResult(summary, partitions=len(partitioned.partitions))
        row_files = work / ROWS_DIR
        shutil.rmtree(row_files, ignore_errors=True)  # a --work-dir used before
        row_files.mkdir()
        tasks = _tasks(partitioned, options.settings, row_files)
        bar = _progress(len(tasks), options.progress)
        started = time.perf_counter()
        try:
            with _engine(options) as (name, mapper):
                result.engine = name
                for partial in mapper(tasks):
                    summary.merge(partial.summary)
                    summary.patients += partial.patients
                    for problem in partial.problems:
                        problems.append(problem)
                    bar.update(1)
                    bar.set_postfix_str(f"{summary.orders} orders")
        finally:
            bar.close()
        replayed = time.perf_counter() - started
        summary.skipped_lines = problems.count - problems.files
        summary.skipped_files = problems.files
        summary.problems = [str(p) for p in problems.kept]
        options.out_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        try:
            result.outputs = _write_rows(row_files, sorted(t.partition for t in tasks), options)
        except MissingPart as exc:  # a worker wrote where this process cannot see
            raise ReplayError(f"{exc} (--work-dir must be on storage every worker sees)") from None
        result.seconds = {
            "firstPass": first_pass,
            "replay": replayed,
            "write": time.perf_counter() - started,
        }
        return result
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)


def _tasks(partitioned: Partitioned, settings: Settings, rows_dir: Path) -> list[PartitionTask]:
    """One task per non-empty partition, the largest first: the engine hands them out in
    this order, so the last to start are the smallest and the workers finish together."""
    names = tuple(partitioned.file_names)
    safe = worker_settings(settings)
    sizes = {path: path.stat().st_size for path in partitioned.partitions}
    tasks = [
        PartitionTask(index, path, partitioned.medications, names, safe, rows_dir)
        for index, path in enumerate(partitioned.partitions)
        if sizes[path] > 0
    ]
    return sorted(tasks, key=lambda task: (-sizes[task.path], task.partition))


def _write_rows(row_files: Path, partitions: list[int], options: ReplayOptions) -> list[Path]:
    """CSV always, Parquet too when asked (pyarrow), one partition at a time (each part
    already in row order: by patient, then order time); each file written under a
    temporary name and renamed when complete."""
    csv_path = options.out_dir / ROWS_CSV
    parquet_path = options.out_dir / ROWS_PARQUET
    csv_tmp = options.out_dir / (ROWS_CSV + ".partial")
    parquet_tmp = options.out_dir / (ROWS_PARQUET + ".partial")
    writer: Any = None
    schema: Any = None
    if options.parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _parquet_schema(pa)
        writer = pq.ParquetWriter(parquet_tmp, schema)
    try:
        with csv_tmp.open("w", newline="", encoding="utf-8") as handle:
            out = csv.DictWriter(handle, fieldnames=list(ROW_COLUMNS))
            out.writeheader()
            for rows in read_parts(row_files, partitions):
                records = [r.record(options.patient_key(r.patient)) for r in rows]
                out.writerows(records)
                if writer is not None and records:
                    import pyarrow as pa

                    writer.write_table(pa.Table.from_pylist(records, schema=schema))
    finally:
        if writer is not None:
            writer.close()
    os.replace(csv_tmp, csv_path)
    outputs = [csv_path]
    if writer is not None:
        os.replace(parquet_tmp, parquet_path)
        outputs.append(parquet_path)
    return outputs


def _parquet_schema(pa: Any) -> Any:
    types = {
        "days_since_t0": pa.int32(),
        "crp_baseline_mg_l": pa.float64(),
        "crp_latest_mg_l": pa.float64(),
        "crp_change_pct": pa.float64(),
        "pain_first": pa.float64(),
        "pain_latest": pa.float64(),
        "esr_latest_mm_h": pa.float64(),
        "study_performed_after": pa.bool_(),
    }
    return pa.schema([(c, types.get(c, pa.string())) for c in ROW_COLUMNS])
