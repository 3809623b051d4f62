"""Prometheus metrics: request counts and latency, FHIR fetches, decisions.

gunicorn runs several worker processes and a scrape reaches only one of them, so under
gunicorn the metrics use prometheus-client's multiprocess mode (``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start). In
process (tests, tools) each app gets its own registry, so apps never share counters.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)


class Metrics:
    """The service's metrics; one instance per app."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # In multiprocess mode values live in files; registering would double-count.
        self._registry = None if self.multiprocess else CollectorRegistry()
        registry = self._registry
        self.requests = Counter(
            "spine_cds_requests",
            "HTTP requests by endpoint, service and status",
            ["endpoint", "service", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "spine_cds_request_duration_seconds",
            "Time to answer an HTTP request",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.fhir_latency = Histogram(
            "spine_cds_fhir_fetch_duration_seconds",
            "Time spent fetching missing prefetch from the FHIR server, per invocation",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.fhir_failures = Counter(
            "spine_cds_fhir_fetch_failures",
            "Prefetch keys that could not be obtained (the invocation answered 412)",
            ["key"],
            registry=registry,
        )
        self.refusals = Counter(
            "spine_cds_refusals",
            "Calls refused before authentication (401), by endpoint and reason; the audit"
            " keeps them only as counts per minute",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.decisions = Counter(
            "spine_cds_decisions",
            "Decisions by service and recommendation",
            ["service", "decision"],
            registry=registry,
        )

        self.audit_records = Counter(
            "spine_cds_audit_records",
            "Audit records by state: queued (handed to the worker's audit writer), stored,"
            " failed. Counted per worker and kept after it is gone: queued - stored - failed"
            " is what workers killed outright lost (plus the few still on their way)",
            ["state"],
            registry=registry,
        )

    def count_audit_records(self, state: str, amount: int) -> None:
        """The audit writer's count (stores/audit_queue.py)."""
        if amount:
            self.audit_records.labels(state).inc(amount)

    def exposition(self) -> bytes:
        """The text format for GET /metrics."""
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
