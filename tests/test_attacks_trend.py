"""The attack suite, trend app: the SMART app the cards link to, attacked from outside.

Real parts throughout: the service under gunicorn, in secure mode (a trusted client
whose ``fhir_servers`` names the FHIR test server, the EHR origin allowed to frame the
app) and in development mode; the project's FHIR test server with its SMART
authorization server; an attacker's FHIR server of the same kind; Debian's chromium
driven by Playwright. What a real server will not do on demand (a hostile SMART
configuration, a hostile ``next`` link) is put into the real server's answers by the
browser's request routing.

The findings (issue 24): the app followed any ``iss`` (an open redirect that handed the
authorization code and the PKCE verifier to whoever the URL named), used whatever
authorization and token endpoints the server named, sent the bearer token to a ``next``
link on any origin, could be framed by any https page, and ``/trend`` redirected to a
URL built from the Host header.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

from cds_service.examples import load_example
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess, ServiceStartError
from tests.integration.test_fhir_server_cors import CHROMIUM, CHROMIUM_ARGS
from tests.support.link_server import LinkServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOKEN = "trend-attack-static-" + uuid.uuid4().hex
ISS = "https://ehr.example.org"
EXAMPLE = load_example("e01-improving", datetime.now(UTC).date())
# Another FHIR server the secure service's operators listed (never contacted).
PARTNER = "https://fhir.partner.example.org/r4"
SETTLED = "body[data-state='ready'], body[data-state='error'], body[data-state='refused']"


class PageServer:
    """An origin that serves one HTML page (an EHR's page that frames the app)."""

    def __init__(self, html: str = "") -> None:
        self.html = html
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                payload = server.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:  # by name: another origin than the service's 127.0.0.1
        return f"http://localhost:{self._httpd.server_address[1]}"

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        server.load_bundle(EXAMPLE.bundle)
        yield server


@pytest.fixture(scope="module")
def attacker() -> Iterator[FhirTestServer]:
    """The attacker's own FHIR server with its own SMART authorization server."""
    with FhirTestServer() as server:
        server.load_bundle(EXAMPLE.bundle)
        yield server


@pytest.fixture(scope="module")
def ehr_page() -> Iterator[PageServer]:
    with PageServer() as page:
        yield page


@pytest.fixture(scope="module")
def other_page() -> Iterator[PageServer]:
    with PageServer() as page:
        yield page


@pytest.fixture(scope="module")
def secure(
    fhir: FhirTestServer, ehr_page: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("trend-secure")
    clients = tmp / "clients.json"
    entry = {"iss": ISS, "jwks_url": f"{ISS}/jwks.json", "fhir_servers": [fhir.base_url]}
    clients.write_text(json.dumps([entry]))
    env = {
        "HOME": str(tmp),
        "SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3"),
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        "SPINE_CDS_TREND_FHIR_SERVERS": PARTNER,
        "SPINE_CDS_TREND_FRAME_ANCESTORS": ehr_page.origin,
    }
    with ServiceProcess(env=env, args=(), workers=2, log_path=tmp / "service.log") as svc:
        yield svc


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("trend-dev")
    env = {"HOME": str(tmp), "SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3")}
    with ServiceProcess(env=env, workers=2, log_path=tmp / "service.log") as svc:
        yield svc


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def _launch_url(service: ServiceProcess, server: FhirTestServer, **extra: str) -> str:
    launch = server.create_launch(f"{service.url}/trend/launch", EXAMPLE.patient_id)
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in extra.items())
    url = f"{service.url}/trend/launch?launch={launch}&iss={quote(server.base_url, safe='')}"
    return url + (f"&{query}" if query else "")


def _visit(
    browser: Any, url: str, prepare: Callable[[Any], None] | None = None, wait_ms: int = 20000
) -> dict[str, Any]:
    """Open ``url`` and wait for the app to settle; what it showed and every URL the
    browser requested."""
    context = browser.new_context()
    seen: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda r: seen.append(r.url))
        if prepare is not None:
            prepare(page)
        page.goto(url)
        try:
            page.wait_for_selector(SETTLED, timeout=wait_ms)
        except Exception:  # the state below says what happened instead
            pass
        return {
            "url": page.url,
            "state": page.evaluate("() => document.body.dataset.state || ''"),
            "text": page.evaluate("() => document.body.innerText"),
            "requests": seen,
        }
    finally:
        context.close()


def _origin(url: str) -> str:
    return url.split("/fhir", 1)[0]


# --------------------------------------------------------------------------
# The trend app trusts any iss: an allowlist, and a page that says why.

UNLISTED = {
    "attacker": lambda a, f: {"iss": a.base_url},
    "attacker-open-server": lambda a, f: {"fhirServiceUrl": a.base_url, "patientId": "x"},
    "listed-and-attacker": lambda a, f: {"iss": f.base_url, "fhirServiceUrl": a.base_url},
    "two-iss": lambda a, f: {"iss": [f.base_url, a.base_url]},
    "other-path": lambda a, f: {"iss": f.base_url + "-other"},
    "userinfo": lambda a, f: {"iss": f.base_url.replace("://", "://u:p@")},
    "backslash": lambda a, f: {"iss": f.base_url.replace("/fhir", "\\@evil.example/fhir")},
    "javascript": lambda a, f: {"iss": "javascript:alert(document.domain)//"},
    "markup": lambda a, f: {"iss": 'https://evil.example/"><script>alert(1)</script>'},
    "public-https": lambda a, f: {"iss": "https://evil.example/fhir"},
}


@pytest.mark.parametrize("case", sorted(UNLISTED))
def test_a_launch_against_an_unlisted_fhir_server_is_refused_with_a_page_saying_why(
    secure: ServiceProcess, fhir: FhirTestServer, attacker: FhirTestServer, case: str
) -> None:
    params = UNLISTED[case](attacker, fhir)
    response = requests.get(f"{secure.url}/trend/launch", params=params, timeout=10)
    assert response.status_code == 400, response.text[:200]
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "The trend app was not started" in page
    assert "launch.js" not in page and "<script" not in page  # nothing runs, nothing follows
    if case in ("attacker", "public-https", "other-path"):
        assert "not one of the FHIR servers" in page


def test_a_launch_against_a_listed_fhir_server_is_served(
    secure: ServiceProcess, fhir: FhirTestServer
) -> None:
    for server in (fhir.base_url, fhir.base_url + "/", PARTNER):
        response = requests.get(f"{secure.url}/trend/launch", params={"iss": server}, timeout=10)
        assert response.status_code == 200, server
        meta = re.search(r'<meta name="spine-cds-launch" content="([^"]*)">', response.text)
        assert meta is not None
        assert json.loads(meta[1].replace("&quot;", '"')) == {"server": server, "devMode": False}


def test_development_mode_allows_loopback_servers_only(
    dev: ServiceProcess, fhir: FhirTestServer
) -> None:
    ok = requests.get(f"{dev.url}/trend/launch", params={"iss": fhir.base_url}, timeout=10)
    assert ok.status_code == 200
    for server in ("https://evil.example/fhir", "http://10.0.0.1/fhir", "http://127.1:9/fhir"):
        refused = requests.get(f"{dev.url}/trend/launch", params={"iss": server}, timeout=10)
        assert refused.status_code == 400, server


def test_in_a_browser_an_unlisted_server_is_never_contacted(
    browser: Any, secure: ServiceProcess, attacker: FhirTestServer
) -> None:
    """The attacker made a launch on their own server and sends the victim the link."""
    before = len(attacker.auth_events())
    shown = _visit(browser, _launch_url(secure, attacker))
    assert shown["state"] == "refused", shown
    assert "not one of the FHIR servers" in shown["text"]
    assert attacker.base_url in shown["text"]  # the page says which server it refused
    assert not [u for u in shown["requests"] if u.startswith(_origin(attacker.base_url))]
    events = attacker.auth_events()[before:]
    assert not [e for e in events if e["event"] in ("authorize", "token")]


# --------------------------------------------------------------------------
# Authorization and token endpoints: https (loopback http in development), no other scheme.

BAD_ENDPOINTS = {
    "authorize-javascript": ("authorization_endpoint", "javascript:document.title='pwned'//"),
    "authorize-data": ("authorization_endpoint", "data:text/html,<h1>login</h1>"),
    "authorize-plain-http": ("authorization_endpoint", "http://attacker.example/authorize"),
    "token-plain-http": ("token_endpoint", "http://attacker.example/token"),
    "token-javascript": ("token_endpoint", "javascript:alert(1)"),
}


@pytest.mark.parametrize("case", sorted(BAD_ENDPOINTS))
def test_in_a_browser_unsafe_smart_endpoints_are_refused(
    browser: Any, dev: ServiceProcess, fhir: FhirTestServer, case: str
) -> None:
    field, value = BAD_ENDPOINTS[case]
    config = requests.get(f"{fhir.base_url}/.well-known/smart-configuration", timeout=10).json()
    hostile = {**config, field: value}

    def prepare(page: Any) -> None:
        page.route("**/.well-known/smart-configuration", lambda r: r.fulfill(json=hostile))
        page.route("http://attacker.example/**", lambda r: r.fulfill(status=200, body="x"))

    before = len(fhir.auth_events())
    shown = _visit(browser, _launch_url(dev, fhir), prepare, wait_ms=10000)
    assert shown["state"] == "refused", shown
    what = "authorization endpoint" if field == "authorization_endpoint" else "token endpoint"
    assert f"its {what}" in shown["text"] and "is not https" in shown["text"]
    assert not [u for u in shown["requests"] if "attacker.example" in u]
    assert [e for e in fhir.auth_events()[before:] if e["event"] == "authorize"] == []


def test_in_a_browser_secure_mode_refuses_plain_http_endpoints_even_on_loopback(
    browser: Any, secure: ServiceProcess, fhir: FhirTestServer
) -> None:
    """The FHIR test server's own endpoints are http on 127.0.0.1: fine in development
    mode (the browser tests), refused outside it."""
    before = len(fhir.auth_events())
    shown = _visit(browser, _launch_url(secure, fhir))
    assert shown["state"] == "refused", shown
    assert "authorization endpoint" in shown["text"] and "is not https" in shown["text"]
    assert [e for e in fhir.auth_events()[before:] if e["event"] == "authorize"] == []


# --------------------------------------------------------------------------
# The bearer token never goes to a next link on another origin.


def _next_links(fhir_port: int, far_port: int) -> dict[str, str]:
    return {
        "other-port": f"http://127.0.0.1:{far_port}/fhir/Condition?page=2",
        "other-host-same-server": f"http://localhost:{fhir_port}/fhir/Condition?page=2",
        "backslashes": f"http:\\\\127.0.0.1:{far_port}\\fhir\\Condition?page=2",
        "userinfo": f"http://127.0.0.1:{fhir_port}@127.0.0.1:{far_port}/fhir/x?page=2",
        # the FHIR server's own host and port, another path (another tenant's, an admin
        # endpoint): not under the base, so no token either
        "other-path-same-host": f"http://127.0.0.1:{fhir_port}/other/fhir/Condition?page=2",
        # under the base as the browser reads it, but the server may decode the escaped
        # slash and climb out of it
        "escaped-dot-segment": f"http://127.0.0.1:{fhir_port}/fhir/..%2Fother/Condition?page=2",
        # Tomcat reads a path parameter off a segment, so `..;/` climbs there; a proxy and
        # a server that each decode once turn %252e%252e into `..` (an attack suite)
        "path-parameter-dot-segment": f"http://127.0.0.1:{fhir_port}/fhir/..;/other/Condition?page=2",
        "double-escaped-dot-segment": f"http://127.0.0.1:{fhir_port}/fhir/%252e%252e/other/Condition?page=2",
    }


def _with_next_link(link: str, seen: list[str]) -> Callable[[Any], None]:
    def prepare(page: Any) -> None:
        def handle(route: Any) -> None:
            seen.append(route.request.url)
            response = route.fetch()
            bundle = response.json()
            if len(seen) == 1:  # the first page of the search names the link
                bundle["link"] = [*bundle.get("link", []), {"relation": "next", "url": link}]
            route.fulfill(response=response, json=bundle)

        page.route(re.compile(r"/fhir/Condition\?"), handle)

    return prepare


@pytest.mark.parametrize("case", sorted(_next_links(1, 2)))
def test_in_a_browser_the_token_never_goes_to_a_next_link_on_another_origin(
    browser: Any, dev: ServiceProcess, fhir: FhirTestServer, case: str
) -> None:
    with LinkServer() as far:
        link = _next_links(urlsplit(fhir.base_url).port or 0, far.port)[case]
        seen: list[str] = []
        shown = _visit(browser, _launch_url(dev, fhir), _with_next_link(link, seen))
        assert far.seen == []  # not even a preflight
    assert shown["state"] == "ready", shown
    assert len(seen) == 1  # the first page only
    assert "next page is on another server" in shown["text"]


def test_in_a_browser_a_next_link_on_the_same_server_is_still_followed(
    browser: Any, dev: ServiceProcess, fhir: FhirTestServer
) -> None:
    link = f"{fhir.base_url}/Condition?patient={EXAMPLE.patient_id}&_count=100&_offset=100"
    seen: list[str] = []
    shown = _visit(browser, _launch_url(dev, fhir), _with_next_link(link, seen))
    assert shown["state"] == "ready", shown
    assert seen[1:] == [link]
    assert "another server" not in shown["text"]


# --------------------------------------------------------------------------
# frame-ancestors: the EHR origins of the setting, not any https page.


def _frame_ancestors(response: requests.Response) -> list[str]:
    csp = response.headers["Content-Security-Policy"]
    return csp.split("frame-ancestors ", 1)[1].split(";")[0].split()


def test_the_app_may_be_framed_by_the_listed_ehr_origins_only(
    secure: ServiceProcess, dev: ServiceProcess, fhir: FhirTestServer, ehr_page: PageServer
) -> None:
    pages = ("/trend/", f"/trend/launch?iss={fhir.base_url}", "/trend/launch?iss=https://x.org")
    for path in pages:
        response = requests.get(secure.url + path, timeout=10)
        assert _frame_ancestors(response) == ["'self'", ehr_page.origin], path
        assert "X-Frame-Options" not in response.headers
        dev_response = requests.get(dev.url + path, timeout=10)
        assert "https:" not in _frame_ancestors(dev_response)


def test_in_a_browser_only_the_listed_ehr_origin_can_frame_the_app(
    browser: Any, secure: ServiceProcess, ehr_page: PageServer, other_page: PageServer
) -> None:
    frame = f'<!doctype html><title>EHR</title><iframe src="{secure.url}/trend/launch"></iframe>'
    shown: dict[str, str] = {}
    for name, server in (("listed", ehr_page), ("other", other_page)):
        server.html = frame
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(server.origin + "/")
            page.wait_for_load_state("load")
            (child,) = [f for f in page.frames if f is not page.main_frame]
            state = child.evaluate("() => document.body.dataset.state || ''")
            # Chromium shows its error page in place of a frame the CSP forbids.
            shown[name] = state or ("blocked" if child.url.startswith("chrome-error:") else "")
        finally:
            context.close()
    # The listed EHR sees the app (here: its refusal page, the launch names no server);
    # another origin gets nothing.
    assert shown == {"listed": "refused", "other": "blocked"}


def test_a_frame_ancestor_that_is_not_an_origin_stops_the_service(tmp_path: Path) -> None:
    """A value that would widen or break the policy ("https:", a second directive)."""
    for bad in ("https:", "https://ehr.example.org; script-src *", "http://ehr.example.org"):
        env = {
            "SPINE_CDS_TREND_FRAME_ANCESTORS": bad,
            "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        }
        log = tmp_path / "service.log"
        with pytest.raises(ServiceStartError):
            with ServiceProcess(env=env, workers=1, log_path=log):
                pass
        assert "trend_frame_ancestors[0]" in log.read_text()


# --------------------------------------------------------------------------
# /trend redirected to a Location built from the Host header.


def _raw_get(url: str, path: str, host: str) -> bytes:
    """One request with a Host header of the attacker's choosing, as a poisoned cache or
    a proxy that passes Host on would send it."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("mode", ["secure", "dev"])
def test_the_trend_redirect_is_relative_whatever_the_host_header(
    secure: ServiceProcess, dev: ServiceProcess, mode: str
) -> None:
    service = secure if mode == "secure" else dev
    answer = _raw_get(service.url, "/trend?x=1", "evil.example")
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 308"), head
    assert "\r\nLocation: trend/?x=1\r\n" in head
    assert b"evil.example" not in answer
    followed = requests.get(f"{service.url}/trend", timeout=10)
    assert followed.status_code == 200 and followed.url == f"{service.url}/trend/"
