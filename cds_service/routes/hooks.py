"""POST /cds-services/{id}: a hook invocation."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

from cds_service.invocation import handle_hook
from cds_service.jsonbody import check_content_type, parse_json_object
from cds_service.jsonresponse import json_response
from cds_service.runtime import Runtime

blueprint = Blueprint("hooks", __name__)


@blueprint.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    runtime: Runtime = current_app.extensions["spine_cds"]
    runtime.require_service(service_id)
    runtime.authenticate("hook")
    check_content_type(request.content_type)
    body = parse_json_object(request.get_data(cache=False), runtime.settings.max_json_depth)
    hook_instance = body.get("hookInstance")
    if isinstance(hook_instance, str) and len(hook_instance) <= 64:
        g.hook_instance = hook_instance
    return json_response(handle_hook(runtime, service_id, body).response)
