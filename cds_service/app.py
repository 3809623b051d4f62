"""The Flask application factory: the thin shell around the functional core.

Everything a request needs that can be built once (validators, value sets, settings,
stores, the FHIR connection pool) is built here at startup and handed to the routes
through ``app.extensions``; nothing is read from the environment at request time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from cds_service.errors import ApiError
from cds_service.logs import request_id_var
from cds_service.routes.responses import json_response
from cds_service.runtime import Runtime, build_runtime
from cds_service.settings import Settings, load_settings
from cds_service.validation import shown_path

log = logging.getLogger("cds_service")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
HSTS = "max-age=31536000"
# Every answer names its request; the same id starts every log line written for it, so an
# integrator who quotes it (a browser client reads it through CORS) finds the refusal's why.
REQUEST_ID_HEADER = "X-Request-Id"


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the WSGI app. Tests pass settings; production reads them from the environment."""
    settings = settings or load_settings()
    runtime = runtime or build_runtime(settings)
    # No default /static route: the trend app's files are served only by its routes
    # (routes/trend_app.py), with the launch's checks and the app's CSP.
    app = Flask(__name__, static_folder=None)
    # "/cds-services//x" must be a JSON 404, not an HTML redirect to another endpoint.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["spine_cds"] = runtime

    origins: Any = list(settings.cors_origins) or ("*" if settings.dev_mode else [])
    if origins:
        CORS(
            app,
            origins=origins,
            allow_headers=["Authorization", "Content-Type"],
            methods=["GET", "POST", "OPTIONS"],
            # Readable by a browser client on every answer, a 401 included.
            expose_headers=[REQUEST_ID_HEADER, "WWW-Authenticate"],
            max_age=600,
        )

    from cds_service.routes import discovery, feedback, health, hooks, metrics, trend_app

    app.register_blueprint(health.blueprint)
    if settings.metrics_enabled:
        app.register_blueprint(metrics.blueprint)
    app.register_blueprint(discovery.blueprint)
    app.register_blueprint(hooks.blueprint)
    app.register_blueprint(feedback.blueprint)
    app.register_blueprint(trend_app.blueprint)  # the SMART app the cards link to

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()
        g.request_id = str(uuid.uuid4())
        g.request_id_token = request_id_var.set(g.request_id)
        if request.headers.get("Transfer-Encoding"):
            # CDS clients send Content-Length. A chunked body cannot be held to
            # max_body_bytes before it is read (it was cut short silently), and a broken
            # chunk-size line is the body itself, which gunicorn then quotes in its error:
            # refuse without reading a byte of it.
            raise ApiError(
                411,
                "length_required",
                "send the request body with Content-Length; chunked bodies are not accepted",
            )

    @app.after_request
    def _finish(response: Response) -> Response:
        own_frames = "frame-ancestors" in response.headers.get("Content-Security-Policy", "")
        for name, value in SECURITY_HEADERS.items():
            if name == "X-Frame-Options" and own_frames:
                continue  # the route's CSP says who may frame it (the trend app: the EHR)
            response.headers.setdefault(name, value)
        if request.is_secure:  # https, or said so by a proxy named in forwarded_allow_ips
            # Browsers keep to https for this host (the trend app's pages carry OAuth
            # codes); sent only over https, where RFC 6797 has it read.
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        elapsed_ms = elapsed * 1000
        # flask-cors answers preflights on the endpoint's own URL: count them apart.
        endpoint = "cors.preflight" if request.method == "OPTIONS" else request.endpoint
        endpoint = endpoint or "unknown"
        service = (request.view_args or {}).get("service_id")
        if service not in runtime.discovery.services:
            service = "-"  # never a label per unknown id a client made up
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
        runtime.metrics.requests.labels(endpoint, service, str(response.status_code)).inc()
        runtime.metrics.latency.labels(endpoint).observe(elapsed)
        # A refusal says why on its request line: its error code and the JSON paths of
        # the fields refused, never a value sent (ApiError.log_fields); an answered hook
        # call, its decision and reason codes (routes/hooks.decision_log_fields).
        refused: ApiError | None = g.get("refused")
        log.log(
            logging.WARNING if refused is not None and refused.misconfigured else logging.INFO,
            "request method=%s path=%s status=%s duration_ms=%.1f hook_instance=%s%s",
            request.method,
            request.path,
            response.status_code,
            elapsed_ms,
            g.get("hook_instance", "-"),
            refused.log_fields() if refused is not None else g.get("decision", ""),
        )
        return response

    @app.teardown_request
    def _forget_request_id(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        g.refused = exc
        return json_response(exc.body(), exc.status, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        unknown = _unknown_service(runtime, status)
        if unknown is not None:
            return _api_error(unknown)
        messages = {
            404: _not_found_message(runtime),
            405: f"method {request.method} is not allowed on {shown_path(request.path)}",
            413: f"the request body is larger than {settings.max_body_bytes} bytes",
        }
        body = {
            "error": (exc.name or "error").lower().replace(" ", "_"),
            "message": messages.get(status, exc.description or exc.name or "error"),
        }
        g.refused = ApiError(status, body["error"], body["message"])
        response = json_response(body, status)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Logged with the request id and hook instance only: never the body or a token.
        log.error(
            "unhandled error hook_instance=%s type=%s",
            g.get("hook_instance", "-"),
            type(exc).__name__,
            exc_info=exc,
        )
        body = {
            "error": "internal_error",
            "message": "the service failed to process this request",
            "requestId": g.get("request_id", "-"),
        }
        return json_response(body, 500)

    return app


def _routed(path: str, method: str) -> Mapping[str, Any] | None:
    """The URL arguments of the route ``path`` takes for ``method``, or None."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        _endpoint, args = adapter.match(path, method=method)
    except HTTPException:  # not found, another method, a redirect
        return None
    return args


def _unknown_service(runtime: Runtime, status: int) -> ApiError | None:
    """A 405 on a made-up service id is a 404 as for a POST (README: 404 for an unknown
    service id; an integrator's GET got 405 ``Allow: POST``, which says the URL exists).
    A known id with a wrong method stays a 405. OPTIONS is answered as before: a CORS
    preflight must pass for the browser to read the real call's 404."""
    if status != 405:
        return None
    args = _routed(request.path, "POST")
    service_id = args.get("service_id") if args is not None else None
    if not isinstance(service_id, str):
        return None
    from cds_service.routes import entrance  # as create_app imports the routes

    try:
        entrance.service(runtime, service_id)
    except ApiError as exc:
        return exc
    return None


def _not_found_message(runtime: Runtime) -> str:
    """A 404's words; for a URL that only a trailing slash keeps from an endpoint, which.

    CDS clients build a hook's URL from discovery's id, so the slash is a slip typed into
    an EHR's configuration (an integrator's review: ``/...-select/`` got a bare "no such
    endpoint"). It is not taken as the URL without it: a client JWT's ``aud`` is checked
    against ``public_base_url`` + the path as called, so a call accepted with the slash
    would be refused for an ``aud`` without it and accepted for one with it, the opposite
    of what the EHR's registration must say (docs/integration.md: no trailing slash)."""
    path = request.path
    bare = path.rstrip("/")
    args = _routed(bare, request.method) if bare and bare != path else None
    service_id = args.get("service_id") if args is not None else None
    if args is not None and (service_id is None or service_id in runtime.discovery.services):
        return f"no such endpoint; did you mean {shown_path(bare)} (without the trailing slash)?"
    return "no such endpoint; see GET /cds-services for the services offered"
