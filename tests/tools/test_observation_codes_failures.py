"""`spine-cds observation-codes` never calls a failed or empty search an all clear. An
outside review had a 200 OperationOutcome, a searchset holding only a fatal one, and a
mistyped patient id (zero Observations) each print "0 Observations ... No code that names
CRP, ESR or pain is left unread." and exit 0."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from cds_service.cli import main
from tests.tools.scripted_fhir import Answer, ScriptedFhir, Seen, observation, outcome, searchset

LOINC = "http://loinc.org"
ALL_CLEAR = "No code that names CRP, ESR or pain is left unread."
CRP = observation("o1", LOINC, "1988-5", "C reactive protein")


def run(answer: Any, *extra: str, patients: tuple[str, ...] = ("p1",)) -> Any:
    with ScriptedFhir(lambda seen: answer(seen) if callable(answer) else answer) as fhir:
        args = ["observation-codes", "--fhir-server", fhir.base_url, *extra]
        for patient in patients:
            args += ["--patient", patient]
        return CliRunner().invoke(main, args, env={"FHIR_ACCESS_TOKEN": None})


def said(result: Any) -> str:
    return " ".join(result.output.split())


def test_a_200_operation_outcome_is_a_failed_search_naming_its_issue_code() -> None:
    result = run(Answer(body=outcome("error", "too-costly", "too many results")))
    assert result.exit_code == 3, result.output
    assert "answered 200 with an OperationOutcome, not a search Bundle" in said(result)
    assert "(issue code too-costly)" in said(result) and "too many results" in said(result)
    assert ALL_CLEAR not in result.output


def test_an_issue_code_that_is_no_fhir_issue_type_is_not_named_as_one() -> None:
    result = run(Answer(body=outcome("error", "john-smith", "refused")))
    assert result.exit_code == 3, result.output
    assert "issue code" not in result.output


def test_a_searchset_holding_only_a_fatal_outcome_is_a_failed_search() -> None:
    failed = outcome("fatal", "required", "A required parameter is missing: category")
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": failed, "search": {"mode": "outcome"}}],
    }
    result = run(Answer(body=bundle))
    assert result.exit_code == 3, result.output
    assert "holding only an OperationOutcome of severity error or fatal" in said(result)
    assert "(issue code required)" in said(result)
    assert ALL_CLEAR not in result.output


def test_an_error_outcome_beside_results_is_a_warning_not_an_all_clear() -> None:
    bundle = searchset(CRP)
    bundle["entry"].append(
        {"resource": outcome("error", "too-costly", "cut"), "search": {"mode": "outcome"}}
    )
    result = run(Answer(body=bundle))
    assert result.exit_code == 0, result.output
    assert "failed in part" in said(result) and "(issue code too-costly)" in said(result)
    assert ALL_CLEAR not in result.output and "not an all clear" in said(result)


def test_a_resource_that_is_no_search_bundle_is_a_failed_search() -> None:
    result = run(Answer(body={"resourceType": "Patient", "id": "p1"}))
    assert result.exit_code == 3, result.output
    assert "a Patient where a search Bundle was expected" in said(result)


def test_no_observations_is_a_warning_and_exit_5_not_an_all_clear() -> None:
    result = run(Answer(body=searchset()), patients=("p-typo",))
    assert result.exit_code == 5, result.output
    assert "no Observations found for patient 'p-typo': check the id, or the token's scope" in said(
        result
    )
    assert ALL_CLEAR not in result.output and "not an all clear" in said(result)


def test_one_patient_without_observations_among_several_still_is_no_all_clear() -> None:
    def answer(seen: Seen) -> Answer:
        return Answer(body=searchset(CRP) if seen.query["patient"] == ["p1"] else searchset())

    result = run(answer, patients=("p1", "p-typo"))
    assert result.exit_code == 5, result.output
    assert "no Observations found for patient 'p-typo'" in said(result)
    assert "'p1'" not in result.output
    assert ALL_CLEAR not in result.output and "1 patient(s) had none" in said(result)


def test_the_json_names_them_and_the_warning_goes_to_stderr() -> None:
    result = run(Answer(body=searchset()), "--json", patients=("p-typo",))
    assert result.exit_code == 5, result.output
    data = json.loads(result.stdout)
    assert data["observations"] == 0 and data["patientsWithoutObservations"] == ["p-typo"]
    assert data["warnings"][0].startswith("no Observations found for patient 'p-typo'")
    assert "Warning: no Observations found for patient 'p-typo'" in result.stderr


def test_a_patient_with_observations_is_all_clear_and_exits_0() -> None:
    result = run(Answer(body=searchset(CRP)))
    assert result.exit_code == 0, result.output
    assert ALL_CLEAR in result.output and "Warning" not in result.output
