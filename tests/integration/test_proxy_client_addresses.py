"""Whose budget a request spends: the shipped nginx config as each deployment renders it,
run by Debian's nginx in front of the secure service under gunicorn, over real HTTP.

In the Kubernetes pod every call comes from the ingress controller. Keyed on the
connection's address, all clients shared one budget: an anonymous client sending a
made-up ``Authorization`` header got 9 of an EHR's 10 real calls answered 429, and 8
clinicians opening the trend app at once got 27 of their 48 files refused. The pod's start
command now has nginx take the client's address from X-Forwarded-For, from the
addresses of INGRESS_ADDRESSES only (here 127.0.0.1 stands for the ingress controller),
and the trend app's files have a budget of their own.

- Two clients behind the trusted proxy (two X-Forwarded-For addresses) have two budgets:
  a flood from one, with or without a made-up header, leaves the other's calls alone.
- X-Forwarded-For from any other address is ignored: a client cannot pick its budget by
  naming addresses. On a host and in compose, which no proxy fronts, it is never read.
- 8 clinicians behind one NAT address open the trend app at once: every file is served,
  and their files spend neither the hook calls' budget nor the EHR's.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from urllib.parse import quote

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request
from tests.support.nginx import CONFIG, NginxProxy, Where

pytestmark = pytest.mark.integration

BASE = "https://cds.example.org"
HOOK = f"/cds-services/{SELECT_ID}"
ISS = "https://ehr.example.org"
FHIR = "http://127.0.0.1:9/fhir"  # listed for the trend launch; never contacted
PROXY = "127.0.0.1"  # the ingress controller, as INGRESS_ADDRESSES names it
ATTACKER = "198.51.100.7"
EHR = "203.0.113.20"
HOSPITAL = "192.0.2.44"  # a hospital's NAT address: clinicians' browsers and its EHR
# A cold opening of the trend app: the launch page, its script and style, the app's page
# (back from the EHR's authorization), its script and style (the browser asks again
# without a cache).
OPENING = (
    f"/trend/launch?iss={quote(FHIR, safe='')}&launch=abc",
    "/trend/launch.js",
    "/trend/app.css",
    "/trend/?code=x&state=y",
    "/trend/app.js",
    "/trend/app.css",
)


def limit(zone: str) -> tuple[int, int]:
    """(rate per second, burst) of a limit_req zone of the shipped config."""
    conf = CONFIG.read_text(encoding="utf-8")
    rate = re.search(rf"zone={zone}:\S+ rate=(\d+)r/s;", conf)
    bursts = set(re.findall(rf"limit_req zone={zone} burst=(\d+) nodelay;", conf))
    assert rate and len(bursts) == 1, f"zone {zone} of the shipped config: {rate} {bursts}"
    return int(rate.group(1)), int(bursts.pop())


class Client:
    """A trusted EHR's signing key; its calls are ones the service answers 200."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP384R1())
        self.kid = uuid.uuid4().hex
        public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwks = {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "ES384"}]}

    def token(self) -> str:
        now = int(time.time())
        claims = {"iss": ISS, "aud": BASE + HOOK, "iat": now, "exp": now + 120}
        claims["jti"] = str(uuid.uuid4())
        return jwt.encode(claims, self.private, algorithm="ES384", headers={"kid": self.kid})


BODY = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)


@pytest.fixture(scope="module")
def client() -> Client:
    return Client()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, client: Client) -> Iterator[ServiceProcess]:
    """The service in secure mode, trusting one EHR (whose FHIR server the trend app may
    be launched against)."""
    tmp = tmp_path_factory.mktemp("service")
    (tmp / "jwks.json").write_text(json.dumps(client.jwks), encoding="utf-8")
    clients = [{"iss": ISS, "jwks_file": str(tmp / "jwks.json"), "fhir_servers": [FHIR]}]
    (tmp / "clients.json").write_text(json.dumps(clients), encoding="utf-8")
    env = {
        "SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3"),
        "SPINE_CDS_PUBLIC_BASE_URL": BASE,
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(tmp / "clients.json"),
    }
    with ServiceProcess(env=env, args=(), log_path=tmp / "service.log") as running:
        yield running


def pod_proxy(service: ServiceProcess) -> NginxProxy:
    """nginx as the Kubernetes pod starts it, with 127.0.0.1 as the ingress controller."""
    return NginxProxy(service.port, where="kubernetes", env={"INGRESS_ADDRESSES": PROXY})


class Caller:
    """Hook calls through nginx from ``source``, on one connection kept open (nginx keeps
    it open after a 429 too), so that a flood is fast whatever the machine's load."""

    def __init__(self, proxy: NginxProxy, source: str = PROXY) -> None:
        self.connection = http.client.HTTPConnection(
            "127.0.0.1", proxy.port, timeout=10, source_address=(source, 0)
        )

    def post(self, forwarded_for: str | None = None, authorization: str | None = None) -> int:
        headers = {"Content-Type": "application/json"}
        if forwarded_for is not None:
            headers["X-Forwarded-For"] = forwarded_for
        if authorization is not None:
            headers["Authorization"] = authorization
        self.connection.request("POST", HOOK, body=json.dumps(BODY), headers=headers)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.close()


def post(proxy: NginxProxy, forwarded_for: str, authorization: str | None = None) -> int:
    """One hook call through nginx from the proxy's address, on a connection of its own."""
    with Caller(proxy) as caller:
        return caller.post(forwarded_for, authorization)


def logged_addresses(proxy: NginxProxy, requests_sent: int) -> Counter[str]:
    """The client addresses (first field) of nginx's access log lines, once it has a line
    for each request sent (nginx writes it just after the answer)."""
    deadline = time.monotonic() + 5
    while True:
        lines = proxy.access_log.read_text(encoding="utf-8").splitlines()
        if len(lines) >= requests_sent or time.monotonic() > deadline:
            return Counter(line.split(" ", 1)[0] for line in lines)
        time.sleep(0.05)


def test_two_clients_behind_the_ingress_have_a_budget_each(service: ServiceProcess) -> None:
    """Without credentials: one address's burst is gone, another's behind the same
    ingress is whole, and nginx logs the clients' addresses, not the proxy's."""
    _, burst = limit("spine_cds_unauthenticated")
    with pod_proxy(service) as proxy, Caller(proxy) as caller:
        flood = [caller.post(ATTACKER) for _ in range(3 * burst)]
        assert set(flood) == {401, 429} and flood[:burst] == [401] * burst, flood
        assert [caller.post(EHR) for _ in range(burst)] == [401] * burst
        logged = logged_addresses(proxy, 4 * burst)
        assert logged == {ATTACKER: 3 * burst, EHR: burst}, logged


def test_a_made_up_header_spends_its_senders_budget_not_the_ehrs(
    service: ServiceProcess, client: Client
) -> None:
    """The finding's flood: an anonymous client with a made-up Authorization header skips
    the limit of calls without credentials, not the one of every call. It spends its own
    address's budget and is refused with 429 once that is gone, while the EHR's real
    calls, from another address behind the same ingress, are all answered."""
    any_rate, any_burst = limit("spine_cds_any")
    with pod_proxy(service) as proxy:
        # 12 connections flood for 3 s while the EHR makes its real calls, and on (up
        # to 15 s) until the flood is refused, so that a slow machine still spends the
        # budget.
        started = time.monotonic()
        refused = threading.Event()

        def flooding() -> bool:
            spent = time.monotonic() - started
            return spent < 3.0 or (spent < 15.0 and not refused.is_set())

        def junk() -> Counter[int]:
            answers: Counter[int] = Counter()
            with Caller(proxy) as caller:
                while flooding():
                    status = caller.post(ATTACKER, "Bearer junk")
                    answers[status] += 1
                    if status == 429:
                        refused.set()
            return answers

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            floods = [pool.submit(junk) for _ in range(12)]
            time.sleep(0.5)
            ehr = [post(proxy, EHR, f"Bearer {client.token()}") for _ in range(8)]
            attacker = sum((f.result() for f in floods), Counter[int]())
        elapsed = time.monotonic() - started
        assert ehr == [200] * 8, (ehr, attacker)
        assert attacker[429] > 0, attacker  # the flood went past its own budget
        assert set(attacker) == {401, 429}, attacker
        assert attacker[401] <= any_burst + any_rate * elapsed + 1, (attacker, elapsed)
        logged = logged_addresses(proxy, attacker.total() + len(ehr))
        assert logged == {ATTACKER: attacker.total(), EHR: len(ehr)}, logged


@pytest.mark.parametrize(
    ("where", "source"),
    [("kubernetes", "127.0.0.2"), ("host", PROXY), ("compose", PROXY)],
    ids=["pod-from-an-address-not-trusted", "host", "compose"],
)
def test_x_forwarded_for_from_anyone_else_is_ignored(
    service: ServiceProcess, where: Where, source: str
) -> None:
    """A client that names a new address in each request still spends one budget, its
    connection's: in the pod when it is not the ingress controller (127.0.0.2 here, the
    controller 127.0.0.1), and always on a host and in compose, where clients connect to
    nginx itself."""
    rate, burst = limit("spine_cds_unauthenticated")
    env = {"INGRESS_ADDRESSES": PROXY} if where == "kubernetes" else None
    with NginxProxy(service.port, where=where, env=env) as proxy:
        started = time.monotonic()
        with Caller(proxy, source) as caller:
            statuses = [caller.post(f"198.51.100.{n}") for n in range(3 * burst)]
        elapsed = time.monotonic() - started
        assert set(statuses) <= {401, 429}, statuses
        assert statuses.count(401) <= burst + 1 + rate * elapsed, (statuses, elapsed)
        if elapsed < (len(statuses) - burst - 1) / rate:  # faster than the rate lets through
            assert 429 in statuses, (statuses, elapsed)
        assert logged_addresses(proxy, len(statuses)) == {source: len(statuses)}


def get(session: requests.Session, proxy: NginxProxy, path: str, forwarded_for: str) -> int:
    response = session.get(proxy.url + path, headers={"X-Forwarded-For": forwarded_for})
    return response.status_code


def test_eight_clinicians_behind_one_address_open_the_trend_app_at_once(
    service: ServiceProcess, client: Client
) -> None:
    """Every one of their 48 files is served. Their budget is the trend app's own, which
    still holds one address to its rate; spending it takes nothing from the same
    address's hook calls, with a token or without."""
    with pod_proxy(service) as proxy:
        barrier = threading.Barrier(8)

        def clinician(_: int) -> list[int]:
            with requests.Session() as session:
                barrier.wait()
                return [get(session, proxy, path, HOSPITAL) for path in OPENING]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = [s for opening in pool.map(clinician, range(8)) for s in opening]
        assert statuses == [200] * 48, Counter(statuses)

        # One address fetching much more than that is held to the trend app's rate.
        _, burst = limit("spine_cds_trend")
        assert burst >= 8 * len(OPENING)
        with requests.Session() as session:
            more = [get(session, proxy, "/trend/app.css", HOSPITAL) for _ in range(2 * burst)]
        assert set(more) == {200, 429}, Counter(more)
        # The same address's hook calls keep their budgets: the EHR's real call, and one
        # without credentials (refused by the service, not by nginx).
        assert post(proxy, HOSPITAL, f"Bearer {client.token()}") == 200
        assert post(proxy, HOSPITAL) == 401


def test_unauthenticated_hook_calls_are_still_limited_where_trend_files_are_not(
    service: ServiceProcess,
) -> None:
    """The trend app's budget is for its files: only /trend/ and /trend use it. A
    discovery request, a hook call spelt as a path under /trend/ (nginx matches the path
    without its dot segments), or a path made to look like the app's still spends the
    limit of requests without credentials."""
    _, burst = limit("spine_cds_unauthenticated")
    paths = ("/cds-services", f"/trend/%2e%2e{HOOK}", "/trendy", "/x/trend/app.css")
    with pod_proxy(service) as proxy, requests.Session() as session:
        for n, path in enumerate(paths):
            address = f"198.51.100.{n}"
            statuses = [get(session, proxy, path, address) for _ in range(3 * burst)]
            assert 429 in statuses, (path, Counter(statuses))
