"""POST /cds-services/{id}/feedback: what the clinician did with a card."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from cds_service.errors import ApiError
from cds_service.jsonbody import check_content_type, parse_json_object
from cds_service.jsonresponse import json_response
from cds_service.runtime import Runtime
from cds_service.validation import validate

blueprint = Blueprint("feedback", __name__)


@blueprint.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    runtime: Runtime = current_app.extensions["spine_cds"]
    runtime.require_service(service_id)
    runtime.authenticate("feedback", service_id)
    check_content_type(request.content_type)
    body = parse_json_object(request.get_data(cache=False), runtime.settings.max_json_depth)
    problems = validate(runtime.validators["feedback"], body)
    if problems:
        raise ApiError(
            400, "invalid_request", "the feedback body does not conform to CDS Hooks", problems
        )
    result = runtime.stores.feedback.add(service_id, body["feedback"])
    return json_response({"stored": result.stored, "duplicates": result.duplicates})
