"""Immunosuppression (clinical-rules.md, "Imaging", 2026-12-06): a site-extendable value
set whose active, valid Conditions, whatever their date, block advise-against; the
insufficient-data card names the reason and offers the override "Immunocompromised host
/ atypical organism". Codes go through the shipped value sets."""

from __future__ import annotations

import pytest

from cds_service.cards import CardContext, render_response
from cds_service.cards.context import load_override_reasons
from cds_service.engine import Recommendation
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import ConditionCategory
from tests.engine.builders import ICD10, condition, improving, nvo, run

VS = load_value_sets()
CTX = CardContext(patient_id="p1", override_reasons=load_override_reasons())
OVERRIDE = "Immunocompromised host / atypical organism"


@pytest.mark.parametrize("code", ["Z94.0", "Z94.81", "D70.1", "D84.821", "D84.9", "B20", "Z79.52"])
def test_each_default_code_blocks_advise_against_and_names_the_reason(code: str) -> None:
    entry = VS.condition_entry(ICD10, code)
    assert entry is not None and entry.category is ConditionCategory.IMMUNOSUPPRESSION
    host = condition(code, entry.category, onset=-2000, name=entry.name)
    a = run(improving(), [nvo(), host])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "immunocompromised"]
    assert remark.data["conditions"][0]["name"] == entry.name
    card = render_response(a, CTX)["cards"][0]
    assert OVERRIDE in [r["display"] for r in card["overrideReasons"]]
    assert "Immunosuppression recorded" in card["detail"]


@pytest.mark.parametrize("code", ["370388006", "370391006", "62479008"])
def test_the_confirmed_snomed_concepts_are_immunosuppression(code: str) -> None:
    entry = VS.condition_entry("http://snomed.info/sct", code)
    assert entry is not None and entry.category is ConditionCategory.IMMUNOSUPPRESSION
    a = run(improving(), [nvo(), condition(code, entry.category, onset=-2000, name=entry.name)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA


@pytest.mark.parametrize("code", ["Z79.51", "Z79.899", "D69.6"])
def test_near_codes_are_not_immunosuppression(code: str) -> None:
    entry = VS.condition_entry(ICD10, code)
    assert entry is None or entry.category is not ConditionCategory.IMMUNOSUPPRESSION


@pytest.mark.parametrize(
    ("clinical", "verification"), [("resolved", "confirmed"), ("active", "refuted")]
)
def test_an_inactive_or_refuted_entry_does_not_count(clinical: str, verification: str) -> None:
    host = condition(
        "Z94.0",
        ConditionCategory.IMMUNOSUPPRESSION,
        onset=-2000,
        clinical=clinical,
        verification=verification,
    )
    a = run(improving(), [nvo(), host])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    card = render_response(a, CTX)["cards"][0]
    assert OVERRIDE not in [r["display"] for r in card["overrideReasons"]]
