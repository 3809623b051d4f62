"""Pay a worker's first-use costs before it takes traffic.

A fresh worker's first calls were 5-20 times slower than later ones: lazy imports, the
first validation with each JSON Schema, fhir.resources building its Condition model, the
first regular expressions and enum lookups of the mappers and the renderer. And on a busy
machine the first call that fetched from a FHIR server answered 412: starting the fetch
threads, the HTTP client's first request and the first connection took the whole FHIR
budget. ``warm_up`` runs one synthetic patient (the first example, improving) through the
pipeline a real call takes (``cds_service.pipeline``), on the worker's own runtime, twice
per service:

- with prefetch, as most EHRs call;
- without prefetch, fetched by the worker's own FHIR client from a loopback server that
  answers the service's queries from the same example (open only during the warm-up),
  so the fetch threads, the pooled session and the reading of fetched pages are warm.

fhir.resources imports the model of each element type the first time a resource has one
(a Condition's ``meta`` cost the first real call 10-20 ms after a warm-up on the example,
which has none), so the warm-up also imports every element model the Condition and
ServiceRequest models can reach (``_import_fhir_models``, ~0.2 s once per worker).

Then, where FHIR servers are configured (the ``fhir_servers`` of the trusted clients),
the client opens its first connection to each (``FhirClient.open_connection``), so the
first real call does not pay for the name lookup, TCP and TLS within its budget. All at
once, each within the FHIR connect and read timeouts and a small byte cap
(``cds_service.fhir.probe``): a listed server that is slow, huge or hostile costs the
warm-up those timeouts and a WARNING, whatever the number of servers.

gunicorn hands a worker connections only once its app is loaded, and the warm-up runs
while it loads (``server.py``): no call reaches a cold worker. ``Runtime.warm`` is set at
the end, whatever happened, and ``/readyz`` answers 503 before that.

It touches no store and no metric: nothing is audited, no feedback or replay entry is
written, and /metrics counts only real calls. A failure is logged and ignored: a cold
worker is slower, not broken.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from cds_service.errors import ApiError
from cds_service.fhir.urls import connect_origin
from cds_service.runtime import Runtime

log = logging.getLogger("cds_service")

# The example patient's order date: any fixed day (the examples are shifted to it).
ORDER_DATE = date(2026, 1, 1)


def warm_up(runtime: Runtime) -> float | None:
    """Run the synthetic calls of each service through the pipeline a real call takes
    (``cds_service.pipeline``: reading, validation, fetching, mapping, the engine, the
    renderer) and open the first connection to each configured FHIR server; the
    milliseconds it took, or None when it could not run. ``runtime.warm`` is set at the
    end either way."""
    from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
    from cds_service.examples import example_keys, load_example
    from cds_service.pipeline import run_hook

    started = time.perf_counter()
    try:
        example = load_example(example_keys()[0], ORDER_DATE)
        resources = bundle_resources(example.bundle)
        with _loopback_fhir(resources) as fhir_url:
            for service in runtime.discovery.services.values():
                request = build_request(
                    service.hook, str(uuid.uuid4()), example.patient_id, example.draft_order
                )
                request["prefetch"] = local_prefetch(
                    service.prefetch, request["context"], resources
                )
                run_hook(runtime, service, orjson.dumps(request))
                fetched = build_request(
                    service.hook,
                    str(uuid.uuid4()),
                    example.patient_id,
                    example.draft_order,
                    fhir_server=fhir_url,
                )
                try:
                    run_hook(runtime, service, orjson.dumps(fetched))
                except ApiError as exc:  # e.g. 412 on a busy machine: the code still ran
                    log.info("worker warm-up: fetched call answered %s", exc.status)
        _import_fhir_models()
        servers = configured_fhir_servers(runtime)
        with ThreadPoolExecutor(
            max_workers=max(1, min(len(servers), 16)), thread_name_prefix="warm-up-connect"
        ) as pool:
            answers = list(pool.map(runtime.fhir_client.open_connection, servers))
        for server, said in zip(servers, answers, strict=True):
            origin = connect_origin(server)
            where = f"{origin[0]}://{origin[1]}:{origin[2]}" if origin else "(not a plain URL)"
            # which of the listed servers, by origin (no path: nothing a tenant is named by);
            # one that cannot be reached is the earliest sign of a failing call: a warning
            log.log(
                logging.INFO if said.startswith("connected") else logging.WARNING,
                "worker warm-up: first connection to the FHIR server %s: %s",
                where,
                said,
            )
    except Exception as exc:  # never keep a worker from serving
        log.warning("worker warm-up skipped error=%s", type(exc).__name__)
        return None
    finally:
        runtime.warm.set()
    return (time.perf_counter() - started) * 1000


def configured_fhir_servers(runtime: Runtime) -> list[str]:
    """The FHIR servers the trusted clients may name (their ``fhir_servers``), each once."""
    from cds_service.auth import load_trusted_clients

    if runtime.verifier is None:  # development mode: no trusted clients are read
        return []
    servers: list[str] = []
    for client in load_trusted_clients(runtime.settings.trusted_clients_file or None):
        for url in client.fhir_servers or ():
            if url not in servers:
                servers.append(url)
    return servers


def _import_fhir_models() -> int:
    """Import the model of every element type the Condition and ServiceRequest models can
    reach (fhir.resources resolves them lazily, by import, on first use); how many."""
    import typing

    from fhir.resources.R4B.condition import Condition  # fhir_mappers.conditions validates
    from fhir.resources.R4B.servicerequest import ServiceRequest  # fhir_mappers.orders does
    from fhir_core.types import FhirBase
    from pydantic import BaseModel

    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = [Condition, ServiceRequest]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        annotations = [field.annotation for field in model.model_fields.values()]
        while annotations:
            annotation = annotations.pop()
            if isinstance(annotation, type) and issubclass(annotation, FhirBase):
                klass = getattr(annotation, "get_model_klass", None)
                if klass is not None:
                    todo.append(klass())
            annotations.extend(typing.get_args(annotation))
    return len(seen)


class _WarmUpServer(ThreadingHTTPServer):
    """The warm-up's loopback FHIR server. The fetch threads connect at once, and a
    listen queue of 5 (the default) dropped a connection on a busy machine: the client
    waits a second for the retry, past its connect timeout (seen once in CI)."""

    request_queue_size = 64
    daemon_threads = True


@contextmanager
def _loopback_fhir(resources: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    """A FHIR server on 127.0.0.1 (a free port) that answers reads and searches from
    ``resources`` (``ehr_requests.search_local``), for as long as the block runs."""
    from cds_service.ehr_requests import search_local

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            try:
                found = search_local(self.path.partition("/fhir/")[2], resources)
            except ValueError:
                found = None
            body = orjson.dumps(found) if found is not None else b"{}"
            self.send_response(200 if found is not None else 404)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the synthetic patient's queries are not worth a log line

    server = _WarmUpServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="warm-up-fhir", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
