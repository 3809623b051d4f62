"""The replay on a real local Dask cluster (two worker processes on 127.0.0.1) gives what
local processes give: the same rows, the same summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.impact.run import ROWS_CSV, ReplayOptions, run_replay
from cds_service.settings import load_settings
from cds_service.stores import PatientKeyer
from tests.impact.helpers import write_population

pytest.importorskip("dask.distributed")


def _run(export: Path, out: Path, **engine: int) -> tuple[str, dict[str, object]]:
    result = run_replay(
        ReplayOptions(
            inputs=[export],
            out_dir=out,
            settings=load_settings(environ={}),
            patient_key=PatientKeyer("plain"),
            partitions=6,
            **engine,  # type: ignore[arg-type]
        )
    )
    summary = result.summary.to_dict()
    return (out / ROWS_CSV).read_text(encoding="utf-8"), summary | {"engine": result.engine}


def test_a_local_dask_cluster_of_two_gives_the_local_processes_answer(tmp_path: Path) -> None:
    export = write_population(tmp_path / "export", 300)
    rows_local, local = _run(export, tmp_path / "local", workers=1)
    rows_dask, dask = _run(export, tmp_path / "dask", dask_local=2)
    assert dask.pop("engine") == "local Dask cluster of 2 workers"
    assert local.pop("engine") == "1 local process"
    assert rows_dask == rows_local
    assert dask == local
    assert local["orders"] > 50  # the population has spine orders of NVO patients


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    from cds_service.impact.run import ReplayError
    from spine_cds_dev.service_process import free_port

    export = write_population(tmp_path / "export", 5)
    with pytest.raises(ReplayError, match="cannot reach the Dask scheduler"):
        run_replay(
            ReplayOptions(
                inputs=[export],
                out_dir=tmp_path / "out",
                settings=load_settings(environ={}),
                patient_key=PatientKeyer("plain"),
                dask_scheduler=f"tcp://127.0.0.1:{free_port()}",
            )
        )
    assert not (tmp_path / "out" / ROWS_CSV).exists()
