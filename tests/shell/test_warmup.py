"""A worker warms up before it takes traffic, and the warm-up leaves no trace.

Its speed is measured by bench/run.py (first-call latency); here: it runs every stage
of a hook call, and writes nothing to the audit, the feedback store or the metrics.
"""

from __future__ import annotations

from pathlib import Path

from cds_service.runtime import build_runtime
from cds_service.warmup import warm_up
from tests.conftest import make_settings


def test_warm_up_runs_a_whole_call_and_records_nothing(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path))
    try:
        before = runtime.metrics.exposition()
        took = warm_up(runtime)
        assert took is not None and took > 0
        assert runtime.stores.audit.records() == []
        assert runtime.metrics.exposition() == before
    finally:
        runtime.close()


def test_a_failing_warm_up_never_stops_a_worker(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path))
    try:
        runtime.validators.clear()  # every stage after this one fails
        assert warm_up(runtime) is None
    finally:
        runtime.close()


def test_warm_up_takes_the_typed_decode_of_a_real_call(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path))
    try:
        decoders = runtime.hook_decoders
        runtime.hook_decoders = {}  # without the decoders the warm-up cannot run
        assert warm_up(runtime) is None
        runtime.hook_decoders = decoders
        assert warm_up(runtime) is not None
    finally:
        runtime.close()
