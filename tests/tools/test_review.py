"""`spine-cds review-examples`, and the local prefetch it builds requests with."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.discovery import load_discovery
from cds_service.ehr_requests import bundle_resources, local_prefetch, search_local
from cds_service.examples import example_keys, load_examples

ORDER_DATE = date(2026, 3, 2)
LOINC = "http://loinc.org"
SELECT_ID = "spine-imaging-followup-select"


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_review_lists_every_example_with_its_expected_decision_and_no_mismatch() -> None:
    result = run("review-examples", "--date", ORDER_DATE.isoformat())
    assert result.exit_code == 0, result.output
    assert "MISMATCH" not in result.output
    examples = load_examples(ORDER_DATE)
    starts = [result.output.index(f"\n{e.key}  ") for e in examples]
    blocks = [result.output[a:b] for a, b in zip(starts, [*starts[1:], None], strict=True)]
    for example, block in zip(examples, blocks, strict=True):
        assert example.patient_id in block
        assert f"expected   {example.expected}" in block
        assert f"actual     {example.expected}" in block
        assert "[ok]" in block
        if example.expected == "no-card":
            assert "card       (none" in block
            continue
        # the whole card as a clinician sees it, markdown rendered as text
        for part in ("summary    ", "indicator  ", "detail", "override reasons", "Sources:"):
            assert part in block, (example.key, part)
        assert "**" not in block and "|---" not in block and "](http" not in block
    advise = blocks[[e.key for e in examples].index("e01-improving")]
    assert "suggestions\n    * Remove the spine MRI order (recommended)" in advise
    assert "Would change this advice:" in advise
    assert "2026-02-01  0    142       baseline" in advise  # the CRP table, aligned


def test_review_json_gives_rules_and_key_figures_per_example() -> None:
    result = run("review-examples", "--date", ORDER_DATE.isoformat(), "--json")
    assert result.exit_code == 0, result.output
    review = json.loads(result.output)
    assert review["orderDate"] == ORDER_DATE.isoformat()
    rows = {row["key"]: row for row in review["examples"]}
    assert list(rows) == example_keys()
    assert all(row["match"] and row["actual"] == row["expected"] for row in rows.values())
    # E1 (example-scenarios.md): CRP 142 -> 18 mg/L from day 0 to day 28, order on day 29.
    e1 = rows["e01-improving"]
    assert e1["rulesFired"] == ["advise-against"]
    assert e1["daysSinceT0"] == 29
    assert (e1["crp"]["baseline"]["value"], e1["crp"]["latest"]["value"]) == (142, 18)
    assert e1["crp"]["percentChange"] == pytest.approx(-87.323944)
    assert (e1["pain"]["first"]["value"], e1["pain"]["latest"]["value"]) == (8, 3)
    assert e1["indicator"] == "warning" and e1["summary"]
    assert rows["e02-cauda-equina"]["rulesFired"][0] == "neuro"
    assert "crp" not in rows["e07-resolved"] and "summary" not in rows["e07-resolved"]


def test_review_flags_a_changed_decision_loudly_and_fails(tmp_path: Path) -> None:
    # A site that demands a 95% CRP fall before advising against imaging: E1 (-87%) no
    # longer qualifies, and the reviewer must be told.
    config = tmp_path / "site.toml"
    config.write_text("[rules]\nplateau_min_fall_pct = 95.0\n", encoding="utf-8")
    result = run("review-examples", "--date", ORDER_DATE.isoformat(), "--config", str(config))
    assert result.exit_code == 1
    e1_block = next(b for b in result.output.split("\n\n") if b.startswith("e01-improving"))
    assert "[MISMATCH]" in e1_block
    assert "actual     advise-against" not in e1_block
    assert "MISMATCH in" in result.output and "e01-improving" in result.output.splitlines()[-1]


def test_review_defaults_to_orders_placed_today() -> None:
    result = run("review-examples", "--json")
    assert result.exit_code == 0, result.output
    review = json.loads(result.output)
    assert review["orderDate"] == date.today().isoformat()
    assert {row["orderDate"][:10] for row in review["examples"]} == {date.today().isoformat()}


# --- the local prefetch (pure) ------------------------------------------------------------


def observation(rid: str, patient: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def test_local_prefetch_filters_by_patient_type_and_code_as_the_templates_ask() -> None:
    templates = load_discovery().services[SELECT_ID].prefetch
    resources = [
        observation("crp-mass", "p1", "1988-5"),
        observation("crp-hs", "p1", "30522-7"),
        observation("esr", "p1", "4537-7"),
        observation("pain", "p1", "72514-3"),
        observation("glucose", "p1", "2345-7"),  # asked for by no template
        observation("other-patient-crp", "p2", "1988-5"),
        {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}},
        {"resourceType": "Patient", "id": "p1"},
    ]
    prefetch = local_prefetch(templates, {"patientId": "p1"}, resources)
    assert set(prefetch) == set(templates)

    def ids(key: str) -> list[str]:
        bundle = prefetch[key]
        assert bundle["type"] == "searchset" and bundle["total"] == len(bundle["entry"])
        return [e["resource"]["id"] for e in bundle["entry"]]

    assert ids("crp") == ["crp-mass", "crp-hs"]
    assert ids("esr") == ["esr"]
    assert ids("pain") == ["pain"]
    assert ids("conditions") == ["c1"]


def test_local_prefetch_of_an_example_holds_exactly_its_observations() -> None:
    templates = load_discovery().services[SELECT_ID].prefetch
    example = load_examples(ORDER_DATE)[0]
    resources = bundle_resources(example.bundle)
    prefetch = local_prefetch(templates, {"patientId": example.patient_id}, resources)
    patient = prefetch.pop("patient")  # a read: the Patient itself, for its birthDate
    assert patient is not None and patient["id"] == example.patient_id
    sent = sorted(e["resource"]["id"] for b in prefetch.values() for e in b["entry"])
    held = sorted(r["id"] for r in resources if r["resourceType"] in {"Observation", "Condition"})
    assert sent == held


def test_local_search_reads_and_token_forms() -> None:
    resources = [observation("a", "p1", "1988-5"), {"resourceType": "Patient", "id": "p1"}]
    assert search_local("Patient/p1", resources) == {"resourceType": "Patient", "id": "p1"}
    assert search_local("Patient/p2", resources) is None
    for token in ("1988-5", f"{LOINC}|1988-5", f"{LOINC}|"):
        bundle = search_local(f"Observation?code={token}", resources)
        assert bundle is not None and bundle["total"] == 1, token
    for token in ("|1988-5", "http://snomed.info/sct|1988-5", f"{LOINC}|4537-7"):
        bundle = search_local(f"Observation?code={token}", resources)
        assert bundle is not None and bundle["total"] == 0, token


def test_local_prefetch_refuses_what_it_does_not_understand() -> None:
    with pytest.raises(ValueError, match="date"):
        local_prefetch(
            {"x": "Observation?patient={{context.patientId}}&date=ge2026"}, {"patientId": "p"}, []
        )
    with pytest.raises(ValueError, match="encounterId"):
        local_prefetch({"x": "Encounter/{{context.encounterId}}"}, {"patientId": "p"}, [])
