"""`spine-cds observation-codes --category`: one search per category, merged, for FHIR
servers that refuse a search by patient alone. An outside review read Epic's public
documentation as asking for the patient and a code or a category (to be confirmed with
the vendor), where the tool only searched ``Observation?patient=X&_count=200``. This
server answers as such a server would: 400 without a category."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from cds_service.cli import main
from tests.tools.scripted_fhir import Answer, ScriptedFhir, Seen, observation, outcome, searchset

LOINC = "http://loinc.org"
CRP = observation("crp-1", LOINC, "1988-5", "C reactive protein", "laboratory")
ESR = observation("esr-1", LOINC, "4537-7", "Erythrocyte sedimentation rate", "laboratory")
PAIN = observation("pain-1", LOINC, "72514-3", "Pain severity", "vital-signs")
# In both categories, so both searches find it: counted once.
BOTH = observation("both-1", "urn:oid:1.2.3", "LOC-7", "Local panel", "laboratory")
BY_CATEGORY = {"laboratory": [CRP, ESR, BOTH], "vital-signs": [PAIN, BOTH], "survey": []}


def needs_a_category(seen: Seen) -> Answer:
    categories = seen.query.get("category")
    if not categories:
        return Answer(400, outcome("error", "required", "Must specify category or code"))
    return Answer(body=searchset(*BY_CATEGORY.get(categories[0], [])))


def run(fhir: ScriptedFhir, *extra: str) -> Any:
    args = ["observation-codes", "--fhir-server", fhir.base_url, "--patient", "p1", *extra]
    return CliRunner().invoke(main, args, env={"FHIR_ACCESS_TOKEN": None})


def said(result: Any) -> str:
    return " ".join(result.output.split())


def test_a_refused_search_by_patient_alone_suggests_categories() -> None:
    with ScriptedFhir(needs_a_category) as fhir:
        result = run(fhir)
    assert result.exit_code == 3, result.output
    assert "failed (400): Must specify category or code" in said(result)
    assert "try --category laboratory --category vital-signs" in said(result)


def test_each_category_is_searched_and_the_results_merged() -> None:
    with ScriptedFhir(needs_a_category) as fhir:
        result = run(fhir, "--category", "laboratory", "--category", "vital-signs", "--json")
        seen = fhir.seen
    assert result.exit_code == 0, result.output
    assert [s.query.get("category") for s in seen] == [["laboratory"], ["vital-signs"]]
    assert all(s.query["patient"] == ["p1"] and s.query["_count"] == ["200"] for s in seen)
    data = json.loads(result.stdout)
    assert data["observations"] == 4 and data["categories"] == ["laboratory", "vital-signs"]
    counts = {c["code"]: c["count"] for c in data["codes"]}
    assert counts == {"1988-5": 1, "4537-7": 1, "72514-3": 1, "LOC-7": 1}


def test_a_category_given_twice_is_searched_once() -> None:
    with ScriptedFhir(needs_a_category) as fhir:
        result = run(fhir, "--category", "laboratory", "--category", " laboratory")
        seen = fhir.seen
    assert result.exit_code == 0, result.output
    assert len(seen) == 1


def test_a_refused_search_with_a_category_does_not_suggest_one() -> None:
    def refuse(seen: Seen) -> Answer:
        return Answer(400, outcome("error", "not-supported", "unknown category"))

    with ScriptedFhir(refuse) as fhir:
        result = run(fhir, "--category", "laboratory")
    assert result.exit_code == 3, result.output
    assert "in category 'laboratory' failed (400)" in said(result)
    assert "try --category" not in said(result)


def test_no_observation_in_the_categories_names_them() -> None:
    with ScriptedFhir(needs_a_category) as fhir:
        result = run(fhir, "--category", "survey")
    assert result.exit_code == 5, result.output
    assert (
        "no Observations found for patient 'p1' in the categories searched (survey): check "
        "the id, the categories, or the token's scope" in said(result)
    )


def test_an_empty_category_is_a_usage_error() -> None:
    with ScriptedFhir(needs_a_category) as fhir:
        result = run(fhir, "--category", " ")
        seen = fhir.seen
    assert result.exit_code == 2, result.output
    assert "a category may not be empty" in result.output and seen == []
