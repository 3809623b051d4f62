"""The web layer's single entrance: the steps every route takes, each in one place.

A request is let in step by step: the runtime it runs against, the service it names
(404), the client that sent it (401), then its body (415, 400 with JSON paths). Each
route calls the steps it needs, in that order, so a new route cannot forget one and no
step is written twice. This module is the only one that turns a Flask request into the
plain values the rest of the service works with; a hook call's body, once it is known
to be JSON, goes to ``cds_service.pipeline`` as bytes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from flask import current_app, request
from werkzeug.exceptions import ClientDisconnected

from cds_service.auth import AuthError, VerifiedClient, www_authenticate
from cds_service.discovery import Service
from cds_service.errors import ApiError
from cds_service.jsonbody import (
    check_content_encoding,
    check_content_type,
    parse_json_object,
)
from cds_service.pipeline import conforming
from cds_service.runtime import Runtime
from cds_service.stores.audit import Refusal
from cds_service.validation import shown_name

log = logging.getLogger("cds_service")
auth_log = logging.getLogger("cds_service.auth")

EndpointKind = Literal["discovery", "hook", "feedback"]


def runtime() -> Runtime:
    """What the application built at startup (``create_app``)."""
    built: Runtime = current_app.extensions["spine_cds"]
    return built


def service(rt: Runtime, service_id: str) -> Service:
    """The service the path names, or 404 pointing at discovery."""
    found = rt.discovery.services.get(service_id)
    if found is None:
        raise ApiError(  # the id as sent, bounded: it is the client's text
            404,
            "unknown_service",
            f"no service with id {shown_name(service_id)!r}; see GET /cds-services",
        )
    return found


def authenticate(
    rt: Runtime, kind: EndpointKind, service_id: str | None = None
) -> VerifiedClient | None:
    """The verified client, or None in development mode (and for open discovery).

    Refuses the request with a bare 401 unless it carries a valid client JWT. The
    expected ``aud`` is ``public_base_url`` + the path, never built from the request's
    Host or forwarded headers (a token minted for another deployment would pass).
    """
    if rt.verifier is None:
        return None
    if kind == "discovery" and not rt.settings.auth_required_for_discovery:
        return None
    audience = rt.settings.public_base_url.rstrip("/") + request.path
    authorization = request.headers.get("Authorization")
    try:
        client = rt.verifier.verify(authorization, audience)
    except AuthError as exc:
        issuer = rt.verifier.trusted_issuer_of(authorization)
        # The values that differ (aud presented/expected, the unknown iss, the refused
        # jku, the JWKS URL and its status) are for the integrator reading this line, in
        # the log only: the client gets a bare 401 with the request id to quote.
        details = exc.details()
        auth_log.warning(
            "refused client JWT reason=%s endpoint=%s claimed_issuer=%s remote=%s%s",
            exc.reason,
            kind,
            issuer or "-",
            request.remote_addr,
            f" {details}" if details else "",
        )
        _audit_refusal(rt, kind, service_id, exc.reason, issuer)
        raise ApiError(
            401,
            "unauthorized",
            "a valid bearer JWT from a trusted CDS client is required",
            headers={"WWW-Authenticate": www_authenticate(exc.reason)},
        ) from None
    auth_log.debug("client authenticated iss=%s", client.iss)
    return client


def body_bytes() -> bytes:
    """The request body as sent, when it is JSON; 415 for another content type or for a
    content coding (gzip, ...), 408 when the client stops sending it. A hook call's body
    is read by the pipeline (``pipeline.HookCall``)."""
    check_content_type(request.content_type)
    check_content_encoding(request.headers.get("Content-Encoding"))
    try:
        body = request.get_data(cache=False)
    except ClientDisconnected as exc:  # werkzeug's word for a body it could not finish
        if isinstance(exc.__context__, TimeoutError):  # the worker's limit, worker.py
            raise ApiError(
                408, "request_timeout", "the request body stopped arriving before its end"
            ) from None
        body = b""
    declared = request.content_length
    if declared is not None and len(body) < declared:
        # The client closed its side early: gunicorn hands on what came, as if complete.
        raise ApiError(
            400,
            "invalid_request",
            f"the request body ended after {len(body)} of the {declared} bytes its "
            "Content-Length header announced",
        )
    # A UTF-8 byte order mark, which RFC 8259 lets a parser ignore (.NET writers send one)
    return body[len(UTF8_BOM) :] if body.startswith(UTF8_BOM) else body


UTF8_BOM = b"\xef\xbb\xbf"


def json_body(rt: Runtime) -> dict[str, Any]:
    """The request body as a JSON object: 415 for another content type or a content
    coding, 400 for broken, too deep or non-object JSON."""
    return parse_json_object(body_bytes(), rt.settings.max_json_depth)


def validated(rt: Runtime, schema: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` when it conforms to the schema declared for ``schema`` (a hook, or
    "feedback": ``hook_declarations.BODIES``); else 400 listing each problem with its
    JSON path (``pipeline.conforming``, the one check of every body)."""
    return conforming(rt, schema, body)


def _audit_refusal(
    rt: Runtime, kind: EndpointKind, service_id: str | None, reason: str, issuer: str | None
) -> None:
    """A 401 in the metrics, and in the audit as a count for its minute and reason (with
    the issuer when it is one we trust: a claimed issuer we do not know is attacker text,
    never stored). Never a row per call: anyone can send these, at any rate."""
    rt.metrics.refusals.labels(kind, reason).inc()
    if not rt.settings.audit_enabled:
        return
    found = rt.discovery.services.get(service_id or "")
    try:
        rt.stores.audit.record_refusal(
            Refusal(
                received_at=datetime.now(UTC),
                endpoint=kind,
                service_id=found.id if found else "-",
                reason=reason,
                issuer=issuer or "-",
            )
        )
    except Exception as exc:  # the audit never turns a 401 into a 500
        log.error("audit count of a refusal failed error=%s", type(exc).__name__)
