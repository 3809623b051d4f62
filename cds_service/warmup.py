"""Pay a worker's first-use costs before it takes traffic.

A fresh worker's first calls were 5-20 times slower than later ones: lazy imports, the
first validation with each JSON Schema, fhir.resources building its Condition model, the
first regular expressions and enum lookups of the mappers and the renderer. ``warm_up``
runs one synthetic patient (the first example, improving) through the same stages as a
hook call (``cds_service.pipeline``, the one a real call takes), on the worker's own
runtime, before gunicorn hands it a connection.

It touches no store and no metric: nothing is audited, no feedback or replay entry is
written, and /metrics counts only real calls. A failure is logged and ignored: a cold
worker is slower, not broken.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import date

import orjson

from cds_service.runtime import Runtime

log = logging.getLogger("cds_service")


def warm_up(runtime: Runtime) -> float | None:
    """Run one synthetic call of each service through the pipeline a real call takes
    (``cds_service.pipeline``: reading, validation, mapping, the engine, the renderer);
    the milliseconds it took, or None when it could not run."""
    from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
    from cds_service.examples import example_keys, load_example
    from cds_service.pipeline import run_hook

    started = time.perf_counter()
    try:
        example = load_example(example_keys()[0], date(2026, 1, 1))
        for service in runtime.discovery.services.values():
            request = build_request(
                service.hook, str(uuid.uuid4()), example.patient_id, example.draft_order
            )
            request["prefetch"] = local_prefetch(
                service.prefetch, request["context"], bundle_resources(example.bundle)
            )
            run_hook(runtime, service, orjson.dumps(request))
    except Exception as exc:  # never keep a worker from serving
        log.warning("worker warm-up skipped error=%s", type(exc).__name__)
        return None
    return (time.perf_counter() - started) * 1000
