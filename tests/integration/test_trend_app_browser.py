"""The trend app in a real browser, launched as an EHR launches a card's SMART link.

Real parts throughout: the service under gunicorn (development mode, so the card's link
is under the URL it was called at), the project's FHIR test server holding the example
patients behind a static bearer token, with its minimal SMART authorization server, and
Debian's chromium driven by Playwright. For each patient the test acts as the EHR: it
calls the hook (the service fetches the data from the FHIR server), takes the card's
smart link, creates a launch context with the link's appContext as the CDS Hooks sandbox
does (``POST {fhir}/_services/smart/Launch``), and opens ``url?launch=..&iss=..``. The
app then runs the SMART EHR launch (PKCE), reads the FHIR server with the token it was
given (the static token never reaches the browser: without the SMART token every read
would be refused), and draws. What is drawn is read from the page's accessible table and
from the chart's own data; a screenshot of each page is kept in the test's tmp folder
(and written to $SPINE_CDS_TREND_SCREENSHOTS when that is set, for the docs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.discovery import load_discovery
from cds_service.ehr_requests import bundle_resources, local_prefetch
from cds_service.examples import Example, load_example, load_examples
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess
from tests.integration.test_fhir_server_cors import CHROMIUM, CHROMIUM_ARGS
from tests.support.ehr_calls import order_request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOKEN = "trend-static-" + uuid.uuid4().hex
SELECT = "spine-imaging-followup-select"
ORDER_DATE = datetime.now(UTC).date()
DECISION_EXAMPLES = [e.key for e in load_examples(ORDER_DATE) if e.expected != "no-card"]
# A row of the card's CRP table: | date | day | value (reported ...) | role |
# a value reported as a limit keeps its comparator on the card ("<5"): the app draws it
# at the limit
CRP_ROW = re.compile(
    r"^\| (\d{4}-\d{2}-\d{2}) \| (-?\d+) \| [<>]?=?([\d.]+)(?: \(reported ([^)]+)\))? \|"
)
VIEWPORT = {"width": 1280, "height": 800}
SITE_SYSTEM = "https://hospital.example/fhir/CodeSystem/lab"  # a synthetic local code system
SITE_CODES = {
    "valueSet": "observations",
    "source": "a site's own laboratory codes (synthetic, for this test)",
    "entries": [{"system": SITE_SYSTEM, "code": "ESR-W", "kind": "esr", "verified": False}],
}
TABLET = {"width": 820, "height": 1180}


# What the page shows, read from its table, its messages and the chart's own data.
READ_PAGE = """() => {
  const t = window.spineTrend;
  const text = (id) => (document.getElementById(id) || {}).textContent || '';
  const rows = (id) => [...document.querySelectorAll('#' + id + ' tr')].map(
    (tr) => ({ref: tr.dataset.ref, kind: tr.dataset.kind, used: tr.className === 'used',
              cells: [...tr.children].map((c) => c.textContent)}));
  return {
    state: document.body.dataset.state, fatal: text('fatal'),
    t0Line: text('t0'), t0From: document.getElementById('t0').dataset.source,
    known: document.getElementById('known').hidden ? '' : text('known'),
    key: [...document.querySelectorAll('#key li')].map((li) => li.textContent),
    title: text('decision-title'), rules: text('decision-rules'),
    recommendation: (document.getElementById('decision').dataset || {}).recommendation,
    messages: [...document.querySelectorAll('#messages li')].map(
      (li) => li.textContent),
    values: rows('values-body'), flags: rows('flags-body'),
    chartLabel: document.getElementById('chart').getAttribute('aria-label'),
    open: t ? t.open : null,
    datasets: t ? t.chart.data.datasets.map((d) => ({label: d.label, axis: d.yAxisID,
      shape: d.pointStyle, colour: d.borderColor,
      points: d.data.map((p) => [p.x, p.y])})) : [],
    lines: t ? t.model.lines : [], dayMarks: t ? t.model.dayMarks : [],
    markers: t ? t.model.markers : [], t0: t ? t.model.t0 : null,
    scales: t ? Object.fromEntries(Object.entries(t.chart.scales).map(
      ([k, s]) => [k, [s.min, s.max]])) : {},
  };
}
"""


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        for example in load_examples(ORDER_DATE):
            server.load_bundle(example.bundle)
        yield server


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("trend-service") / "service.log"
    env = {"SPINE_CDS_DATABASE_PATH": str(log.parent / "db.sqlite3")}
    with ServiceProcess(env=env, workers=1, log_path=log) as svc:
        yield svc


@pytest.fixture(scope="module")
def site_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A site's service: an ESR code of its own (valueset_dir), preliminary results
    counted (accept_preliminary), molar CRP not read (crp_molar_factor 0)."""
    codes = tmp_path_factory.mktemp("site-valuesets")
    (codes / "site-codes.json").write_text(json.dumps(SITE_CODES), "utf-8")
    log = tmp_path_factory.mktemp("site-service") / "service.log"
    env = {
        "SPINE_CDS_DATABASE_PATH": str(log.parent / "db.sqlite3"),
        "SPINE_CDS_VALUESET_DIR": str(codes),
        "SPINE_CDS_ACCEPT_PRELIMINARY": "true",
        "SPINE_CDS_CRP_MOLAR_FACTOR": "0",
    }
    with ServiceProcess(env=env, workers=1, log_path=log) as svc:
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


def _card(service: ServiceProcess, fhir: FhirTestServer, example: Example) -> dict[str, Any]:
    body = order_request(
        "order-select",
        example.patient_id,
        example.draft_order,
        fhir_server=fhir.base_url,
        access_token=TOKEN,
    )
    response = requests.post(f"{service.url}/cds-services/{SELECT}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    return dict(card)


def _open(
    browser: Any, url: str, tmp_path: Path, name: str, viewport: dict[str, int] = VIEWPORT
) -> dict[str, Any]:
    """Open the app, wait for it to draw, and return what it shows; keeps a screenshot."""
    context = browser.new_context(viewport=viewport)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("body[data-state='ready'], body[data-state='error']", timeout=30000)
        shot = tmp_path / f"trend-{name}.png"
        page.screenshot(path=str(shot), full_page=False)
        keep = os.environ.get("SPINE_CDS_TREND_SCREENSHOTS")
        if keep:
            shutil.copy(shot, Path(keep) / shot.name)
        shown: dict[str, Any] = page.evaluate(READ_PAGE)
        shown["errors"] = errors
        shown["screenshot"] = shot
        return shown
    finally:
        context.close()


def _launch(
    service: ServiceProcess, fhir: FhirTestServer, example: Example
) -> tuple[dict[str, Any], str]:
    card = _card(service, fhir, example)
    (link,) = card["links"]
    assert link["type"] == "smart"
    assert link["url"] == f"{service.url}/trend/launch"
    launch = fhir.create_launch(link["url"], example.patient_id, link["appContext"])
    return card, f"{link['url']}?launch={launch}&iss={fhir.base_url}"


def _series(shown: dict[str, Any], label_start: str) -> list[list[float]]:
    (ds,) = [d for d in shown["datasets"][:3] if d["label"].startswith(label_start)]
    points: list[list[float]] = ds["points"]
    return points


def _ringed(shown: dict[str, Any]) -> list[list[float]]:
    """The points drawn with the ring that marks a value the decision used (both axes)."""
    return [p for d in shown["datasets"][3:] for p in d["points"]]


def _rows(shown: dict[str, Any], measure: str) -> list[list[str]]:
    return [r["cells"] for r in shown["values"] if r["cells"][2] == measure]


def result_t0(card: dict[str, Any]) -> str:
    t0: str = card["extension"]["spine-cds-assessment"]["episode"]["t0"]
    return t0


def _t0_mark(shown: dict[str, Any]) -> dict[str, Any]:
    (mark,) = [m for m in shown["dayMarks"] if m["id"] == "t0"]
    assert mark["x"] == 0
    return dict(mark)


def _sent(card: dict[str, Any]) -> dict[str, Any]:
    """The appContext the card's link sends the app."""
    (link,) = card["links"]
    context: dict[str, Any] = json.loads(link["appContext"])
    return context


def _common_checks(shown: dict[str, Any], card: dict[str, Any]) -> None:
    assert shown["state"] == "ready", shown["fatal"]
    assert shown["errors"] == []
    assert shown["open"] is False  # read with the SMART token, not as an open server
    # The decision in the card's words (tests/cards/test_trend_app_words.py holds them to
    # the phrasebook): its summary, and each fired rule's short phrase.
    sent = _sent(card)
    assert shown["title"] == card["summary"]
    shorts = sent["ruleShorts"]
    assert shorts and len(shorts) == len(sent["rulesFired"])
    lead = "Rule that fired" if len(shorts) == 1 else "Rules that fired"
    assert shown["rules"] == f"{lead}: {'; '.join(shorts)}."
    result = card["extension"]["spine-cds-assessment"]
    assert shown["recommendation"] == result["recommendation"]
    assert shown["t0"] == result["episode"]["t0"]
    # The numbers of the table are those of the chart, series by series.
    for measure, label in (("CRP", "CRP"), ("ESR", "ESR"), ("Pain", "Pain")):
        table = [[float(r[1]), float(r[3])] for r in _rows(shown, measure)]
        assert table == _series(shown, label), measure
    # Okabe-Ito colours and a shape per series.
    styles = {d["label"].split(" ")[0]: (d["colour"], d["shape"]) for d in shown["datasets"][:3]}
    assert styles == {
        "CRP": ("#0072B2", "circle"),
        "ESR": ("#E69F00", "triangle"),
        "Pain": ("#009E73", "rect"),
    }
    assert _series(shown, "Pain") == [] or shown["datasets"][2]["axis"] == "yPain"
    assert shown["scales"]["yPain"] == [0, 10]
    normal = [line for line in shown["lines"] if line["id"] == "normal"]
    assert normal and normal[0]["value"] == 10
    assert any(m["id"] == "plateau-day" and m["x"] == 28 for m in shown["dayMarks"])
    # T0 is marked on the chart, and where it came from is said in the card's words, as
    # its episode line says it.
    assert shown["t0Line"] == f"T0 (day 0): {sent['t0Text']}."
    assert _t0_mark(shown)["text"] == sent["t0Text"]
    assert sent["t0Text"] in card["detail"]
    assert shown["t0From"] == "card"
    assert result["episode"]["t0Source"] in ("antibiotic-order", "episode-date")
    order_day = result["daysSinceT0"]
    assert any(m["id"] == "order" and m["x"] == order_day for m in shown["dayMarks"])
    assert shown["screenshot"].stat().st_size > 20_000


def test_advise_against_patient_is_drawn_with_baseline_fall_line_and_used_values(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    example = load_example("e01-improving", ORDER_DATE)
    card, url = _launch(service, fhir, example)
    shown = _open(browser, url, tmp_path, "e01-advise-against")
    _common_checks(shown, card)
    assert shown["title"].startswith("Routine repeat spine MRI not recommended")
    assert _series(shown, "CRP") == [[0, 142], [14, 61], [28, 18]]
    assert _series(shown, "ESR") == [[0, 95], [28, 60]]
    assert _series(shown, "Pain") == [[0, 8], [14, 5], [28, 3]]
    lines = {line["id"]: line["value"] for line in shown["lines"]}
    assert lines == {"baseline": 142, "fall": 106.5, "normal": 10}
    # The decision used the baseline and the latest CRP, the first and latest pain and ESR.
    used = {(r["cells"][2], r["cells"][1]) for r in shown["values"] if r["used"]}
    assert {("CRP", "0"), ("CRP", "28"), ("Pain", "0"), ("Pain", "28")} <= used
    assert ("Pain", "14") not in used  # not every value is ringed
    ringed = _ringed(shown)
    assert [0, 142] in ringed and [28, 18] in ringed and [14, 5] not in ringed
    crp0 = _rows(shown, "CRP")[0]
    assert "baseline" in crp0[5]
    assert shown["markers"] == [] and shown["flags"] == []
    assert shown["t0Line"] == (
        f"T0 (day 0): recorded from {result_t0(card)} (no antibiotic order found; "
        "taken as the treatment start)."
    )
    assert shown["known"] == ""
    events = [e["event"] for e in fhir.auth_events() if e.get("patient", "x") in (None, "x")]
    assert "authorize" in events


def test_markers_rising_patient_shows_the_rebound_values(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    example = load_example("e04-crp-rebound", ORDER_DATE)
    card, url = _launch(service, fhir, example)
    shown = _open(browser, url, tmp_path, "e04-markers-rising")
    _common_checks(shown, card)
    assert "CRP rising again" in shown["rules"]
    assert _series(shown, "CRP") == [[0, 90], [10, 60], [21, 95]]
    assert _series(shown, "Pain") == [[0, 6], [10, 5], [21, 5]]
    assert _series(shown, "ESR") == []
    assert any("No ESR on record" in m for m in shown["messages"])
    used = {r["cells"][1] for r in shown["values"] if r["used"] and r["cells"][2] == "CRP"}
    assert {"10", "21"} <= used  # the lowest earlier CRP and the latest, the rise's two ends
    assert [10, 60] in _ringed(shown) and [21, 95] in _ringed(shown)


def test_cauda_equina_patient_shows_the_red_flag_as_a_dated_marker(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    example = load_example("e02-cauda-equina", ORDER_DATE)
    card, url = _launch(service, fhir, example)
    shown = _open(browser, url, tmp_path, "e02-cauda-equina")
    _common_checks(shown, card)
    assert shown["rules"].startswith("Rule that fired: New cauda equina syndrome")
    (marker,) = shown["markers"]
    assert marker["x"] == 26
    assert marker["kind"] == "Neurologic deficit"
    assert marker["used"] is True
    assert marker["known"] is False  # a new deficit, not one known at diagnosis
    assert marker["reference"] == "Condition/spine-cds-e2-cauda-equina"
    (flag,) = shown["flags"]
    assert flag["cells"][1] == "26" and "auda equina" in flag["cells"][2]
    assert "known at diagnosis" not in flag["cells"][3]
    assert shown["known"] == ""
    assert "day 26" in shown["chartLabel"]
    assert _series(shown, "CRP") == [[0, 142], [14, 61]]


def test_t0_from_the_first_antibiotic_order_is_said_beside_the_t0_mark(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    """e18: cefazolin started two weeks after the symptoms' onset; T0 is its start, and
    the app says so (the day count is from the antibiotic, not from the Condition)."""
    example = load_example("e18-antibiotic-start", ORDER_DATE)
    card, url = _launch(service, fhir, example)
    shown = _open(browser, url, tmp_path, "e18-antibiotic-start")
    _common_checks(shown, card)
    episode = card["extension"]["spine-cds-assessment"]["episode"]
    assert episode["t0Source"] == "antibiotic-order"
    assert episode["antibiotic"]["name"] == "cefazolin"
    t0 = episode["t0"]
    assert episode["antibiotic"]["start"] == t0 and episode["condition"]["start"] < t0
    line = f"treatment started {t0} (first antibiotic order: cefazolin)"
    assert shown["t0Line"] == f"T0 (day 0): {line}."
    mark = _t0_mark(shown)
    assert mark["label"] == "T0: first antibiotic order" and mark["text"] == line
    assert f"T0 (day 0): {line}" in shown["key"]
    assert line in shown["chartLabel"]
    assert shown["t0"] == t0
    assert _series(shown, "CRP") == [[0, 100], [10, 92], [20, 80]]
    assert shown["known"] == "" and shown["markers"] == []


def _as_another_patient(
    fhir: FhirTestServer, key: str, other: str, change: Callable[[dict[str, Any]], None]
) -> Example:
    """Example ``key`` as patient ``other`` (every id renamed), its bundle changed by
    ``change`` and loaded into ``fhir``."""
    example = load_example(key, ORDER_DATE)
    renamed = json.dumps(example.bundle).replace(example.patient_id, other)
    bundle = json.loads(renamed)
    change(bundle)
    fhir.load_bundle(bundle)
    order = json.dumps(example.draft_order).replace(example.patient_id, other)
    return dataclasses.replace(example, patient_id=other, draft_order=json.loads(order))


def _e18_with_its_order(
    fhir: FhirTestServer, suffix: str, change: Callable[[dict[str, Any], str], None]
) -> Example:
    """e18 as another patient (``spine-cds-e18-<suffix>``), its cefazolin order changed by
    ``change(order, the infection's onset)``, loaded into ``fhir``."""

    def change_order(bundle: dict[str, Any]) -> None:
        onset = next(
            e["resource"]["onsetDateTime"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Condition"
        )
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "MedicationRequest":
                change(entry["resource"], onset)

    return _as_another_patient(
        fhir, "e18-antibiotic-start", f"spine-cds-e18-{suffix}", change_order
    )


def test_an_antibiotic_order_outside_t0s_window_is_said_as_the_card_says_it(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    """e18 with its cefazolin order moved to 60 days before the infection's onset, as
    another patient: no order started in T0's window, so T0 is the infection's date. The
    app must not say "no antibiotic order found" while the card names the order outside
    the window; it says what the card says."""

    def sixty_days_early(order: dict[str, Any], onset: str) -> None:
        early = (datetime.fromisoformat(onset) - timedelta(days=60)).isoformat()
        order["authoredOn"] = early
        order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"] = early

    moved = _e18_with_its_order(fhir, "early", sixty_days_early)
    card, url = _launch(service, fhir, moved)
    shown = _open(browser, url, tmp_path, "e18-antibiotic-outside-window")
    _common_checks(shown, card)
    episode = card["extension"]["spine-cds-assessment"]["episode"]
    assert episode["t0Source"] == "episode-date"
    assert [a["name"] for a in episode["antibioticsOutsideWindow"]] == ["cefazolin"]
    said = "no antibiotic order started from 14 days before to 28 days after that date"
    assert said in shown["t0Line"]
    assert said in card["detail"]  # the card's own words


def test_an_antibiotic_order_without_a_date_is_said_as_the_card_says_it(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    """e18 with its cefazolin order's dates taken away, as another patient: the order
    cannot give T0, so T0 is the infection's date; the card says "no dated antibiotic
    order", and the app said "no antibiotic order found" (an outside review)."""

    def undated(order: dict[str, Any], onset: str) -> None:
        order.pop("authoredOn", None)
        order["dosageInstruction"][0]["timing"]["repeat"].pop("boundsPeriod", None)

    moved = _e18_with_its_order(fhir, "undated", undated)
    card, url = _launch(service, fhir, moved)
    shown = _open(browser, url, tmp_path, "e18-antibiotic-undated")
    _common_checks(shown, card)
    episode = card["extension"]["spine-cds-assessment"]["episode"]
    assert episode["t0Source"] == "episode-date"
    assert episode["antibioticsNotCounted"] == "undated"
    said = "(no dated antibiotic order; taken as the treatment start)"
    assert said in shown["t0Line"]
    assert said in card["detail"]  # the card's own words


def test_a_deficit_known_at_diagnosis_is_marked_as_known_not_new(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    """e19: cauda equina syndrome two days before antibiotics: drawn, named and dated, and
    marked "known at diagnosis" wherever it shows (the header, the chart, its key, the
    table and the text alternative), unlike e02's new deficit; no antibiotic order, so T0
    is the infection's recorded date."""
    example = load_example("e19-known-cauda-equina", ORDER_DATE)
    card, url = _launch(service, fhir, example)
    shown = _open(browser, url, tmp_path, "e19-known-cauda-equina")
    _common_checks(shown, card)
    result = card["extension"]["spine-cds-assessment"]
    t0 = result["episode"]["t0"]
    assert result["episode"]["t0Source"] == "episode-date"
    assert "antibiotic" not in result["episode"]
    line = f"recorded from {t0} (no antibiotic order found; taken as the treatment start)"
    assert shown["t0Line"] == f"T0 (day 0): {line}."
    assert _t0_mark(shown)["label"] == "T0: infection recorded"
    (known,) = result["knownAtDiagnosis"]
    assert known["name"] == "cauda equina syndrome"
    assert known["reference"] == "Condition/spine-cds-e19-ces"
    assert shown["known"] == (
        f"Known at diagnosis: cauda equina syndrome ({known['start']}, day -2). Not a new red flag."
    )
    (marker,) = shown["markers"]
    assert marker["known"] is True and marker["x"] == -2 and marker["day"] == known["start"]
    assert marker["kind"] == "Neurologic deficit"
    (flag,) = shown["flags"]
    assert flag["cells"][:2] == [known["start"], "-2"]
    assert "known at diagnosis, not a new red flag" in flag["cells"][3]
    assert any("known at diagnosis" in k and known["start"] in k for k in shown["key"])
    assert "known at diagnosis on day -2" in shown["chartLabel"]
    # When the service could not read the antibiotic orders, its card says so, and so
    # does the app: a card made from the EHR's prefetch without them (and no fhirServer).
    body = order_request("order-select", example.patient_id, example.draft_order)
    templates = load_discovery().services[SELECT].prefetch
    resources = bundle_resources(example.bundle)
    body["prefetch"] = local_prefetch(templates, body["context"], resources)
    del body["prefetch"]["antibiotics"]
    answer = requests.post(f"{service.url}/cds-services/{SELECT}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    (unread_card,) = answer.json()["cards"]
    (link,) = unread_card["links"]
    assert _sent(unread_card)["unavailable"] == ["antibiotics"]
    launch = fhir.create_launch(link["url"], example.patient_id, link["appContext"])
    unread = _open(browser, f"{link['url']}?launch={launch}&iss={fhir.base_url}", tmp_path, "x")
    said = f"recorded from {t0} (antibiotic orders could not be read; taken as the treatment start)"
    assert unread["t0Line"] == f"T0 (day 0): {said}."
    assert said in unread_card["detail"]


def test_the_page_is_readable_on_a_tablet_and_keyboard_navigable(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    example = load_example("e01-improving", ORDER_DATE)
    _, url = _launch(service, fhir, example)
    context = browser.new_context(viewport=TABLET)
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-state='ready']", timeout=30000)
        page.screenshot(path=str(tmp_path / "trend-tablet.png"))
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= TABLET["width"]  # nothing wider than the screen
        page.keyboard.press("Tab")  # the skip link first
        assert page.evaluate("() => document.activeElement.className") == "skip"
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.id") == "chart"
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        live = page.text_content("#chart-live") or ""
        assert live.startswith(("CRP", "ESR", "Pain")) and "on day 0" in live
        page.keyboard.press("End")
        assert "on day 28" in (page.text_content("#chart-live") or "")
    finally:
        context.close()


def test_open_server_launch_reads_without_a_token_and_says_there_is_no_card(
    browser: Any, service: ServiceProcess, tmp_path: Path
) -> None:
    example = load_example("e01-improving", ORDER_DATE)
    with FhirTestServer(smart=False) as open_server:
        open_server.load_bundle(example.bundle)
        url = (
            f"{service.url}/trend/launch?iss={open_server.base_url}&patientId={example.patient_id}"
        )
        shown = _open(browser, url, tmp_path, "open-server")
    assert shown["state"] == "ready", shown["fatal"]
    assert shown["open"] is True
    assert shown["title"] == ""  # no decision without a card
    assert any("without a card" in m for m in shown["messages"])
    # Nothing said about where T0 came from: only the card knows the antibiotic orders.
    assert shown["t0From"] == "none"
    assert shown["t0Line"] == f"T0 (day 0): {shown['t0']}."
    assert [m["label"] for m in shown["dayMarks"] if m["id"] == "t0"] == ["T0"]
    assert _series(shown, "CRP") == [[0, 142], [14, 61], [28, 18]]
    # Without the card, T0 and the baseline come from the data, as the service finds them.
    (episode,) = [
        e["resource"]
        for e in example.bundle["entry"]
        if e["resource"]["resourceType"] == "Condition"
    ]
    assert shown["t0"] == episode["onsetDateTime"][:10]
    assert {line["id"]: line["value"] for line in shown["lines"]}["baseline"] == 142


def test_a_card_for_another_patient_is_not_shown(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    e01 = load_example("e01-improving", ORDER_DATE)
    e04 = load_example("e04-crp-rebound", ORDER_DATE)
    card = _card(service, fhir, e01)
    (link,) = card["links"]
    launch = fhir.create_launch(link["url"], e04.patient_id, link["appContext"])
    shown = _open(browser, f"{link['url']}?launch={launch}&iss={fhir.base_url}", tmp_path, "x")
    assert shown["state"] == "ready"
    assert shown["title"] == ""
    assert any("another patient" in m for m in shown["messages"])
    assert shown["t0From"] == "none" and "antibiotic" not in shown["t0Line"]
    assert _series(shown, "CRP") == [[0, 90], [10, 60], [21, 95]]
    assert json.loads(link["appContext"])["patient"] == e01.patient_id


@pytest.mark.parametrize("key", DECISION_EXAMPLES)
def test_the_app_draws_the_crp_the_card_counted(
    key: str, browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    """For every example with a card, the CRP the app reads, converts and filters itself is
    the CRP in the card's table: same dates, days and mg/L values, same conversions (mixed
    units, molar CRP) and the same values left out (entered in error)."""
    example = load_example(key, ORDER_DATE)
    card, url = _launch(service, fhir, example)
    shown = _open(browser, url, tmp_path, key)
    assert shown["state"] == "ready", shown["fatal"]
    assert shown["errors"] == []
    counted = [m.groups() for m in map(CRP_ROW.match, card["detail"].splitlines()) if m]
    assert counted, card["detail"]
    drawn = _rows(shown, "CRP")
    assert [(r[0], r[1]) for r in drawn] == [(date, day) for date, day, _, _ in counted]
    for row, (_, _, value, reported) in zip(drawn, counted, strict=True):
        assert abs(float(row[3]) - float(value)) < 0.06, (row, value)
        if reported:
            assert f"reported {reported}" in row[5]
    assert shown["recommendation"] == card["extension"]["spine-cds-assessment"]["recommendation"]


def test_the_app_converts_and_leaves_out_crp_units_as_the_service_does(
    browser: Any, fhir: FhirTestServer, service: ServiceProcess, tmp_path: Path
) -> None:
    """e01 as another patient with its CRPs in g/L and in ug/mL with a UCUM annotation,
    and one more whose unit text and code disagree in scale: the service converts the
    first two and leaves the third out (an outside review), and so must the app's chart
    (its copy of the unit table had only mg/dL and nmol/L)."""
    other = "spine-cds-e1-units"

    def other_units(bundle: dict[str, Any]) -> None:
        by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
        by_id[f"{other}-crp-d14"]["valueQuantity"].update(value=0.061, unit="g/L", code="g/L")
        by_id[f"{other}-crp-d28"]["valueQuantity"].update(unit="ug/mL", code="ug/mL{CRP}")
        disagreeing = json.loads(json.dumps(by_id[f"{other}-crp-d14"]))
        disagreeing["id"] = f"{other}-crp-d20"
        disagreeing["valueQuantity"] = {
            "value": 3.5,
            "unit": "mg/dL",
            "system": "http://unitsofmeasure.org",
            "code": "mg/L",
        }
        bundle["entry"].append(
            {
                "resource": disagreeing,
                "request": {"method": "PUT", "url": f"Observation/{other}-crp-d20"},
            }
        )

    moved = _as_another_patient(fhir, "e01-improving", other, other_units)
    card, url = _launch(service, fhir, moved)
    shown = _open(browser, url, tmp_path, "e01-units")
    assert shown["state"] == "ready", shown["fatal"]
    counted = [m.groups() for m in map(CRP_ROW.match, card["detail"].splitlines()) if m]
    assert [float(value) for _, _, value, _ in counted] == [142.0, 61.0, 18.0]
    drawn = _rows(shown, "CRP")
    assert [(r[0], r[1]) for r in drawn] == [(date, day) for date, day, _, _ in counted]
    assert [round(float(r[3]), 1) for r in drawn] == [142.0, 61.0, 18.0]
    assert "unit text and code disagree" in card["detail"]


def _day_after(resource: dict[str, Any], days: int) -> str:
    return (
        datetime.fromisoformat(resource["effectiveDateTime"]) + timedelta(days=days)
    ).isoformat()


def test_the_app_reads_the_data_as_the_service_that_served_it(
    browser: Any,
    fhir: FhirTestServer,
    service: ServiceProcess,
    site_service: ServiceProcess,
    tmp_path: Path,
) -> None:
    """e01 as another patient with a preliminary CRP on day 21, a CRP in nmol/L on day 7
    and an ESR on day 14 under a site's own code. The shipped service counts the molar
    CRP, leaves the preliminary one out and never asks for the site's code; a site's
    service with that code, preliminary results counted and molar CRP off does each the
    other way. The app reads as the service whose page it is (its searches, codes,
    statuses and factor): each time it draws the CRP that card counted, and the ESR its
    searches asked for."""
    other = "spine-cds-e1-site"

    def site_data(bundle: dict[str, Any]) -> None:
        by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
        crp0, esr0 = by_id[f"{other}-crp-d0"], by_id[f"{other}-esr-d0"]
        added = []
        molar = json.loads(json.dumps(crp0))
        molar["code"] = {"coding": [{"system": "http://loinc.org", "code": "76485-2"}]}
        molar["valueQuantity"] = {
            "value": 952.4,
            "unit": "nmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "nmol/L",
        }
        added.append(("crp-d7-molar", molar, _day_after(crp0, 7)))
        preliminary = json.loads(json.dumps(crp0))
        preliminary["status"] = "preliminary"
        preliminary["valueQuantity"]["value"] = 30
        added.append(("crp-d21-preliminary", preliminary, _day_after(crp0, 21)))
        local_esr = json.loads(json.dumps(esr0))
        local_esr["code"] = {"coding": [{"system": SITE_SYSTEM, "code": "ESR-W"}], "text": "ESR"}
        local_esr["valueQuantity"]["value"] = 70
        added.append(("esr-d14-local", local_esr, _day_after(esr0, 14)))
        for name, resource, when in added:
            resource["id"] = f"{other}-{name}"
            resource["effectiveDateTime"] = when
            resource.pop("issued", None)
            request = {"method": "PUT", "url": f"Observation/{resource['id']}"}
            bundle["entry"].append({"resource": resource, "request": request})

    moved = _as_another_patient(fhir, "e01-improving", other, site_data)
    drawn = {}
    for name, svc in (("shipped", service), ("site", site_service)):
        card, url = _launch(svc, fhir, moved)
        shown = _open(browser, url, tmp_path, f"e01-{name}")
        assert shown["state"] == "ready", shown["fatal"]
        assert shown["errors"] == []
        counted = [m.groups() for m in map(CRP_ROW.match, card["detail"].splitlines()) if m]
        rows = _rows(shown, "CRP")
        assert [(r[0], r[1]) for r in rows] == [(d, day) for d, day, _, _ in counted], name
        for row, (_, _, value, _) in zip(rows, counted, strict=True):
            assert abs(float(row[3]) - float(value)) < 0.06, (name, row, value)
        drawn[name] = shown
    shipped, site = drawn["shipped"], drawn["site"]
    assert _series(shipped, "CRP") == [[0, 142], [7, 100], [14, 61], [28, 18]]
    assert _series(site, "CRP") == [[0, 142], [14, 61], [21, 30], [28, 18]]
    assert any("1 status preliminary" in m for m in shipped["messages"])
    assert any("reads no molar CRP" in m for m in site["messages"])
    assert _series(shipped, "ESR") == [[0, 95], [28, 60]]
    assert _series(site, "ESR") == [[0, 95], [14, 70], [28, 60]]


@pytest.fixture(scope="module")
def one_page_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A service that follows a search through one page only (``fhir_max_pages`` 1)."""
    log = tmp_path_factory.mktemp("one-page-service") / "service.log"
    env = {
        "SPINE_CDS_DATABASE_PATH": str(log.parent / "db.sqlite3"),
        "SPINE_CDS_FHIR_MAX_PAGES": "1",
    }
    with ServiceProcess(env=env, workers=1, log_path=log) as svc:
        yield svc


def _load_many_crps(server: FhirTestServer, bundle: dict[str, Any], patient: str) -> None:
    """300 more CRPs, hourly from day 1 (falling from 120 to 71), loaded into ``server``
    beside ``bundle`` (in parts: the server takes a few dozen updates per transaction).
    They fill the first page of a newest-first search (even one of CRP, ESR and pain
    together, 300 to a page), so day 0, the baseline, is not on it."""
    crp0 = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["id"] == f"{patient}-crp-d0"
    )
    entries = []
    for n in range(300):
        extra = json.loads(json.dumps(crp0))
        extra["id"] = f"{patient}-crp-extra-{n}"
        extra["effectiveDateTime"] = (
            datetime.fromisoformat(crp0["effectiveDateTime"]) + timedelta(days=1, hours=n)
        ).isoformat()
        extra.pop("issued", None)
        extra["valueQuantity"]["value"] = 120 - n // 6
        request = {"method": "PUT", "url": f"Observation/{extra['id']}"}
        entries.append({"resource": extra, "request": request})
    for start in range(0, len(entries), 50):
        part = entries[start : start + 50]
        server.load_bundle({"resourceType": "Bundle", "type": "transaction", "entry": part})


def test_a_crp_search_cut_short_of_the_baseline_is_drawn_as_its_earliest_read(
    browser: Any, fhir: FhirTestServer, one_page_service: ServiceProcess, tmp_path: Path
) -> None:
    """e01 with 300 more CRPs, read by a service that follows one page: the baseline (day 0)
    is not read. The card calls the first value read "earliest read" (and gives no change
    from it); the app drew "Baseline CRP 120" and a 25% fall line from it (a left-alone
    finding of an outside review). Now the card's result names it ``earliestRead`` and
    the app draws it as that, with no fall line; opened without a card, reading one page
    itself, the app says the same of its own earliest value."""
    other = "spine-cds-e1-one-page"
    example = load_example("e01-improving", ORDER_DATE)
    bundle = json.loads(json.dumps(example.bundle).replace(example.patient_id, other))
    moved = _as_another_patient(fhir, "e01-improving", other, lambda b: None)
    _load_many_crps(fhir, bundle, other)
    card, url = _launch(one_page_service, fhir, moved)
    crp = card["extension"]["spine-cds-assessment"]["crp"]
    assert "baseline" not in crp and "percentChange" not in crp
    earliest = crp["earliestRead"]
    assert earliest["day"] > 0  # the first value read, well after T0
    assert "earliest read" in card["detail"]
    shown = _open(browser, url, tmp_path, "e01-one-page")
    assert shown["state"] == "ready", shown["fatal"]
    assert shown["errors"] == []
    lines = {line["id"]: line for line in shown["lines"]}
    assert set(lines) == {"earliest", "normal"}
    assert lines["earliest"]["value"] == earliest["value"]
    value = f"{earliest['value']:g}"
    assert lines["earliest"]["label"] == f"Earliest CRP read {value} mg/L (older results not read)"
    first = _rows(shown, "CRP")[0]
    assert first[1] == str(earliest["day"]) and "earliest read" in first[5]
    assert "baseline" not in first[5]
    assert any("cut off after 1 pages" in m for m in shown["messages"])

    with FhirTestServer(smart=False) as open_server:
        open_server.load_bundle(bundle)
        _load_many_crps(open_server, bundle, other)
        launch = f"{one_page_service.url}/trend/launch"
        open_url = f"{launch}?iss={open_server.base_url}&patientId={other}"
        own = _open(browser, open_url, tmp_path, "e01-one-page-open")
    assert own["state"] == "ready", own["fatal"]
    assert own["title"] == ""
    own_lines = {line["id"]: line["value"] for line in own["lines"]}
    own_first = _rows(own, "CRP")[0]
    assert int(own_first[1]) > 1 and "earliest read" in own_first[5]
    assert own_lines == {"earliest": float(own_first[3]), "normal": 10}
