"""GET /cds-services: hooks.json, served as it is."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from cds_service.jsonresponse import json_response
from cds_service.runtime import Runtime

blueprint = Blueprint("discovery", __name__)


@blueprint.get("/cds-services")
def discovery() -> Response:
    runtime: Runtime = current_app.extensions["spine_cds"]
    runtime.authenticate("discovery")
    return json_response(runtime.discovery.document)
