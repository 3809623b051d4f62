"""The data-source table (cds_service/datasources.py) and hooks.json held together.

- hooks.json's prefetch keys and queries are the table's: a renamed, missing or extra
  key stops the service at start-up with a message naming it;
- a code a site adds through ``valueset_dir`` is asked for, in the discovery document
  the EHR prefetches by and in the service's own fetch from a real FHIR server.
"""

from __future__ import annotations

import ast
import json
from datetime import date
from pathlib import Path
from typing import Any, get_args

import pytest

from cds_service.app import create_app
from cds_service.cards.completeness_phrases import KIND_WORDS
from cds_service.cards.phrasebook import phrase
from cds_service.datasources import BY_KEY, SOURCES, Feeds, served_prefetch
from cds_service.engine import sources as engine_sources
from cds_service.engine.read_gaps import cut_off_note
from cds_service.examples import load_example
from cds_service.invocation import handle_hook
from cds_service.runtime import build_runtime
from cds_service.valuesets import load_value_sets
from spine_cds_dev.fhir_server import FhirTestServer
from tests.builders import SELECT_ID
from tests.conftest import make_settings
from tests.support.ehr_calls import order_request

HOOKS = Path(__file__).resolve().parents[2] / "hooks.json"
SITE_SYSTEM = "https://hospital.example/fhir/CodeSystem/lab"  # a synthetic local code system
SITE_ESR = {
    "valueSet": "observations",
    "source": "a site's own laboratory codes (synthetic, for this test)",
    "entries": [{"system": SITE_SYSTEM, "code": "ESR-W", "kind": "esr", "verified": False}],
}
TOKEN = "ehr-issued-token-datasources"  # synthetic


def hooks_with(change: Any, tmp_path: Path) -> Path:
    document = json.loads(HOOKS.read_text("utf-8"))
    for service in document["services"]:
        change(service["prefetch"])
    path = tmp_path / "hooks.json"
    path.write_text(json.dumps(document), "utf-8")
    return path


def test_hooks_json_holds_exactly_the_tables_queries() -> None:
    expected = served_prefetch(load_value_sets(None))
    assert list(expected) == [s.key for s in SOURCES]
    for service in json.loads(HOOKS.read_text("utf-8"))["services"]:
        assert service["prefetch"] == expected


def test_a_renamed_prefetch_key_stops_the_service_naming_it(tmp_path: Path) -> None:
    def rename(prefetch: dict[str, str]) -> None:
        prefetch["crp_values"] = prefetch.pop("crp")

    path = hooks_with(rename, tmp_path)
    with pytest.raises(ValueError) as raised:
        build_runtime(make_settings(tmp_path, hooks_file=str(path)))
    message = str(raised.value)
    assert "has no prefetch key crp" in message
    assert "prefetch key crp_values that no data source reads" in message


def test_a_changed_query_stops_the_service_naming_both(tmp_path: Path) -> None:
    def narrow(prefetch: dict[str, str]) -> None:
        prefetch["esr"] = prefetch["esr"].replace("&_count=100", "&_count=5")

    with pytest.raises(ValueError, match=r"prefetch 'esr' is .*_count=5.*the data source reads"):
        build_runtime(make_settings(tmp_path, hooks_file=str(hooks_with(narrow, tmp_path))))


def test_a_missing_antibiotics_key_stops_the_service(tmp_path: Path) -> None:
    path = hooks_with(lambda prefetch: prefetch.pop("antibiotics"), tmp_path)
    with pytest.raises(ValueError, match="has no prefetch key antibiotics"):
        build_runtime(make_settings(tmp_path, hooks_file=str(path)))


def site_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "valuesets"
    folder.mkdir()
    (folder / "site-esr.json").write_text(json.dumps(SITE_ESR), "utf-8")
    return folder


def test_a_site_code_is_in_the_discovery_document_the_ehr_prefetches_by(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, valueset_dir=str(site_dir(tmp_path)))
    app = create_app(settings)
    discovery = app.test_client().get("/cds-services").get_json()
    for service in discovery["services"]:
        assert f"{SITE_SYSTEM}|ESR-W" in service["prefetch"]["esr"]
        assert "http://loinc.org|4537-7" in service["prefetch"]["esr"]
    shipped = create_app(make_settings(tmp_path / "plain")).test_client().get("/cds-services")
    assert SITE_SYSTEM not in json.dumps(shipped.get_json())


@pytest.mark.integration
def test_a_site_code_is_fetched_from_the_fhir_server_and_counted(tmp_path: Path) -> None:
    example = load_example("e01-improving", date(2026, 11, 30))
    local_esr = {
        "resourceType": "Observation",
        "id": "spine-cds-e1-esr-local",
        "status": "final",
        "code": {"coding": [{"system": SITE_SYSTEM, "code": "ESR-W"}], "text": "ESR"},
        "subject": {"reference": f"Patient/{example.patient_id}"},
        "effectiveDateTime": "2026-11-28T08:00:00+01:00",
        "valueQuantity": {"value": 33, "unit": "mm/h", "code": "mm/h"},
    }
    bundle = dict(example.bundle)
    bundle["entry"] = [
        *example.bundle["entry"],
        {
            "resource": local_esr,
            "request": {"method": "PUT", "url": "Observation/spine-cds-e1-esr-local"},
        },
    ]
    runtime = build_runtime(make_settings(tmp_path, valueset_dir=str(site_dir(tmp_path))))
    try:
        with FhirTestServer(token=TOKEN) as fhir:
            fhir.load_bundle(bundle)
            request = order_request(
                "order-select",
                example.patient_id,
                example.draft_order,
                fhir_server=fhir.base_url,
                access_token=TOKEN,
            )
            outcome = handle_hook(runtime, SELECT_ID, request)
    finally:
        runtime.close()
    assert outcome.data_sources["esr"] == "fetched"
    assert outcome.assessment is not None
    assert 33 in [m.value for m in outcome.assessment.esr]


def test_every_source_has_words_on_a_card() -> None:
    """A search cut off or failed in part is named on the card by what it returns, never
    by its prefetch key ("Some imaging_reports ... could not be read")."""
    assert set(KIND_WORDS) == set(BY_KEY)


def test_the_keys_the_engine_names_are_sources() -> None:
    assert engine_sources.KEYS <= set(BY_KEY)
    named = {v for k, v in vars(engine_sources).items() if k.isupper() and isinstance(v, str)}
    assert named == engine_sources.KEYS


def test_a_cut_off_of_new_sources_is_worded_in_the_cards_order() -> None:
    note = cut_off_note(frozenset({"imaging_reports", "procedures", "crp"}))
    said = phrase(note)
    assert said.message.startswith(
        "Some CRP results, procedures and diagnostic reports could not be read"
    )
    assert "imaging_reports" not in said.message


def _feeds_read(module: Path) -> set[str]:
    """The string arguments of the calls that take a source's resources to a mapper."""
    return {
        node.args[0].value
        for node in ast.walk(ast.parse(module.read_text("utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("own", "keys_feeding")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_every_feeds_value_is_read_by_a_mapper() -> None:
    """A row whose ``feeds`` no mapper call names would be fetched, checked against
    hooks.json and never mapped, without an error."""
    service = Path(__file__).resolve().parents[2] / "cds_service"
    read = _feeds_read(service / "invocation.py") | _feeds_read(service / "patient_reads.py")
    assert {s.feeds for s in SOURCES} == set(get_args(Feeds)) == read
