"""The trend app's page says what the app must read as the service does, and that is what
the service reads.

The app runs in the browser and cannot read the settings or the value sets, so the
service writes them into the app's page (``/trend/``, the ``spine-cds-launch`` element:
``trend_link.reading_facts``): the searches it serves for the app's keys, how each code
they ask for is read, the statuses that count, the units and factors, the pages a search
is followed through and the thresholds. These tests hold each of them to its home: the
discovery document the EHR prefetches by, the value sets, the Observation mapper itself
(each status, code and unit run through ``map_observations``) and the settings, with the
shipped defaults and with a site's own codes and settings.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.app import create_app
from cds_service.engine.episode import in_scope_categories
from cds_service.runtime import Runtime
from cds_service.settings import Settings, load_settings
from cds_service.trend_link import APP_PATIENT, APP_SEARCHES, app_context, reading_facts
from fhir_mappers.model import MeasurementKind
from fhir_mappers.observations import map_observations

PATIENT = "{{context.patientId}}"  # hooks.json's placeholder
SITE_SYSTEM = "https://hospital.example/fhir/CodeSystem/lab"  # synthetic
SITE_CODES = {
    "valueSet": "observations",
    "source": "a site's own laboratory codes (synthetic, for this test)",
    "entries": [
        {"system": SITE_SYSTEM, "code": "ESR-W", "kind": "esr", "verified": False},
        {"system": SITE_SYSTEM, "code": "HSCRP", "kind": "crp-hs", "verified": False},
        {"system": SITE_SYSTEM, "code": "VAS", "kind": "pain", "verified": False},
    ],
}
# Every Observation status FHIR R4 defines.
STATUSES = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
)
KIND_OF_SERIES = {
    "crp": MeasurementKind.CRP,
    "esr": MeasurementKind.ESR,
    "pain": MeasurementKind.PAIN,
}
_META = re.compile(r'<meta name="spine-cds-launch" content="([^"]*)">')


def page_of(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/trend/")
    assert response.status_code == 200
    found = _META.search(response.get_data(as_text=True))
    assert found, "the app's page has no spine-cds-launch element"
    page: dict[str, Any] = json.loads(html.unescape(found[1]))
    return page


def runtime_of(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions["spine_cds"]
    return runtime


@pytest.fixture
def site_app(tmp_path: Path) -> Flask:
    """A site's service: its own codes, preliminary results counted, molar CRP off, more
    pages, another fall threshold, infections of other causes in scope."""
    folder = tmp_path / "valuesets"
    folder.mkdir()
    (folder / "site-codes.json").write_text(json.dumps(SITE_CODES), "utf-8")
    settings = load_settings(
        environ={
            "SPINE_CDS_RULE_PLATEAU_MIN_FALL_PCT": "30",
            "SPINE_CDS_RULE_INCLUDE_OTHER_INFECTIVE": "true",
        },
        overrides={
            "dev_mode": True,
            "database_path": str(tmp_path / "site.sqlite3"),
            "valueset_dir": str(folder),
            "accept_preliminary": True,
            "crp_molar_factor": 0,
            "fhir_max_pages": 7,
        },
    )
    return create_app(settings)


def test_the_apps_page_says_what_the_service_reads(app: Flask, client: FlaskClient) -> None:
    page = page_of(client)
    runtime = runtime_of(app)
    facts = reading_facts(
        runtime.value_sets, runtime.mapping, runtime.settings.fhir_max_pages, runtime.rules
    )
    assert page == {"devMode": True, "service": facts}
    assert set(page["service"]["queries"]) == set(APP_SEARCHES)


def test_a_sites_codes_and_settings_reach_the_page(site_app: Flask) -> None:
    service = page_of(site_app.test_client())["service"]
    assert service["codes"]["esr"][f"{SITE_SYSTEM}|ESR-W"] == "esr"
    assert service["codes"]["crp"][f"{SITE_SYSTEM}|HSCRP"] == "crp-hs"
    assert service["codes"]["pain"][f"{SITE_SYSTEM}|VAS"] == "pain"
    assert f"{SITE_SYSTEM}|ESR-W" in service["queries"]["esr"]
    assert "preliminary" in service["statuses"]
    assert service["crpMolarFactor"] is None
    assert service["maxPages"] == 7
    assert service["thresholds"]["plateauMinFallPct"] == 30
    assert "nvo-other-infective" in service["episodeCategories"]


def _both(app: Flask, site_app: Flask) -> list[tuple[Flask, dict[str, Any]]]:
    return [(a, page_of(a.test_client())["service"]) for a in (app, site_app)]


def test_the_searches_are_those_the_service_serves(app: Flask, site_app: Flask) -> None:
    """The queries of the discovery document the EHR prefetches by (a site's codes in
    them), for the app's keys, with the app's placeholder for the patient."""
    for each, service in _both(app, site_app):
        discovery = each.test_client().get("/cds-services").get_json()
        assert discovery["services"]
        for entry in discovery["services"]:
            for key in APP_SEARCHES:
                template = entry["prefetch"][key]
                assert PATIENT in template
                assert service["queries"][key] == template.replace(PATIENT, APP_PATIENT)


def _asked_for(query: str) -> set[str]:
    values = parse_qs(urlsplit(query).query).get("code", [])
    return {code for value in values for code in value.split(",")}


def _observation(code: str, value: dict[str, Any], status: str = "final") -> dict[str, Any]:
    system, _, code_value = code.partition("|")
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": status,
        "code": {"coding": [{"system": system, "code": code_value}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2026-11-01T08:00:00Z",
        **value,
    }


def _read(runtime: Runtime, resource: dict[str, Any]) -> Any:
    """The one Measurement the service reads from ``resource``, or None when it leaves
    it out."""
    measurements, _ = map_observations([resource], runtime.value_sets, runtime.mapping)
    assert len(measurements) <= 1
    return measurements[0] if measurements else None


def _value_for(kind: str) -> dict[str, Any]:
    if kind == "pain":
        return {"valueInteger": 4}
    if kind == "esr":
        return {"valueQuantity": {"value": 30, "unit": "mm/h", "code": "mm/h"}}
    if kind == "crp-molar":
        return {"valueQuantity": {"value": 95.24, "unit": "nmol/L", "code": "nmol/L"}}
    return {"valueQuantity": {"value": 20, "unit": "mg/L", "code": "mg/L"}}


def test_each_code_is_read_as_its_kind_says(app: Flask, site_app: Flask) -> None:
    """Every code a search asks for is on the page with its kind, and no other; the
    mapper reads a value of that code as that kind (a CRP series value, hs or not, an
    ESR, a pain score), or leaves molar CRP out exactly when the page gives no factor."""
    for each, service in _both(app, site_app):
        runtime = runtime_of(each)
        for key in APP_SEARCHES:
            codes = service["codes"].get(key, {})
            assert set(codes) == _asked_for(service["queries"][key]), key
            for code, kind in codes.items():
                read = _read(runtime, _observation(code, _value_for(kind)))
                if kind == "crp-molar" and service["crpMolarFactor"] is None:
                    assert read is None, code
                    continue
                assert read is not None, (code, kind)
                assert read.kind is KIND_OF_SERIES[key], (code, kind)
                assert read.high_sensitivity == (kind == "crp-hs"), code


def test_the_statuses_are_those_the_service_counts(app: Flask, site_app: Flask) -> None:
    for each, service in _both(app, site_app):
        runtime = runtime_of(each)
        for status in STATUSES:
            value = _value_for("crp")
            read = _read(runtime, _observation("http://loinc.org|1988-5", value, status))
            assert (read is not None) == (status in service["statuses"]), status


def test_the_units_and_factors_are_the_services(app: Flask, site_app: Flask) -> None:
    for each, service in _both(app, site_app):
        runtime = runtime_of(each)
        for unit, factor in service["crpMassToMgL"].items():
            crp = {"valueQuantity": {"value": 2, "unit": unit, "code": unit}}
            read = _read(runtime, _observation("http://loinc.org|1988-5", crp))
            assert read is not None and read.value == pytest.approx(2 * factor), unit
        for unit in service["esrUnits"]:
            esr = {"valueQuantity": {"value": 30, "unit": unit, "code": unit}}
            read = _read(runtime, _observation("http://loinc.org|4537-7", esr))
            assert read is not None and read.value == 30, unit
        for unit in service["crpMolarUnits"]:
            molar = {"valueQuantity": {"value": 95.24, "unit": unit, "code": unit}}
            read = _read(runtime, _observation("http://loinc.org|76485-2", molar))
            factor = service["crpMolarFactor"]
            if factor is None:
                assert read is None, unit
            else:
                assert read is not None and read.value == pytest.approx(95.24 / factor), unit


def test_the_pages_categories_and_thresholds_are_the_settings(app: Flask, site_app: Flask) -> None:
    for each, service in _both(app, site_app):
        settings: Settings = runtime_of(each).settings
        assert service["maxPages"] == settings.fhir.max_pages
        in_scope = in_scope_categories(settings.rules)
        assert service["episodeCategories"] == sorted(c.value for c in in_scope)
        # the thresholds a card sends with the same settings
        assert service["thresholds"] == app_context({}, "p", settings.rules, {})["thresholds"]
