"""In-process profile of one invocation: where the time of (a), (b) and (c) goes.

Runs the Flask app in this process (test client: routing, hooks, JSON, audit write
included) against the same FHIR test server and bodies as ``bench.run``, times each
stage of the request path separately, and profiles many requests with pyinstrument::

    .venv/bin/python -m bench.profile_hook [--iterations 300] [--out bench/results]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import scenario
from spine_cds_dev.fhir_server import FhirTestServer


def _median_ms(fn: Callable[[], object], n: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def stage_timings(runtime: Any, body: dict[str, Any], raw: bytes, n: int) -> dict[str, float]:
    """Median ms of each stage of the (a) path, run on its own."""
    from cds_service.auditing import AuditCall
    from cds_service.cards import CardContext, render_response
    from cds_service.datasources import keys_feeding
    from cds_service.engine import assess
    from cds_service.fhir.prefetch import gather
    from cds_service.invocation import handle_hook
    from cds_service.jsonbody import parse_json_object
    from cds_service.pipeline import run_hook
    from fhir_mappers.conditions import map_conditions
    from fhir_mappers.model import PatientData
    from fhir_mappers.observations import map_observations
    from fhir_mappers.orders import map_orders

    service = runtime.discovery.services[scenario.SERVICE_ID]
    context = body["context"]
    gathered = gather(service, body, runtime.fhir_client, runtime.settings.fhir, time.monotonic())
    observations = [r for k in keys_feeding("measurements") for r in gathered.resources[k]]
    orders = map_orders(context["draftOrders"], context["selections"], runtime.value_sets)
    conditions, _ = map_conditions(gathered.resources["conditions"], runtime.value_sets)
    measurements, _ = map_observations(observations, runtime.value_sets, runtime.mapping)
    data = PatientData(conditions=conditions, measurements=measurements, issues=())
    now = datetime.now(UTC)
    assessment = assess(orders.orders, data, runtime.rules, now)
    ctx = CardContext(patient_id=context["patientId"], override_reasons=runtime.override_reasons)
    outcome = handle_hook(runtime, scenario.SERVICE_ID, body)

    def audit_record() -> Any:
        call = AuditCall(
            service_id=scenario.SERVICE_ID,
            hook="order-select",
            received_at=now,
            started=time.perf_counter(),
            shadow=False,
            patient_key=runtime.stores.patient_key,
        )
        return call.record(body, outcome=outcome)

    record = audit_record()
    return {
        "orjson.loads + depth check": _median_ms(lambda: parse_json_object(raw, 64), n),
        "JSON Schema envelope": _median_ms(
            lambda: runtime.validators["order-select"].problems(body), n
        ),
        "map_orders": _median_ms(
            lambda: map_orders(context["draftOrders"], context["selections"], runtime.value_sets),
            n,
        ),
        "gather (prefetch)": _median_ms(
            lambda: gather(
                service, body, runtime.fhir_client, runtime.settings.fhir, time.monotonic()
            ),
            n,
        ),
        "map_conditions": _median_ms(
            lambda: map_conditions(gathered.resources["conditions"], runtime.value_sets), n
        ),
        "map_observations": _median_ms(
            lambda: map_observations(observations, runtime.value_sets, runtime.mapping), n
        ),
        "assess": _median_ms(lambda: assess(orders.orders, data, runtime.rules, now), n),
        "render_response": _median_ms(lambda: render_response(assessment, ctx), n),
        "orjson.dumps response": _median_ms(lambda: orjson.dumps(outcome.response), n),
        "handle_hook (all of the above but parse)": _median_ms(
            lambda: handle_hook(runtime, scenario.SERVICE_ID, body), n
        ),
        "run_hook (the pipeline: read, check, handle)": _median_ms(
            lambda: run_hook(runtime, service, raw), n
        ),
        "audit record built": _median_ms(audit_record, n),
        "audit record stored": _median_ms(lambda: runtime.stores.audit.record(record), n),
    }


def top_entries(raw: bytes, requests: int = 200, limit: int = 12) -> list[dict[str, Any]]:
    """The functions with the most own time over ``requests`` calls of ``raw`` (scenario
    (a)) through a fresh app in this process, by cProfile: name, calls per request, own
    ms per request and share of the whole. cProfile's per-call cost inflates code that
    makes many small calls, so read the ranking, not the absolute figures."""
    import cProfile
    import pstats

    from cds_service.app import create_app
    from cds_service.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            environ={},
            overrides={"dev_mode": True, "database_path": str(Path(tmp) / "profile.sqlite3")},
        )
        app = create_app(settings)
        client = app.test_client()
        url = f"/cds-services/{scenario.SERVICE_ID}"
        for _ in range(10):
            client.post(url, data=raw, content_type="application/json")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            client.post(url, data=raw, content_type="application/json")
        profiler.disable()
        app.extensions["spine_cds"].close()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())
    root = str(Path(__file__).resolve().parent.parent) + "/"
    rows = []
    for (filename, line, name), (_, calls, own, _, _) in stats.items():
        where = filename.replace(root, "")
        if "site-packages/" in where:
            where = where.split("site-packages/", 1)[1]
        rows.append(
            {
                "function": f"{where}:{line}({name})",
                "calls_per_request": calls / requests,
                "own_ms_per_request": own / requests * 1000,
                "share_pct": own / total * 100,
            }
        )
    rows.sort(key=lambda r: -r["own_ms_per_request"])
    return rows[:limit]


class _Declining:
    """A hook body decoder that leaves every body to the careful parse: the request
    path as it was before the typed decode (cds_service/hookbody.py)."""

    def decode(self, raw: bytes, depth_limit: int) -> None:
        return None


def floor_post(body: bytes, answer: bytes) -> Callable[[], object]:
    """One request to the floor app, in process, answering ``answer``."""
    from bench import floor_app

    floor_app.set_response(answer)
    client = floor_app.app.test_client()

    def call() -> object:
        return client.post("/cds-services/x", data=body, content_type="application/json")

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="write profiles here")
    parser.add_argument("--no-profile", action="store_true", help="stage timings only")
    args = parser.parse_args()

    from pyinstrument import Profiler

    from cds_service.app import create_app
    from cds_service.settings import load_settings

    with FhirTestServer(token=scenario.FHIR_TOKEN) as server, tempfile.TemporaryDirectory() as tmp:
        count = scenario.load_data(server)
        bodies = scenario.build_bodies(server, count)
        settings = load_settings(
            environ={},
            overrides={"dev_mode": True, "database_path": str(Path(tmp) / "bench.sqlite3")},
        )
        app = create_app(settings)
        runtime = app.extensions["spine_cds"]
        client = app.test_client()
        url = f"/cds-services/{scenario.SERVICE_ID}"
        raw = {
            "a": orjson.dumps(bodies.full_prefetch),
            "b": orjson.dumps(bodies.no_prefetch),
            "c": orjson.dumps(bodies.not_applicable),
        }
        print(f"FHIR server: {count} resources; (a) body {len(raw['a'])} bytes")
        gc.collect()
        gc.freeze()  # as cds_service.server does in each gunicorn worker

        def post(name: str) -> Callable[[], object]:
            def call() -> object:
                response = client.post(url, data=raw[name], content_type="application/json")
                assert response.status_code == 200, response.data[:300]
                return response

            return call

        print("\nStages of (a) read the careful way (orjson dicts), median ms:")
        for stage, ms in stage_timings(
            runtime, bodies.full_prefetch, raw["a"], args.iterations
        ).items():
            print(f"  {stage:44s} {ms:8.3f}")
        print("\nWhole request through the Flask test client, median ms:")
        floor_ms = _median_ms(
            floor_post(
                raw["a"],
                orjson.dumps(
                    client.post(url, data=raw["a"], content_type="application/json").get_json()
                ),
            ),
            args.iterations,
        )
        print(f"  (d) {floor_ms:8.3f}  the floor app (bench/floor_app.py)")
        for name in ("a", "b", "c"):
            ms = _median_ms(post(name), args.iterations)
            print(f"  ({name}) {ms:8.3f}  {ms / floor_ms:5.2f}x the floor")
        typed = runtime.hook_decoders
        runtime.hook_decoders = {key: _Declining() for key in typed}
        for name in ("a", "c"):
            ms = _median_ms(post(name), args.iterations)
            print(f"  ({name}) {ms:8.3f}  {ms / floor_ms:5.2f}x the floor, typed decode off")
        runtime.hook_decoders = typed
        if args.no_profile:
            runtime.close()
            return

        for name in ("a", "b"):
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for _ in range(args.iterations):
                post(name)()
            profiler.stop()
            text = profiler.output_text(unicode=False, color=False, show_all=False)
            root = str(Path(__file__).resolve().parent.parent) + "/"
            text = text.replace(root, "")  # no machine paths in the saved profile
            print(f"\n--- pyinstrument, {args.iterations} x ({name}) ---")
            print(text)
            if args.out is not None:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"profile-{name}.txt").write_text(text, encoding="utf-8")
        runtime.close()


if __name__ == "__main__":
    main()
