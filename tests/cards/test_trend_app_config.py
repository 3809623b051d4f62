"""The trend app's copy of the service's facts (smart_app/src/config.js) is the service's.

The app runs in the browser and cannot read the settings, so config.js holds its own
copy: the default thresholds (drawn when it is launched without a card), the molar CRP
factor, and the FHIR searches. These tests read config.js and compare every value with
the service's defaults (``load_settings`` with no configuration) and hooks.json's
prefetch templates, so a changed default or template fails here until the app is changed
with it (and rebuilt: ``bash scripts/build-trend-app.sh``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cds_service.discovery import load_discovery
from cds_service.routes.trend_app import static_dir
from cds_service.settings import Settings
from cds_service.trend_link import app_context

SRC = Path(__file__).resolve().parents[2] / "smart_app" / "src"
# The searches the app runs and reads by key (trend.js: the conditions for T0 and the red
# flags, then the three series). Other prefetch keys of hooks.json are the service's only.
APP_QUERY_KEYS = ("conditions", "crp", "esr", "pain")
PATIENT = "{{context.patientId}}"  # hooks.json's placeholder; the app's is {patient}

_ENTRY = re.compile(r"\s*(\w+|'[^'\\\n]*')\s*:\s*('[^'\\\n]*'|-?\d+(?:\.\d+)?)\s*(?:,|$)")


def _config_text() -> str:
    return (SRC / "config.js").read_text(encoding="utf-8")


def _constant(name: str) -> str:
    """The literal after ``export const NAME =`` (up to the ``;`` that ends it)."""
    pattern = rf"^export const {name} = (.*?);[ \t]*(?://[^\n]*)?$"
    found = re.search(pattern, _config_text(), re.M | re.S)
    assert found, f"config.js exports no {name}"
    return found.group(1).strip()


def _value(literal: str) -> Any:
    """A JS string in single quotes (without escapes) or a number, as Python."""
    return literal[1:-1] if literal.startswith("'") else json.loads(literal)


def _object(name: str) -> dict[str, Any]:
    """A flat JS object literal of strings and numbers; anything else fails the test
    rather than being skipped."""
    literal = _constant(name)
    assert literal.startswith("{") and literal.endswith("}"), f"{name} is not an object"
    body, pos, entries = literal[1:-1].strip(), 0, {}
    while pos < len(body):
        entry = _ENTRY.match(body, pos)
        assert entry, f"{name}: cannot read {body[pos : pos + 60]!r}"
        key = _value(entry.group(1)) if entry.group(1).startswith("'") else entry.group(1)
        assert key not in entries, f"{name}: {key} twice"
        entries[key] = _value(entry.group(2))
        pos = entry.end()
    return entries


def test_the_default_thresholds_are_the_settings_defaults(settings: Settings) -> None:
    # What a card sends with the default settings; launched without a card, the app
    # draws with its own copy, which must be the same keys and values.
    sent = app_context({}, "", "p", settings.rules)["thresholds"]
    assert _object("DEFAULT_THRESHOLDS") == sent


def test_every_threshold_the_app_reads_has_a_default() -> None:
    defaults = _object("DEFAULT_THRESHOLDS")
    read = {
        name
        for path in SRC.glob("*.js")
        for name in re.findall(r"\bthresholds\.(\w+)", path.read_text(encoding="utf-8"))
    }
    assert read, "the app reads no threshold: has trend.js changed how?"
    assert read <= set(defaults), read - set(defaults)


def test_the_molar_crp_factor_is_the_setting(settings: Settings) -> None:
    assert _value(_constant("CRP_MOLAR_FACTOR")) == settings.crp_molar_factor


def test_the_app_searches_with_the_prefetch_templates() -> None:
    queries = _object("QUERIES")
    assert tuple(queries) == APP_QUERY_KEYS
    built = (static_dir() / "app.js").read_text(encoding="utf-8")
    services = load_discovery().services.values()
    assert services
    for service in services:
        for key in APP_QUERY_KEYS:
            template = service.prefetch.get(key)
            assert template is not None, f"{service.id} has no prefetch {key!r}"
            assert PATIENT in template, (service.id, key)
            assert queries[key] == template.replace(PATIENT, "{patient}"), (service.id, key)
            # The committed build is checked against the source by
            # tests/integration/test_trend_app_build.py (with Node); this holds without.
            assert queries[key] in built, key


def test_the_app_may_read_every_resource_it_searches() -> None:
    scopes = _constant("SCOPES").strip("'").split()
    for key, query in _object("QUERIES").items():
        resource_type = query.split("?", 1)[0]
        assert f"patient/{resource_type}.read" in scopes, key


def test_the_crp_mass_units_are_the_services() -> None:
    """The app converts a CRP as the service does: the same units, the same factors
    (the service's table gained g/L and ug/mL; the app's copy had only mg/dL)."""
    from fhir_mappers.observations_careful import CRP_MASS_TO_MG_PER_L

    assert _object("CRP_MASS_TO_MG_PER_L") == CRP_MASS_TO_MG_PER_L
