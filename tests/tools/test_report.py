"""`spine-cds report` and `spine-cds audit-purge` on a database the service itself filled.

The database is written by real hook calls (the app in process; one patient's data
fetched from the real FHIR test server) and real feedback POSTs; the report reads it
through the same settings file a deployment would give ``serve``.
"""

from __future__ import annotations

import html
import json
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient

from cds_service.app import create_app
from cds_service.cards import load_override_reasons
from cds_service.cli import main
from cds_service.ehr_requests import local_prefetch
from cds_service.examples import load_example
from cds_service.stores import AuditRecord, SqlAuditStore, SqlFeedbackStore, SqliteDatabase
from cds_service.stores.audit import DECISIONS
from cds_service.tools.report import DECISION_ORDER, offered_reasons, percentile
from spine_cds_dev.fhir_server import FhirTestServer
from tests.builders import SELECT_ID, SIGN_ID, hook_request, medication_request, service_request
from tests.conftest import TEST_HASH_KEY, make_settings
from tests.support.ehr_calls import order_request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ORDER_DATE = date(2026, 11, 26)
TOKEN = "report-test-token"  # synthetic; the FHIR test server only checks it matches
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OVERRIDES = {r.code: r for r in load_override_reasons()}
EHR_OWN_REASON = {
    "system": "http://ehr.example.org/CodeSystem/override",
    "code": "patient-preference",
    "display": "Patient preference",
}


@dataclass(frozen=True)
class Filled:
    config: Path
    cards: dict[str, str]  # example key -> uuid of the card the service answered with
    sign_card: str


def write_config(path: Path, database: Path, **extra: Any) -> Path:
    lines = [f"database_path = {json.dumps(str(database))}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def call_example(
    app: Flask, client: FlaskClient, key: str, service_id: str = SELECT_ID
) -> dict[str, Any]:
    example = load_example(key, ORDER_DATE)
    hook = "order-select" if service_id == SELECT_ID else "order-sign"
    body = order_request(hook, example.patient_id, example.draft_order)
    templates = app.extensions["spine_cds"].discovery.services[service_id].prefetch
    resources = [e["resource"] for e in example.bundle["entry"]]
    body["prefetch"] = local_prefetch(templates, body["context"], resources)
    response = client.post(f"/cds-services/{service_id}", json=body)
    assert response.status_code == 200, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


def card_of(answer: dict[str, Any]) -> str:
    assert len(answer["cards"]) == 1, answer
    return str(answer["cards"][0]["uuid"])


def feedback(card: str, outcome: str, when: str, reason: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"card": card, "outcome": outcome, "outcomeTimestamp": when}
    if reason is not None:
        known = OVERRIDES[reason]
        entry["overrideReason"] = {
            "reason": {"system": known.system, "code": known.code, "display": known.display}
        }
    return entry


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    tmp = tmp_path_factory.mktemp("report")
    app = create_app(make_settings(tmp))
    shadow_app = create_app(make_settings(tmp, shadow_mode=True))  # same database file
    client, shadow_client = app.test_client(), shadow_app.test_client()
    cards: dict[str, str] = {}
    try:
        for key in ("e01-improving", "e01-improving", "e02-cauda-equina", "e03-plateau"):
            cards[key] = card_of(call_example(app, client, key))
        for key in ("e05-mixed-units", "e06-single-crp", "e11-epidural-abscess"):
            cards[key] = card_of(call_example(app, client, key))
        assert call_example(app, client, "e07-resolved")["cards"] == []
        sign_card = card_of(call_example(app, client, "e01-improving", SIGN_ID))
        assert call_example(shadow_app, shadow_client, "e03-plateau")["cards"] == []

        # e04: no prefetch; the service fetches from the real FHIR test server.
        e04 = load_example("e04-crp-rebound", ORDER_DATE)
        with FhirTestServer(token=TOKEN) as fhir:
            fhir.load_bundle(e04.bundle)
            body = order_request(
                "order-select",
                e04.patient_id,
                e04.draft_order,
                fhir_server=fhir.base_url,
                access_token=TOKEN,
            )
            response = client.post(f"/cds-services/{SELECT_ID}", json=body)
        assert response.status_code == 200, response.get_json()
        cards["e04-crp-rebound"] = card_of(response.get_json())

        not_spine = hook_request("order-select", [medication_request("m1")])
        assert client.post(f"/cds-services/{SELECT_ID}", json=not_spine).status_code == 200
        no_data = hook_request("order-select", [service_request("o1")])
        assert client.post(f"/cds-services/{SELECT_ID}", json=no_data).status_code == 412
        invalid = dict(not_spine, hookInstance="not-a-uuid")
        assert client.post(f"/cds-services/{SELECT_ID}", json=invalid).status_code == 400

        entries = [
            # e01: overridden first, then accepted: the last word counts.
            feedback(
                cards["e01-improving"], "overridden", "2026-11-26T10:01:00Z", "diagnosis-in-doubt"
            ),
            feedback(cards["e01-improving"], "accepted", "2026-11-26T10:02:00Z"),
            feedback(
                cards["e05-mixed-units"], "overridden", "2026-11-26T10:03:00Z", "surgical-planning"
            ),
            # No display sent: the report takes it from the service's override list.
            dict(
                feedback(cards["e02-cauda-equina"], "overridden", "2026-11-26T10:04:00Z"),
                overrideReason={
                    "reason": {
                        "system": OVERRIDES["imaging-done-or-scheduled"].system,
                        "code": "imaging-done-or-scheduled",
                    }
                },
            ),
            feedback(
                cards["e03-plateau"],
                "overridden",
                "2026-11-26T10:05:00Z",
                "not-indicated-on-assessment",
            ),
            feedback(cards["e04-crp-rebound"], "overridden", "2026-11-26T10:06:00Z"),
            # A reason from the EHR's own list, which the card never offered.
            dict(
                feedback(cards["e11-epidural-abscess"], "overridden", "2026-11-26T10:06:30Z"),
                overrideReason={"reason": EHR_OWN_REASON},
            ),
            # A card this database never showed (e.g. purged from the audit).
            feedback("0b7c6f4e-8a0d-4a52-9d8e-3c1f2a6b9e10", "accepted", "2026-11-26T10:07:00Z"),
        ]
        response = client.post(f"/cds-services/{SELECT_ID}/feedback", json={"feedback": entries})
        assert response.status_code == 200 and response.get_json()["stored"] == len(entries)
        again = client.post(f"/cds-services/{SELECT_ID}/feedback", json={"feedback": entries[:1]})
        assert again.get_json()["duplicates"] == 1
    finally:
        app.extensions["spine_cds"].close()
        shadow_app.extensions["spine_cds"].close()
    config = write_config(tmp / "spine-cds.toml", tmp / "spine-cds.sqlite3")
    yield Filled(config, cards, sign_card)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def report_json(filled: Filled, *extra: str) -> dict[str, Any]:
    result = run("report", "--config", str(filled.config), "--json", *extra)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def tokens(output: str, label: str) -> list[str]:
    """The whitespace-separated cells of the first line that starts with ``label``."""
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no line for {label!r} in:\n{output}")


def test_text_report_counts_rates_and_reasons(filled: Filled) -> None:
    result = run("report", "--config", str(filled.config))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Invocations: 14 " in out and "1 in shadow mode" in out
    # decision: select, sign, total, shadow
    assert tokens(out, "advise-against")[:4] == ["3", "1", "4", "0"]
    assert tokens(out, "support")[:4] == ["4", "0", "4", "1"]
    assert tokens(out, "support-urgent")[:4] == ["1", "0", "1", "0"]
    assert tokens(out, "insufficient-data")[:4] == ["1", "0", "1", "0"]
    assert tokens(out, "not-applicable")[:4] == ["2", "0", "2", "0"]
    assert tokens(out, "error")[:4] == ["2", "0", "2", "0"]
    assert tokens(out, "no-spine-imaging-order") == ["1"]
    # what the insufficient-data call lacked (e06: one CRP only), an integrator's review
    assert tokens(out, "crp-single") == ["1"]
    assert "(insufficient-data: what the calls lacked; a call may lack several)" in out
    assert tokens(out, "data_unavailable") == ["1"]
    assert tokens(out, "invalid_request") == ["1"]

    cards = out.split("Cards shown")[1]
    # decision: cards, accepted, overridden, no feedback (each distinct card once)
    assert tokens(cards, "advise-against") == ["2", "1", "(50.0%)", "1", "(50.0%)", "0", "(0.0%)"]
    assert tokens(cards, "support") == ["3", "0", "(0.0%)", "3", "(100.0%)", "0", "(0.0%)"]
    assert tokens(cards, "support-urgent") == ["1", "0", "(0.0%)", "1", "(100.0%)", "0", "(0.0%)"]
    assert tokens(cards, "insufficient-data")[-2:] == ["1", "(100.0%)"]
    assert "1 feedback entry(ies) for cards not in this period's audit" in out

    reasons = out.split("Override reasons")[1].split("Latency")[0]
    for code, decision in (
        ("surgical-planning", "advise-against"),
        ("imaging-done-or-scheduled", "support-urgent"),
        ("not-indicated-on-assessment", "support"),
    ):
        assert f"1  {code} - {OVERRIDES[code].display} ({decision} 1)" in reasons
    assert "diagnosis-in-doubt" not in reasons  # e01's override was followed by an accept
    assert "1  (no reason given) (support 1)" in reasons

    latency = out.split("Latency (ms)")[1]
    assert "(n=14)" in tokens(latency, "service")
    assert "(n=1)" in tokens(latency, "FHIR")
    assert "needed a FHIR fetch: 2 (16.7%) of 12 calls that read patient data" in latency
    assert "(1 fetched, 1 could not get the data: 412)" in latency


def test_json_report_numbers(filled: Filled, tmp_path: Path) -> None:
    data = report_json(filled)
    assert data["invocations"] == 14
    assert data["decisions"] == {
        "advise-against": 4,
        "support": 4,
        "support-urgent": 1,
        "insufficient-data": 1,
        "not-applicable": 2,
        "error": 2,
    }
    assert data["byService"][SIGN_ID] == {"advise-against": 1}
    assert data["shadow"] == {"support": 1}
    assert data["errorReasons"] == {"data_unavailable": 1, "invalid_request": 1}
    assert data["insufficientDataReasons"] == {"crp-single": 1}
    assert data["acceptance"]["advise-against"] == {
        "cards": 2,
        "accepted": 1,
        "overridden": 1,
        "overriddenNotOffered": 0,
        "noFeedback": 0,
        "acceptedPct": 50.0,
        "overriddenPct": 50.0,
        "noFeedbackPct": 0.0,
    }
    assert data["acceptance"]["support"]["overriddenPct"] == 100.0
    assert data["unlinkedFeedback"] == 1
    by_code = {o["code"]: o for o in data["overrideReasons"]}
    assert by_code["imaging-done-or-scheduled"]["display"] == (
        OVERRIDES["imaging-done-or-scheduled"].display
    )
    assert by_code["surgical-planning"]["byDecision"] == {"advise-against": 1}
    fetch = data["fhirFetch"]
    assert (fetch["callsReadingData"], fetch["fetched"], fetch["fetchFailed"]) == (12, 1, 1)
    assert fetch["neededFetchPct"] == 16.7
    assert set(fetch["fetchedByKey"]) == {
        "conditions",
        "crp",
        "esr",
        "pain",
        "antibiotics",
        "patient",
        "procedures",
        "imaging_studies",
        "imaging_reports",
    }

    # Percentiles agree with the standard library's, over the latencies the store holds.
    db = SqliteDatabase(filled.config.parent / "spine-cds.sqlite3")
    try:
        latencies = [r.latency_ms for r in SqlAuditStore(db, 90).records()]
    finally:
        db.close()
    reference = statistics.quantiles(latencies, n=100, method="inclusive")
    latency = data["latencyMs"]
    assert latency["count"] == len(latencies) == 14
    for pct in (50, 90, 95, 99):
        assert latency[f"p{pct}"] == pytest.approx(reference[pct - 1], abs=0.051)
    assert latency["max"] == pytest.approx(max(latencies), abs=0.051)
    assert data["fhirFetchMs"]["count"] == 1 and data["fhirFetchMs"]["p50"] > 0


def test_png_chart_is_written(filled: Filled, tmp_path: Path) -> None:
    import matplotlib.image

    png = tmp_path / "report.png"
    result = run("report", "--config", str(filled.config), "--png", str(png))
    assert result.exit_code == 0, result.output
    assert f"Chart written to {png}" in result.output
    content = png.read_bytes()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 10_000
    height, width = matplotlib.image.imread(str(png)).shape[:2]
    assert height > 600 and width > 600


def test_period_limits(filled: Filled) -> None:
    period = report_json(filled)["period"]
    first = datetime.fromisoformat(period["first"]).date()
    last = datetime.fromisoformat(period["last"]).date()
    inside = report_json(filled, "--since", first.isoformat(), "--until", last.isoformat())
    assert inside["invocations"] == 14
    after = run("report", "--config", str(filled.config), "--since", str(last + timedelta(1)))
    assert after.exit_code == 0 and "No invocations recorded in this period." in after.output
    before = report_json(filled, "--until", str(first - timedelta(1)))
    assert before["invocations"] == 0 and before["acceptance"] == {}
    # Feedback for the period's cards that is now outside it is reported, not counted.
    assert before["unlinkedFeedback"] == 8  # every entry stored (the repeat was not)
    backwards = run(
        "report", "--config", str(filled.config), "--since", "2026-02-02", "--until", "2026-02-01"
    )
    assert backwards.exit_code == 2 and "--until is before --since" in backwards.output
    # The last day a date can name: every invocation, not an overflow's traceback.
    assert report_json(filled, "--until", "9999-12-31")["invocations"] == 14


def test_empty_database_says_so(tmp_path: Path) -> None:
    create_app(make_settings(tmp_path)).extensions["spine_cds"].close()  # creates the database
    config = write_config(tmp_path / "c.toml", tmp_path / "spine-cds.sqlite3")
    png = tmp_path / "empty.png"
    result = CliRunner().invoke(main, ["report", "--config", str(config), "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "No invocations recorded in this period." in result.output
    assert "no chart written" in result.output and not png.exists()
    data = report_json(Filled(config, {}, ""))
    assert data["invocations"] == 0 and data["latencyMs"]["p50"] is None


def test_a_missing_database_is_an_error_not_an_empty_report(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "spine-cds.sqlite3"
    config = write_config(tmp_path / "c.toml", missing)
    for command in ("report", "audit-purge"):
        result = CliRunner().invoke(main, [command, "--config", str(config)])
        assert result.exit_code == 2
        assert f"no database at {missing}" in result.output
    assert not missing.exists()


@pytest.mark.parametrize("size", [1, 2, 5, 14, 101])
def test_percentile_is_the_inclusive_linear_one(size: int) -> None:
    values = [float((i * 37) % 101) for i in range(size)]
    if size == 1:
        assert percentile(values, 99) == values[0]
        return
    reference = statistics.quantiles(values, n=100, method="inclusive")
    for pct in (1, 50, 90, 95, 99):
        assert percentile(values, pct) == pytest.approx(reference[pct - 1])
    assert percentile([], 50) is None


def audit_record(hook_instance: str, received_at: datetime) -> AuditRecord:
    return AuditRecord(
        hook_instance=hook_instance,
        service_id=SELECT_ID,
        hook="order-select",
        received_at=received_at,
        patient_key=None,
        decision="advise-against",
        reason=None,
        rules_fired=("advise-against",),
        counts={},
        data_sources={"crp": "prefetch"},
        card_uuids=(),
        status=200,
        latency_ms=3.0,
        fhir_ms=None,
        shadow=False,
    )


def test_audit_purge_applies_the_retention_now(tmp_path: Path) -> None:
    database = tmp_path / "spine-cds.sqlite3"
    now = datetime.now(UTC)
    db = SqliteDatabase(database)
    try:
        keep_all = SqlAuditStore(db, retention_days=1000)  # so nothing goes while filling
        keep_all.record(audit_record("old", now - timedelta(days=100)))
        keep_all.record(audit_record("recent", now - timedelta(days=1)))
    finally:
        db.close()
    config = write_config(tmp_path / "c.toml", database, audit_retention_days=90)

    result = run("audit-purge", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "Deleted 1 audit record(s) older than 90 days; 1 kept." in result.output
    db = SqliteDatabase(database)
    try:
        assert [r.hook_instance for r in SqlAuditStore(db, 1000).records()] == ["recent"]
    finally:
        db.close()
    again = run("audit-purge", "--config", str(config))
    assert "Deleted 0 audit record(s)" in again.output and "1 kept" in again.output


def test_the_service_and_a_text_report_never_load_matplotlib(filled: Filled) -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from cds_service.app import create_app\n"
        "from cds_service.cli import main\n"
        "from cds_service.settings import load_settings\n"
        "environ = {'SPINE_CDS_PUBLIC_BASE_URL': 'https://cds.example.org',  # secure mode\n"
        f"           'SPINE_CDS_AUDIT_HASH_KEY': {TEST_HASH_KEY!r}}}\n"
        f"settings = load_settings(environ=environ, config_file={str(filled.config)!r})\n"
        "create_app(settings).extensions['spine_cds'].close()\n"
        f"result = CliRunner().invoke(main, ['report', '--config', {str(filled.config)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_override_reason_the_card_never_offered_is_kept_and_counted_apart(
    filled: Filled,
) -> None:
    result = run("report", "--config", str(filled.config))
    out = result.output
    offered = out.split("Override reasons")[1].split("Override reasons the card did not offer")[0]
    assert "patient-preference" not in offered
    apart = out.split("Override reasons the card did not offer")[1].split("Latency")[0]
    assert (
        f"1  {EHR_OWN_REASON['system']}|patient-preference - Patient preference (support 1)"
        in apart
    )
    assert "overridden includes 1 with a reason the card did not offer" in out

    data = report_json(filled)
    assert data["acceptance"]["support"]["overriddenNotOffered"] == 1
    assert [o["code"] for o in data["overrideReasonsNotOffered"]] == ["patient-preference"]
    assert data["overrideReasonsNotOffered"][0]["offeredByCard"] is False
    assert all(o["offeredByCard"] for o in data["overrideReasons"])
    # Nothing the client sent was lost: the entry is stored as sent.
    db = SqliteDatabase(filled.config.parent / "spine-cds.sqlite3")
    try:
        stored = [e["entry"] for e in SqlFeedbackStore(db).all()]
    finally:
        db.close()
    assert any(e.get("overrideReason", {}).get("reason") == EHR_OWN_REASON for e in stored)


def test_a_reason_offered_on_other_cards_but_not_this_one_is_not_offered() -> None:
    urgent_only = OVERRIDES["mri-contraindicated"]
    assert (urgent_only.system, urgent_only.code) in offered_reasons("support-urgent")
    assert (urgent_only.system, urgent_only.code) not in offered_reasons("advise-against")


def test_report_names_its_data_source_and_period(filled: Filled) -> None:
    result = run("report", "--config", str(filled.config), "--since", "2026-01-01")
    database = (filled.config.parent / "spine-cds.sqlite3").resolve()
    assert f"Data: decision audit and feedback in SQLite {database}" in result.output
    assert report_json(filled)["source"] == f"SQLite {database}"


def test_chart_is_a_one_page_summary(filled: Filled, tmp_path: Path) -> None:
    """The chart as SVG (same drawing, text kept as text), read as a committee would."""
    svg = tmp_path / "report.svg"
    result = run("report", "--config", str(filled.config), "--png", str(svg))
    assert result.exit_code == 0, result.output
    text = html.unescape(svg.read_text(encoding="utf-8"))
    today = datetime.now(UTC).date().isoformat()
    assert f"calls {today} to {today}" in text  # the date range
    database = (filled.config.parent / "spine-cds.sqlite3").resolve()
    assert f"Data: decision audit and card feedback in SQLite {database}" in text
    assert "Decisions: shown vs shadow mode" in text
    assert "answered as usual" in text and "shadow mode" in text
    assert "Why no card: not applicable, refused" in text
    assert "not applicable:" in text and "no-spine-imaging-order" in text
    assert "refused:" in text and "data_unavailable" in text
    assert "Not indicated after clinical" in text  # an override reason (wrapped)
    assert "Patient preference" in text and "(not offered by the card)" in text
    assert "the service's own processing time per call" in text
    # two calls were refused (a 412 and a 400): calls, not answers (an integration review)
    assert (
        "Calls: 14 (11 answered normally, 2 refused with an error, 1 answered in shadow mode)"
        in text
    )
    # Colour-blind-safe palette (Okabe-Ito); the old green/orange pair is gone.
    assert "#0072b2" in text.lower() and "#e69f00" in text.lower()
    assert "#2e7d32" not in text.lower()


def test_chart_without_cards_shown_says_why(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, shadow_mode=True))
    try:
        answer = call_example(app, app.test_client(), "e02-cauda-equina")
        assert answer["cards"] == []
    finally:
        app.extensions["spine_cds"].close()
    config = write_config(tmp_path / "spine-cds.toml", tmp_path / "spine-cds.sqlite3")
    svg = tmp_path / "shadow.svg"
    result = run("report", "--config", str(config), "--png", str(svg))
    assert result.exit_code == 0, result.output
    text = html.unescape(svg.read_text(encoding="utf-8"))
    assert "all 1 calls that would have shown a card ran in shadow mode" in text


def test_png_without_matplotlib_says_how_to_install_it_before_anything_else(
    filled: Filled, tmp_path: Path
) -> None:
    png = tmp_path / "report.png"
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # as if not installed\n"
        "from cds_service.cli import main\n"
        f"main(['report', '--config', {str(filled.config)!r}, '--png', {str(png)!r}])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""  # no text report first
    assert "--png needs matplotlib" in done.stderr
    assert "bash scripts/setup.sh --report" in done.stderr  # the README's hint
    assert not png.exists()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "`bash scripts/setup.sh --report`" in readme


def test_the_report_orders_exactly_the_decisions_the_audit_records() -> None:
    assert set(DECISION_ORDER) == DECISIONS


def test_calls_refused_for_authentication_are_reported_by_reason(tmp_path: Path) -> None:
    """401s are not invocations (no audit row each) but the audit counts them per minute
    and reason; the report shows those counts, even when no call got in."""
    settings = make_settings(tmp_path, dev_mode=False, public_base_url="https://cds.example.org")
    app = create_app(settings)
    client = app.test_client()
    body = hook_request("order-select", [service_request("o1")])
    try:
        for _ in range(3):
            assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 401
        for _ in range(2):
            refused = client.post(
                f"/cds-services/{SELECT_ID}",
                json=body,
                headers={"Authorization": "Bearer not-a-jwt"},
            )
            assert refused.status_code == 401
    finally:
        app.extensions["spine_cds"].close()
    config = write_config(tmp_path / "c.toml", tmp_path / "spine-cds.sqlite3")
    data = report_json(Filled(config, {}, ""))
    assert data["invocations"] == 0
    assert data["refusedCalls"] == {"total": 5, "byReason": {"missing-token": 3, "malformed": 2}}
    result = run("report", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "No invocations recorded in this period." in result.output
    assert "Refused calls (401) by reason: 5" in result.output
    assert tokens(result.output, "3") == ["missing-token"]
    assert tokens(result.output, "2") == ["malformed"]
    # the period applies to them too
    assert report_json(Filled(config, {}, ""), "--until", "2000-01-01")["refusedCalls"] == {
        "total": 0,
        "byReason": {},
    }


def test_a_report_with_no_refused_call_says_none(filled: Filled) -> None:
    result = run("report", "--config", str(filled.config))
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Refused calls (401)"))
    assert lines[at].startswith("Refused calls (401) by reason: 0")
    assert lines[at + 1].strip() == "none"
    assert report_json(filled)["refusedCalls"] == {"total": 0, "byReason": {}}
