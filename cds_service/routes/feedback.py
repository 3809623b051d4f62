"""POST /cds-services/{id}/feedback: what the clinician did with a card."""

from __future__ import annotations

from flask import Blueprint, Response

from cds_service.routes import entrance
from cds_service.routes.responses import json_response

blueprint = Blueprint("feedback", __name__)


@blueprint.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    runtime = entrance.runtime()
    entrance.service(runtime, service_id)
    entrance.authenticate(runtime, "feedback", service_id)
    body = entrance.validated(runtime, "feedback", entrance.json_body(runtime))
    result = runtime.stores.feedback.add(service_id, body["feedback"])
    return json_response({"stored": result.stored, "duplicates": result.duplicates})
