"""The trend app keeps no copy of the service's facts, and what it still holds is the
service's.

The app runs in the browser and cannot read the settings or the value sets: the service
writes what the app must read as it does into the app's page (``trend_link.reading_facts``,
held to the service by tests/web/test_trend_app_page.py). These tests read the app's
source (smart_app/src) and its committed build, in the normal run (without Node or a
browser), and hold:

- config.js to what is the app's own (its client id and scopes), with a scope for every
  resource type of the searches the service gives it;
- every value the app reads from the page to one the service writes, and every threshold
  it reads to one a card and the page send, and no threshold sent that it does not read;
- the source free of the service's code lists, statuses and factors (they come from the
  page) and of the card's wording (it comes in appContext), and the code kinds and
  condition categories it names to the service's;
- the condition code lists it bundles (imported from cds_service/valuesets) to the
  committed build, so a changed list fails here until the app is rebuilt
  (``bash scripts/build-trend-app.sh``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cds_service.datasources import BY_KEY
from cds_service.engine.findings import FINDING_CATEGORIES
from cds_service.engine.thresholds import RuleSettings
from cds_service.routes.trend_app import static_dir
from cds_service.trend_link import APP_SEARCHES, THRESHOLDS, app_context, reading_facts
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import ConditionCategory
from fhir_mappers.observations_careful import MappingOptions
from fhir_mappers.valuesets import ObservationKind

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "smart_app" / "src"
VALUESETS = ROOT / "cds_service" / "valuesets"
# The condition lists trend.js imports (the red flags and, without a card, the episode).
BUNDLED = ("conditions.json", "conditions-imaging.json")


def _source() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(SRC.glob("*.js")))


def _built() -> str:
    return (static_dir() / "app.js").read_text(encoding="utf-8")


def _facts() -> dict[str, Any]:
    options = MappingOptions(crp_molar_factor_nmol_per_mg=9.524)
    return reading_facts(load_value_sets(None), options, 5, RuleSettings())


def test_config_js_holds_only_what_is_the_apps_own() -> None:
    text = (SRC / "config.js").read_text(encoding="utf-8")
    assert set(re.findall(r"^export const (\w+)", text, re.M)) == {"CLIENT_ID", "SCOPES"}


def test_the_app_may_read_every_resource_it_searches() -> None:
    scopes = re.search(r"^export const SCOPES = '([^']*)';", _source(), re.M)
    assert scopes, "config.js exports no SCOPES"
    for key in APP_SEARCHES:
        assert f"patient/{BY_KEY[key].resource_type}.read" in scopes[1].split(), key


def test_what_the_app_reads_from_the_page_the_service_writes() -> None:
    read = set(re.findall(r"\bservice\??\.(\w+)", _source()))
    assert read, "the app reads nothing from the page's service: has app.js changed how?"
    assert read <= set(_facts()), read - set(_facts())


def test_the_app_reads_every_threshold_sent_and_only_those() -> None:
    """A card's thresholds (and the page's, without a card) are those the app draws with:
    every one it reads is sent, and none is sent that it does not read (appContext is
    kept small)."""
    read = set(re.findall(r"\bthresholds\.(\w+)", _source()))
    assert read, "the app reads no threshold: has trend.js changed how?"
    sent = set(app_context({}, "p", RuleSettings(), {})["thresholds"])
    assert sent == set(THRESHOLDS) == set(_facts()["thresholds"])
    assert read == sent, (read - sent, sent - read)


def test_the_source_holds_no_copy_of_the_code_lists_or_settings() -> None:
    source = _source()
    for _system, code in load_value_sets(None).observations:
        assert f"'{code}'" not in source and f'"{code}"' not in source, code
    for status in ("final", "amended", "corrected", "preliminary"):
        assert f"'{status}'" not in source, status
    assert "9.524" not in source
    assert "mg/dl" not in source.lower()


# Pieces of the card's wording the app once copied (rule names, recommendation titles,
# where T0 came from): it shows the card's own words now, sent in appContext
# (tests/cards/test_trend_app_words.py).
CARD_WORDING = (
    "not recommended",
    "imaging reasonable",
    "urgent imaging",
    "not enough data",
    "new neurologic deficit",
    "complication recorded",
    "pain worse",
    "infection recorded from",
    "taken as the treatment start",
    "antibiotic orders could not be read",
    "no antibiotic order",
    "no dated antibiotic order",
)


def test_the_source_says_the_decision_only_in_the_cards_words() -> None:
    source = _source().lower()
    copied = [words for words in CARD_WORDING if words in source]
    assert not copied, f"smart_app/src words the decision itself: {copied}"


def test_the_kinds_and_categories_the_app_names_are_the_services() -> None:
    source = (SRC / "trend.js").read_text(encoding="utf-8")
    kinds = set(re.findall(r"kind === '([\w-]+)'", source))
    assert kinds, "trend.js names no code kind: has it changed how it reads them?"
    assert kinds <= {k.value for k in ObservationKind}, kinds
    block = re.search(r"const RED_FLAG_CATEGORIES = \{(.*?)\};", source, re.S)
    assert block, "trend.js has no RED_FLAG_CATEGORIES"
    named = set(re.findall(r"^\s*'?([\w-]+)'?\s*:", block[1], re.M))
    # the findings the engine names as red flags (and as known at diagnosis)
    assert named == {c.value for c in FINDING_CATEGORIES}, named
    assert named <= {c.value for c in ConditionCategory}


@pytest.mark.parametrize("name", BUNDLED)
def test_the_build_bundles_the_condition_lists_as_they_are(name: str) -> None:
    """Each entry of a list trend.js imports is in the committed build: change a list and
    rebuild the app (tests/integration/test_trend_app_build.py compares the whole build,
    with Node)."""
    assert f"valuesets/{name}" in (SRC / "trend.js").read_text(encoding="utf-8")
    built = _built()
    entries = json.loads((VALUESETS / name).read_text(encoding="utf-8"))["entries"]
    assert entries
    for entry in entries:
        for field in ("system", "code", "category", "match"):
            assert json.dumps(entry[field]) in built, (name, entry)


def test_the_committed_build_reads_the_page_not_a_copy() -> None:
    """The build's app reads the page's searches: none of the service's queries is
    written into it."""
    built = _built()
    for query in _facts()["queries"].values():
        assert query not in built
