"""GET /trend/...: the SMART app the cards link to, served as built static files.

The app (source in smart_app/, built into cds_service/static/trend/) runs in the
clinician's browser: ``/trend/launch`` is its SMART launch URL (the EHR adds ``launch``
and ``iss``), ``/trend/`` the page it returns to after authorization. It reads the
patient's data from the EHR's FHIR server with the user's token; the service only serves
files, so these routes need no client JWT.

The launch is refused, with a page that says why, unless its ``iss`` (or
``fhirServiceUrl``) is one of the FHIR servers the app may connect to
(``cds_service.trend_servers``); the approved server and the mode go to the page in a
``<meta>`` element, and the app itself refuses authorization and token endpoints that are
not https (loopback http in development mode) and paging links to another origin. The
app's own page (``/trend/``) gets in the same element what the app reads as the service
does (``trend_link.reading_facts``: searches, codes, statuses, units, settings in force).

Content-Security-Policy: scripts and styles from this origin only (no inline code);
``connect-src`` lets the app reach the FHIR server and its token endpoint, which are
only known at launch (``iss``): any https origin and, in development mode only, any http
origin as well (loopback included); outside it, only the listed servers' own http
origins (``trend_servers.connect_sources``). ``frame-ancestors``:
``'self'`` and the EHR origins of ``trend_frame_ancestors`` (loopback pages too in
development mode).

``/trend`` redirects to ``trend/`` with a relative ``Location``: never one built from
the request's Host header.

``card_links_base_url`` gives the hook route the service's base URL for the cards' link
to the app (``cds_service.trend_link``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import NotFound

from cds_service import trend_link
from cds_service.auth import TrustedClient, load_trusted_clients
from cds_service.runtime import Runtime
from cds_service.settings import Settings, SettingsError
from cds_service.trend_servers import (
    TrendServers,
    connect_sources,
    frame_ancestors,
    trend_servers,
)

blueprint = Blueprint("trend_app", __name__)
EXTENSION = "spine_cds_trend_servers"

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
# The element of the built pages that the route fills in (what the app may not guess).
PAGE_META = '<meta name="spine-cds-launch" content="">'
# Characters of a refused server URL that the refusal page quotes.
MAX_QUOTED = 200


def content_security_policy(settings: Settings, servers: TrendServers) -> str:
    connect = connect_sources(settings.dev_mode, servers)
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            # EHRs often show SMART apps in a frame of their own page: theirs, not any.
            "frame-ancestors " + frame_ancestors(settings.dev_mode, settings.trend_frame_ancestors),
        )
    )


@blueprint.record_once
def _load_servers(state: BlueprintSetupState) -> None:
    """Work the allowlist out once, at startup (the trusted-clients file was checked by
    the verifier already; development mode reads no clients)."""
    runtime: Runtime = state.app.extensions["spine_cds"]
    settings = runtime.settings
    clients: tuple[TrustedClient, ...] = ()
    if not settings.dev_mode:
        try:
            clients = load_trusted_clients(settings.trusted_clients_file or None)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    servers = trend_servers(
        settings.dev_mode, settings.trend_fhir_servers, (c.fhir_servers for c in clients)
    )
    state.app.extensions[EXTENSION] = servers


def static_dir() -> Path:
    return Path(str(resources.files("cds_service").joinpath(STATIC_DIR)))


def _settings() -> Settings:
    runtime: Runtime = current_app.extensions["spine_cds"]
    return runtime.settings


def _headers(response: Response, cache: str) -> Response:
    servers: TrendServers = current_app.extensions[EXTENSION]
    response.headers["Content-Security-Policy"] = content_security_policy(_settings(), servers)
    # The launch carries a one-time code and state in the URL: never send it on.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = cache
    return response


def _serve(name: str, page: dict[str, object] | None = None) -> Response:
    """A built file; for a page, ``page`` fills its ``spine-cds-launch`` element."""
    if name not in FILES:
        raise NotFound()
    path = static_dir() / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound() from None
    if page is not None:
        meta = PAGE_META.encode()
        if data.count(meta) != 1:  # an old build: say so rather than serve a broken page
            raise RuntimeError(f"{name} has no {PAGE_META} element: rebuild the trend app")
        value = html.escape(json.dumps(page, separators=(",", ":")), quote=True)
        data = data.replace(meta, f'<meta name="spine-cds-launch" content="{value}">'.encode())
    response = Response(data, status=200, content_type=FILES[name])
    return _headers(response, "no-cache" if name.endswith(".html") else "max-age=300")


REFUSAL_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>The trend app was not started</title>
<link rel="stylesheet" href="app.css">
</head>
<body data-state="refused">
<main id="main">
<h1>The trend app was not started</h1>
<p id="refusal" role="alert">{why}</p>
<p>The trend app connects only to the FHIR servers of the EHRs this service trusts, so
that neither your sign-in nor the patient's data can go to, or come from, another server.
Open the app from the EHR (or from a card's link). If this server is your EHR's, the
service's administrators can add it (the setting <code>trend_fhir_servers</code>, or the
trusted client's <code>fhir_servers</code>).</p>
</main>
</body>
</html>
"""


def _refuse(why: str) -> Response:
    """The page that says why the launch was refused (plain HTML, no script)."""
    body = REFUSAL_PAGE.format(why=why)
    return _headers(Response(body, status=400, content_type=FILES["launch.html"]), "no-store")


def _quoted(url: str) -> str:
    shown = url if len(url) <= MAX_QUOTED else url[:MAX_QUOTED] + "…"
    return f"<code>{html.escape(shown, quote=True)}</code>"


@blueprint.get("/trend/launch")
def launch() -> Response:
    """The SMART launch: served only for a FHIR server the app may connect to. ``iss``
    and ``fhirServiceUrl`` (an open server) are both read, every value of each, as the
    app's SMART client takes either."""
    named = [*request.args.getlist("iss"), *request.args.getlist("fhirServiceUrl")]
    if not named:
        return _refuse(
            "This is the SMART launch URL of the trend app: open it from the EHR (or from a "
            "card's link). The launch names no FHIR server (the <code>iss</code> parameter)."
        )
    if len(set(named)) > 1:
        return _refuse(
            "The launch names more than one FHIR server: "
            + ", ".join(_quoted(url) for url in named[:3])
            + "."
        )
    server = named[0]
    servers: TrendServers = current_app.extensions[EXTENSION]
    problem = servers.problem(server)
    if problem is not None:
        return _refuse(f"The launch names the FHIR server {_quoted(server)}, but {problem}.")
    return _serve("launch.html", {"server": server, "devMode": _settings().dev_mode})


@blueprint.get("/trend/")
def index() -> Response:
    """The app's page, with what it reads as this service does (``trend_link.reading_facts``:
    the searches, codes, statuses, units and settings in force), so that the app holds no
    copy of them."""
    runtime: Runtime = current_app.extensions["spine_cds"]
    facts = trend_link.reading_facts(
        runtime.value_sets, runtime.mapping, runtime.settings.fhir_max_pages, runtime.rules
    )
    page = {"devMode": runtime.settings.dev_mode, "service": facts}
    return _serve("index.html", page)


@blueprint.get("/trend")
def without_slash() -> Response:
    """To ``trend/``, relative to this URL (so behind a proxy's path too): Werkzeug's own
    redirect built an absolute URL from the Host header."""
    query = urlencode(list(request.args.items(multi=True)))
    location = "trend/" + (f"?{query}" if query else "")
    response = Response(status=308)
    response.headers["Location"] = location
    return _headers(response, "no-store")


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
