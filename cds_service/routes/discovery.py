"""GET /cds-services: hooks.json, served as it is."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Response

from cds_service.routes import entrance
from cds_service.routes.responses import json_response

blueprint = Blueprint("discovery", __name__)


@blueprint.get("/cds-services")
def discovery() -> Response:
    runtime = entrance.runtime()
    entrance.authenticate(runtime, "discovery")
    return json_response(runtime.discovery.document)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of this service (public, like the spec it describes)."""
    return json_response(_openapi_document())


@cache
def _openapi_document() -> Any:
    text = resources.files("cds_service").joinpath("openapi.json").read_text(encoding="utf-8")
    return json.loads(text)
