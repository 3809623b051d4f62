"""Pay a worker's first-use costs before it takes traffic.

A fresh worker's first calls were 5-20 times slower than later ones: lazy imports, the
first validation with each JSON Schema, fhir.resources building its Condition model, the
first regular expressions and enum lookups of the mappers and the renderer. ``warm_up``
runs one synthetic patient (the first example, improving) through the same stages as a
hook call, on the worker's own runtime, before gunicorn hands it a connection.

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
    """Run one synthetic call through validation, mapping, the engine and the renderer;
    the milliseconds it took, or None when it could not run."""
    from cds_service.examples import example_keys, load_example
    from cds_service.hookbody import schema_view
    from cds_service.invocation import handle_hook
    from cds_service.tools.ehr_requests import build_request, bundle_resources, local_prefetch

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
            raw = orjson.dumps(request)
            # the typed decode a real call takes (hookbody), else the dict itself
            depth = runtime.settings.max_json_depth
            body = runtime.hook_decoders[service.id].decode(raw, depth) or request
            runtime.validators[service.hook].problems(schema_view(body))
            handle_hook(runtime, service.id, body)
    except Exception as exc:  # never keep a worker from serving
        log.warning("worker warm-up skipped error=%s", type(exc).__name__)
        return None
    return (time.perf_counter() - started) * 1000
