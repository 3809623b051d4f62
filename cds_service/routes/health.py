"""Health endpoint for load balancers and for people checking which mode a service runs in."""

from __future__ import annotations

from flask import Blueprint, Response

from cds_service import __version__
from cds_service.routes import entrance
from cds_service.routes.responses import json_response

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def health() -> Response:
    runtime = entrance.runtime()
    body = {
        "status": "ok",
        "version": __version__,
        "services": sorted(runtime.discovery.services),
        "devMode": runtime.settings.dev_mode,
        "shadowMode": runtime.settings.shadow_mode,
        "authentication": "disabled (development mode)"
        if runtime.settings.dev_mode
        else "required",
    }
    return json_response(body)
