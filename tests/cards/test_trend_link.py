"""Every decision card links to the trend app (a SMART link), and the service serves it.

The link's URL is the app's launch URL under the service's base URL (``public_base_url``,
else, in development mode only, the URL the request came in on); its ``appContext`` is a
JSON string with what the app highlights. The app's files are served with a strict
Content-Security-Policy.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from cds_service.app import create_app
from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.discovery import load_discovery
from cds_service.ehr_requests import bundle_resources, local_prefetch
from cds_service.examples import load_examples
from cds_service.routes.trend_app import FILES, static_dir
from cds_service.settings import load_settings
from cds_service.trend_link import LAUNCH_PATH, LINK_LABEL, base_url_for
from tests.conftest import ConformanceCheckingClient, make_settings
from tests.engine.builders import PATIENT, improving, run
from tests.support.conformance import assert_conformant_response
from tests.support.ehr_calls import order_request

ORDER_DATE = date(2026, 11, 26)
SELECT = "spine-imaging-followup-select"
DECISIONS = {"advise-against", "support", "support-urgent", "insufficient-data"}
# Bytes of an appContext string: values, not resources (docs/trend-app.md, "about 2-3 KB").
APP_CONTEXT_BUDGET = 3072


def _cards(client: FlaskClient, example: Any, leave_out: str = "") -> list[dict[str, Any]]:
    body = order_request("order-select", example.patient_id, example.draft_order)
    templates = load_discovery().services[SELECT].prefetch
    body["prefetch"] = local_prefetch(templates, body["context"], bundle_resources(example.bundle))
    body["prefetch"].pop(leave_out, None)  # with no fhirServer either: that data is unavailable
    response = client.post(f"/cds-services/{SELECT}", json=body)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert_conformant_response(answer)
    cards: list[dict[str, Any]] = answer["cards"]
    return cards


def test_every_decision_card_of_every_example_carries_the_smart_link(
    client: FlaskClient,
) -> None:
    seen = set()
    for example in load_examples(ORDER_DATE):
        cards = _cards(client, example)
        if example.expected == "no-card":
            assert cards == []
            continue
        (card,) = cards
        result = card["extension"]["spine-cds-assessment"]
        seen.add(result["recommendation"])
        (link,) = card["links"]
        assert link["type"] == "smart"
        assert link["label"] == LINK_LABEL
        # Development mode, no public_base_url: the URL the request came in on.
        assert link["url"] == "http://localhost" + LAUNCH_PATH
        context = json.loads(link["appContext"])
        assert context["v"] == 1
        assert context["patient"] == example.patient_id
        assert context["reason"] == card["summary"]
        assert context["recommendation"] == result["recommendation"]
        assert context["rulesFired"] == result["rulesFired"]
        assert context["episode"]["t0"] == result["episode"]["t0"]
        # Where T0 came from and what was known at diagnosis, for the app to say.
        assert context["episode"]["t0Source"] == result["episode"]["t0Source"]
        assert context.get("knownAtDiagnosis") == result.get("knownAtDiagnosis")
        assert len(link["appContext"].encode()) <= APP_CONTEXT_BUDGET, example.key
        assert context["thresholds"]["plateauMinFallPct"] == 25.0
        assert context["thresholds"]["crpNormalMgL"] == 10.0
        assert context["thresholds"]["plateauAfterDays"] == 28
        for key in ("crp", "pain", "esr"):
            if key in result:
                assert context[key] == result[key]
    assert seen == DECISIONS


def _context(client: FlaskClient, key: str, leave_out: str = "") -> dict[str, Any]:
    example = next(e for e in load_examples(ORDER_DATE) if e.key == key)
    (card,) = _cards(client, example, leave_out)
    (link,) = card["links"]
    context: dict[str, Any] = json.loads(link["appContext"])
    return context


def test_the_context_says_where_t0_came_from_and_what_was_known_at_diagnosis(
    client: FlaskClient,
) -> None:
    """The app's T0 line and its known-at-diagnosis marks come from these values alone:
    dates, the source's code, the antibiotic's ingredient, the findings' names and dates."""
    e18 = _context(client, "e18-antibiotic-start")["episode"]
    assert e18["t0Source"] == "antibiotic-order"
    assert e18["antibiotic"]["name"] == "cefazolin"
    assert e18["antibiotic"]["start"] == e18["t0"] > e18["condition"]["start"]
    e19 = _context(client, "e19-known-cauda-equina")
    assert e19["episode"]["t0Source"] == "episode-date"
    assert "antibiotic" not in e19["episode"]
    assert "unavailable" not in e19  # antibiotic orders were read: none found
    assert e19["knownAtDiagnosis"] == [
        {
            "reference": "Condition/spine-cds-e19-ces",
            "name": "cauda equina syndrome",
            "category": "neuro-deficit",
            "start": "2026-10-26",
        }
    ]
    assert e19["episode"]["t0"] == "2026-10-28"
    # Antibiotic orders that could not be read: T0 is the episode's date, and the app is
    # told why (it says "antibiotic orders could not be read", not "none found").
    unread = _context(client, "e18-antibiotic-start", leave_out="antibiotics")
    assert unread["episode"]["t0Source"] == "episode-date"
    assert unread["episode"]["t0"] == e18["condition"]["start"]
    assert unread["unavailable"] == ["antibiotics"]
    # A new deficit is not "known": e02's cauda equina syndrome on day 26.
    assert "knownAtDiagnosis" not in _context(client, "e02-cauda-equina")


def test_the_link_uses_public_base_url_and_thresholds_in_force(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"SPINE_CDS_RULE_PLATEAU_MIN_FALL_PCT": "30"},
        overrides={
            "dev_mode": True,
            "database_path": str(tmp_path / "db.sqlite3"),
            "public_base_url": "https://cds.example.org/spine/",
        },
    )
    app = create_app(settings)
    app.test_client_class = ConformanceCheckingClient
    example = next(e for e in load_examples(ORDER_DATE) if e.key == "e04-crp-rebound")
    with app.test_client() as client:
        (card,) = _cards(client, example)
    (link,) = card["links"]
    assert link["url"] == "https://cds.example.org/spine/trend/launch"
    context = json.loads(link["appContext"])
    assert context["thresholds"]["plateauMinFallPct"] == 30.0
    assert [r["id"] for r in context["rulesFired"]] == ["markers-not-responding"]


def test_the_renderer_links_under_the_base_url_it_is_handed_and_only_then() -> None:
    """No per-request state: the link is there exactly when the caller passes a base URL
    (the hook route does; a caller without one, such as the warm-up, gets no link)."""
    assessment = run(improving())
    reasons = load_override_reasons()
    for base, url in (
        ("https://cds.example.org/spine", "https://cds.example.org/spine/trend/launch"),
        ("", None),
    ):
        ctx = CardContext(patient_id=PATIENT, override_reasons=reasons, trend_base_url=base)
        (card,) = render_response(assessment, ctx)["cards"]
        assert [link["url"] for link in card.get("links", [])] == ([url] if url else [])


def test_base_url_rules() -> None:
    assert base_url_for("https://x.org/a/", False, "http://127.0.0.1:8080/") == "https://x.org/a"
    assert base_url_for("", True, "http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    # Outside development mode the request's own URL is never trusted for links.
    assert base_url_for("", False, "http://evil.example/") == ""


def test_the_app_is_served_with_a_strict_content_security_policy(client: FlaskClient) -> None:
    for path, kind in (
        ("/trend/launch?iss=http://127.0.0.1:8090/fhir", "text/html"),
        ("/trend/", "text/html"),
        ("/trend/app.js", "text/javascript"),
        ("/trend/launch.js", "text/javascript"),
        ("/trend/app.css", "text/css"),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.mimetype == kind, path
        csp = response.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"  # no inline scripts, no eval
        assert directives["style-src"] == "'self'"
        assert "https:" in directives["connect-src"].split()
        assert "http://127.0.0.1:*" in directives["connect-src"].split()
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert client.get("/trend/hooks.json").status_code == 404
    assert client.get("/trend/../app.py").status_code == 404


def _connect_src(tmp_path: Path, **settings: Any) -> list[str]:
    tmp_path.mkdir(exist_ok=True)
    app = create_app(make_settings(tmp_path, **settings))
    with app.test_client() as client:
        answers = [client.get(path) for path in ("/trend/", "/trend/app.js", "/trend/launch")]
    sources = set()
    for response in answers:
        csp = response.headers["Content-Security-Policy"].split(";")
        sources.add(next(d for d in csp if "connect-src" in d).split(None, 1)[1])
    (only,) = sources  # the same on every file and on the refusal page
    return only.split()


def test_secure_mode_allows_no_plain_http_nor_the_loopback_interface(tmp_path: Path) -> None:
    """An attack review: in secure mode ``connect-src`` still allowed
    ``http://127.0.0.1:*`` and ``http://localhost:*``, so an injected script could have
    reached any service on the clinician's workstation. Outside development mode plain
    http is allowed only to the origin of a listed server (an http one can only be on
    loopback), port included."""
    secure = {"dev_mode": False, "public_base_url": "https://cds.example.org"}
    assert _connect_src(tmp_path / "none", **secure) == ["'self'", "https:"]
    listed = _connect_src(
        tmp_path / "listed",
        **secure,
        trend_fhir_servers=(
            "http://127.0.0.1:8090/fhir",
            "http://[::1]:8091/r4",
            "https://fhir.example.org/r4",
        ),
    )
    assert listed == ["'self'", "https:", "http://127.0.0.1:8090", "http://[::1]:8091"]


def test_development_mode_still_allows_any_http_origin_loopback_included(
    tmp_path: Path,
) -> None:
    sources = _connect_src(tmp_path)
    assert sources == ["'self'", "https:", "http://127.0.0.1:*", "http://localhost:*", "http:"]


def test_the_pages_load_only_their_own_files_and_no_inline_code() -> None:
    for name in ("index.html", "launch.html"):
        html = (static_dir() / name).read_text(encoding="utf-8")
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
        assert scripts, name
        for attrs, body in scripts:
            assert body.strip() == "", f"inline script in {name}"
            assert re.search(r'src="[a-z]+\.js"', attrs), attrs
        assert " style=" not in html and "on" + "click=" not in html
    for name in FILES:
        assert (static_dir() / name).is_file(), name


def test_the_app_may_be_framed_by_the_ehr_and_the_api_by_no_one(tmp_path: Path) -> None:
    """X-Frame-Options DENY would contradict the app's frame-ancestors: only the API
    answers carry it."""
    app = create_app(make_settings(tmp_path))
    with app.test_client() as client:
        page = client.get("/trend/")
        api = client.get("/cds-services")
    assert "X-Frame-Options" not in page.headers
    # Development mode: this origin and loopback pages (an EHR simulator), not any https page.
    frame = page.headers["Content-Security-Policy"].split("frame-ancestors ", 1)[1].split()
    assert frame == ["'self'", "http://127.0.0.1:*", "http://localhost:*"]
    assert api.headers["X-Frame-Options"] == "DENY"
