"""CORS on the FHIR test server, proved in a real browser.

The CDS Hooks sandbox reads the FHIR server from the page: ``GET /metadata``, the
patient, then the prefetch queries (``POST {type}/_search`` and ``GET``). A browser only
lets a page read another origin's answers when that origin says so (CORS), and sends a
preflight first for a bearer token or a non-simple content type. These tests serve a
small page from one 127.0.0.1 port and read the FHIR test server on another (a
different origin) from Debian's chromium, driven by Playwright; a server that allows
another origin only is the control: the same page must be blocked there.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from spine_cds_dev.fhir_server import FhirTestServer

CHROMIUM = os.environ.get("SPINE_CDS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "cors-token-" + uuid.uuid4().hex
PATIENT = "cors-patient"
OTHER_ORIGIN = "http://127.0.0.1:9"  # an origin the page is not served from

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# What the sandbox does with a FHIR server, in the order it does it (its requests carry
# `Accept: application/json+fhir`; a SMART launch adds a bearer token). Every result is
# reported, a blocked request as {"blocked": "<error>"}: fetch() rejects on a CORS failure.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CORS probe</title></head><body>
<script>
async function call(url, init) {
  try {
    const response = await fetch(url, init);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    return {status: response.status, body: body,
            location: response.headers.get('Location'), etag: response.headers.get('ETag')};
  } catch (err) {
    return {blocked: String(err)};
  }
}
async function probe(base, token, patient) {
  const auth = token ? {Authorization: 'Bearer ' + token} : {};
  const accept = {Accept: 'application/json+fhir'};
  const out = {origin: window.location.origin};
  out.metadata = await call(base + '/metadata', {headers: {...accept, ...auth}});
  out.patient = await call(base + '/Patient/' + patient, {headers: {...accept, ...auth}});
  out.search = await call(base + '/Observation/_search', {
    method: 'POST',
    headers: {...accept, ...auth, 'Content-Type': 'application/x-www-form-urlencoded'},
    body: 'patient=' + encodeURIComponent(patient) + '&_count=5'});
  out.searchGet = await call(base + '/Condition?patient=' + encodeURIComponent(patient),
                             {headers: {...accept, ...auth}});
  out.create = await call(base + '/Observation', {
    method: 'POST',
    headers: {...accept, ...auth, 'Content-Type': 'application/fhir+json'},
    body: JSON.stringify({resourceType: 'Observation', status: 'final',
      code: {text: 'from the browser'}, subject: {reference: 'Patient/' + patient}})});
  out.noToken = await call(base + '/Patient/' + patient, {headers: accept});
  return out;
}
</script></body></html>
"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        data = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, name="cors-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/probe.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _load_patient(server: FhirTestServer) -> None:
    server.load_bundle(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {"resourceType": "Patient", "id": PATIENT},
                    "request": {"method": "PUT", "url": f"Patient/{PATIENT}"},
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def open_to_all() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        _load_patient(server)
        yield server


@pytest.fixture(scope="module")
def open_to_another_origin() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN, cors_origin=OTHER_ORIGIN) as server:
        _load_patient(server)
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; "
            "scripts/test.sh does it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def _probe(browser: Any, page_url: str, base: str, token: str | None) -> dict[str, Any]:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_url)
        result: dict[str, Any] = page.evaluate(
            "([base, token, patient]) => probe(base, token, patient)", [base, token, PATIENT]
        )
        return result
    finally:
        context.close()


def test_a_page_on_another_origin_reads_the_server_as_the_sandbox_does(
    browser: Any, page_url: str, open_to_all: FhirTestServer
) -> None:
    result = _probe(browser, page_url, open_to_all.base_url, TOKEN)
    assert result["origin"] != open_to_all.base_url.split("/fhir")[0]  # really cross-origin
    metadata = result["metadata"]
    assert metadata.get("status") == 200, metadata
    assert metadata["body"]["resourceType"] == "CapabilityStatement"
    assert metadata["body"]["fhirVersion"] == "4.0.1"  # what the sandbox takes the version from
    assert result["patient"]["status"] == 200, result["patient"]
    assert result["patient"]["body"]["id"] == PATIENT
    for key in ("search", "searchGet"):
        assert result[key].get("status") == 200, (key, result[key])
        assert result[key]["body"]["resourceType"] == "Bundle"
    created = result["create"]
    assert created.get("status") == 201, created
    # Exposed headers: the page can read where the new resource is.
    assert created["location"] and "/Observation/" in created["location"]
    assert created["etag"]
    # An error is readable too (CORS headers on the 401), not a blocked request.
    assert result["noToken"].get("status") == 401, result["noToken"]
    assert result["noToken"]["body"]["resourceType"] == "OperationOutcome"


def test_the_browser_blocks_the_same_page_when_its_origin_is_not_allowed(
    browser: Any, page_url: str, open_to_another_origin: FhirTestServer
) -> None:
    result = _probe(browser, page_url, open_to_another_origin.base_url, TOKEN)
    for key in ("metadata", "patient", "search", "searchGet", "create", "noToken"):
        assert "blocked" in result[key], (key, result[key])
    # The server did answer (outside a browser nothing is blocked): only CORS stopped it.
    direct = requests.get(
        f"{open_to_another_origin.base_url}/metadata",
        headers=open_to_another_origin.auth_headers,
        timeout=30,
    )
    assert direct.status_code == 200


def test_preflight_is_answered_before_the_token_check(open_to_all: FhirTestServer) -> None:
    origin = "http://127.0.0.1:1234"
    response = requests.options(
        f"{open_to_all.base_url}/Observation/_search",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=30,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    allowed_headers = response.headers["Access-Control-Allow-Headers"].split(",")
    allowed = {h.strip().lower() for h in allowed_headers}
    assert {"authorization", "content-type", "accept"} <= allowed
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE"} <= methods


def test_a_restricted_origin_gets_no_cors_headers(open_to_another_origin: FhirTestServer) -> None:
    url = f"{open_to_another_origin.base_url}/metadata"
    headers = open_to_another_origin.auth_headers
    other = requests.get(url, headers={**headers, "Origin": "http://127.0.0.1:1234"}, timeout=30)
    assert "Access-Control-Allow-Origin" not in other.headers
    allowed = requests.get(url, headers={**headers, "Origin": OTHER_ORIGIN}, timeout=30)
    assert allowed.headers["Access-Control-Allow-Origin"] == OTHER_ORIGIN


def test_capability_statement_names_the_server_and_its_base(open_to_all: FhirTestServer) -> None:
    body = requests.get(
        f"{open_to_all.base_url}/metadata", headers=open_to_all.auth_headers, timeout=30
    ).json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["implementation"]["url"] == open_to_all.base_url
    assert body["rest"][0]["mode"] == "server"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Condition", "ServiceRequest"} <= types
    json.dumps(body)  # plain JSON, no undefined values
