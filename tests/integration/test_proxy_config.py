"""The shipped nginx config (deploy/nginx/spine-cds.conf), run by Debian's nginx in front
of the service under gunicorn: what its public listener serves, and how it limits
clients that send no credentials.

- Metrics and readiness are on the internal listener only; the public one answers 404
  to every spelling of their paths that nginx normalises to them.
- Requests without an Authorization header are rate limited (429) before they reach the
  service, so a flood of unauthenticated calls costs the service only the burst: the
  service's own count of 401s, read from its metrics, is what got through.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import time
from pathlib import Path

import pytest
import requests

from spine_cds_dev.service_process import ServiceProcess, free_port
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request
from tests.support.nginx import NginxProxy
from tests.support.raw_http import exchange

pytestmark = pytest.mark.integration
BASE = "https://cds.example.org"
# The limit for requests without an Authorization header, as the config states it.
CONF = (Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "spine-cds.conf").read_text()


def _limit(zone: str) -> tuple[int, int]:
    """(rate per second, burst) of a limit_req zone of the shipped config."""
    rate = re.search(rf"zone={zone}:\S+ rate=(\d+)r/s;", CONF)
    burst = re.search(rf"limit_req zone={zone} burst=(\d+) nodelay;", CONF)
    assert rate and burst, f"no limit_req zone {zone} in the shipped config"
    return int(rate.group(1)), int(burst.group(1))


def _get_as_written(port: int, path: str) -> tuple[int, str]:
    """GET with the path sent exactly as written (requests would normalise dot segments)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def test_metrics_and_readiness_are_served_on_the_internal_listener_only(tmp_path: Path) -> None:
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    with ServiceProcess(env=env, log_path=tmp_path / "service.log") as service:
        assert requests.get(service.url + "/metrics", timeout=5).status_code == 200
        with NginxProxy(service.port) as proxy:
            session = requests.Session()
            for path in ("/metrics", "/readyz"):
                spellings = [path, "/" + path, f"/.{path}", f"/x/..{path}", f"{path}?x=1"]
                spellings.append("/%" + format(ord(path[1]), "x") + path[2:])
                for spelling in spellings:
                    status, text = _get_as_written(proxy.port, spelling)
                    assert status == 404, (spelling, status)
                    assert "spine_cds_" not in text and "checks" not in text
            # Liveness stays public; the service's other endpoints too.
            for path in ("/health", "/livez", "/cds-services"):
                assert session.get(proxy.url + path, timeout=5).status_code == 200, path
            internal = session.get(proxy.internal_url + "/metrics", timeout=5)
            assert internal.status_code == 200
            assert "spine_cds_requests_total" in internal.text
            ready = session.get(proxy.internal_url + "/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json()["checks"]
            # The internal listener serves nothing else.
            assert session.get(proxy.internal_url + "/cds-services", timeout=5).status_code == 404


def _refusals_counted(metrics: str) -> int:
    found = re.findall(
        r'^spine_cds_requests_total\{[^}]*status="401"[^}]*\} (\S+)$', metrics, re.MULTILINE
    )
    return int(sum(float(value) for value in found))


def test_unauthenticated_calls_are_rate_limited_before_the_service(tmp_path: Path) -> None:
    # Secure mode: a trusted client whose key set is empty, so every call is refused.
    clients = tmp_path / "clients.json"
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))
    clients.write_text(json.dumps([{"iss": "https://ehr.example.org", "jwks_file": str(jwks)}]))
    env = {
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_PUBLIC_BASE_URL": BASE,
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        "SPINE_CDS_AUDIT_HASH_KEY": secrets.token_urlsafe(32),
    }
    rate, burst = _limit("spine_cds_unauthenticated")
    any_rate, any_burst = _limit("spine_cds_any")
    calls = 3 * burst
    assert 2 * calls < any_burst  # both rounds below stay inside the all-clients burst
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    with ServiceProcess(env=env, args=(), log_path=tmp_path / "service.log") as service:
        with NginxProxy(service.port) as proxy:
            session = requests.Session()
            url = f"{proxy.url}/cds-services/{SELECT_ID}"
            started = time.monotonic()
            answers = [session.post(url, json=body, timeout=10) for _ in range(calls)]
            elapsed = time.monotonic() - started
            statuses = [answer.status_code for answer in answers]
            passed = statuses.count(401)
            # A refusal is in JSON, saying when to try again. It is read from the round
            # itself: a call sent after it may find the bucket refilled and pass.
            for refused in (answer for answer in answers if answer.status_code == 429):
                assert refused.json()["error"] == "too_many_requests"
                assert refused.headers["Retry-After"] == "1"
            assert set(statuses) <= {401, 429}, statuses
            # The burst passes at once, then the rate: the rest are refused by nginx.
            assert burst <= passed <= burst + 1 + rate * elapsed, (passed, elapsed)
            if elapsed < (calls - burst - 1) / rate:
                assert 429 in statuses, (statuses, elapsed)
            metrics = session.get(proxy.internal_url + "/metrics", timeout=5).text
            assert _refusals_counted(metrics) == passed  # the 429s never reached it

            # With an Authorization header (here a made-up one, which the service refuses)
            # the calls reach the service: the limit is for clients sending no credentials.
            headers = {"Authorization": "Bearer not-a-real-token"}
            statuses = [
                session.post(url, json=body, headers=headers, timeout=10).status_code
                for _ in range(calls)
            ]
            assert statuses == [401] * calls
            metrics = session.get(proxy.internal_url + "/metrics", timeout=5).text
            assert _refusals_counted(metrics) == passed + calls
    assert any_rate >= 10 * rate  # the all-clients ceiling leaves EHR traffic alone


def _assert_json_refusal(status: int, headers: dict[str, str], body: bytes, expected: int) -> str:
    assert status == expected, (status, body[:200])
    assert headers["content-type"] == "application/json", (expected, headers)
    assert headers["x-content-type-options"] == "nosniff"
    answer = json.loads(body)
    assert answer["message"]
    return str(answer["error"])


def test_what_nginx_refuses_itself_is_json_as_the_service_refuses(tmp_path: Path) -> None:
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    with ServiceProcess(env=env, log_path=tmp_path / "service.log") as service:
        with NginxProxy(service.port) as proxy:
            port = proxy.port
            get = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            refused = {
                "not_found": (exchange(port, get % b"/metrics"), 404),
                # the pages themselves are not reachable from outside
                "not_found ": (exchange(port, get % b"/.refused/400"), 404),
                "bad_request": (exchange(port, b"GARBAGE\r\n\r\n"), 400),
                "bad_request ": (
                    exchange(
                        port, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 40_000 + b"\r\n\r\n"
                    ),
                    400,
                ),
                "request_entity_too_large": (
                    exchange(
                        port,
                        b"POST /cds-services/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 6000000\r\n\r\n",
                    ),
                    413,
                ),
            }
            for error, (answer, status) in refused.items():
                assert _assert_json_refusal(*answer, status) == error.strip()
            # The service's own refusals pass through as the service wrote them.
            status, headers, body = exchange(port, get % b"/cds-services/nope")
            assert status == 404 and json.loads(body)["error"] == "unknown_service"
            assert headers["x-request-id"]
            known = b"/cds-services/spine-imaging-followup-select"
            status, headers, body = exchange(port, get % known)
            assert status == 405 and json.loads(body)["error"] == "method_not_allowed"
            assert headers["x-request-id"]  # the service's, not a page of nginx's
            # nginx's 404 says what the service's own 404 says (the config holds a copy)
            ours = exchange(port, get % b"/no-such-endpoint")
            theirs = refused["not_found"][0]
            assert "x-request-id" in ours[1] and "x-request-id" not in theirs[1]
            assert json.loads(theirs[2]) == json.loads(ours[2])
    with NginxProxy(free_port()) as proxy:  # nothing listens upstream
        answer = exchange(
            proxy.port, b"GET /cds-services HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert _assert_json_refusal(*answer, 502) == "bad_gateway"
