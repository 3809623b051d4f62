"""GET /metrics: Prometheus text format (no patient data; keep it on the internal network)."""

from __future__ import annotations

from flask import Blueprint, Response

from cds_service.routes import entrance

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    runtime = entrance.runtime()
    # content_type, not mimetype: Flask adds "; charset=utf-8" to a mimetype, and
    # prometheus-client's type already carries one (it was sent twice).
    return Response(runtime.metrics.exposition(), content_type=runtime.metrics.content_type)
