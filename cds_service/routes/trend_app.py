"""GET /trend/...: the SMART app the cards link to, served as built static files.

The app (source in smart_app/, built into cds_service/static/trend/) runs in the
clinician's browser: ``/trend/launch`` is its SMART launch URL (the EHR adds ``launch``
and ``iss``), ``/trend/`` the page it returns to after authorization. It reads the
patient's data from the EHR's FHIR server with the user's token; the service only serves
files, so these routes need no client JWT.

Content-Security-Policy: scripts and styles from this origin only (no inline code);
``connect-src`` lets the app reach the FHIR server and its token endpoint, which are
only known at launch (``iss``): any https origin, the loopback interface for local
trials and, in development mode only, any http origin as well.

``card_links_base_url`` gives the hook route the service's base URL for the cards' link
to the app (``cds_service.trend_link``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import NotFound

from cds_service import trend_link
from cds_service.runtime import Runtime

blueprint = Blueprint("trend_app", __name__)

STATIC_DIR = "static/trend"
# The only files served, with their types (nothing else under the folder is reachable).
FILES = {
    "index.html": "text/html; charset=utf-8",
    "launch.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "launch.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
ASSETS = ("app.js", "launch.js", "app.css")
CONNECT_SRC = "'self' https: http://127.0.0.1:* http://localhost:*"
FRAME_ANCESTORS = "'self' https: http://127.0.0.1:* http://localhost:*"


def content_security_policy(dev_mode: bool) -> str:
    connect = CONNECT_SRC + (" http:" if dev_mode else "")
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            # EHRs often show SMART apps in a frame of their own page.
            f"frame-ancestors {FRAME_ANCESTORS}",
        )
    )


def static_dir() -> Path:
    return Path(str(resources.files("cds_service").joinpath(STATIC_DIR)))


def _serve(name: str) -> Response:
    if name not in FILES:
        raise NotFound()
    path = static_dir() / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound() from None
    runtime: Runtime = current_app.extensions["spine_cds"]
    response = Response(data, status=200, content_type=FILES[name])
    response.headers["Content-Security-Policy"] = content_security_policy(runtime.settings.dev_mode)
    # The launch carries a one-time code and state in the URL: never send it on.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache" if name.endswith(".html") else "max-age=300"
    return response


@blueprint.get("/trend/launch")
def launch() -> Response:
    return _serve("launch.html")


@blueprint.get("/trend/")
def index() -> Response:
    return _serve("index.html")


def _asset_view(name: str) -> Callable[[], Response]:
    def view() -> Response:
        return _serve(name)

    return view


for _name in ASSETS:
    blueprint.add_url_rule(
        f"/trend/{_name}", endpoint=_name.replace(".", "_"), view_func=_asset_view(_name)
    )


def card_links_base_url(runtime: Runtime) -> str:
    """The base URL for the trend link on the cards answering the current request: the
    hook route passes it to the renderer (``CardContext.trend_base_url``)."""
    settings = runtime.settings
    return trend_link.base_url_for(settings.public_base_url, settings.dev_mode, request.url_root)
