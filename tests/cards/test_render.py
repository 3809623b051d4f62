"""Cards, suggestions, ratings and the machine-readable result rendered from Assessments."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.cards import ASSESSMENT_KEY, CardContext, load_override_reasons, render_response
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from fhir_mappers.model import ConditionCategory, Modality, PatientData
from tests.cards.test_review_wording import card as rendered
from tests.engine.builders import (
    PATIENT,
    complication,
    condition,
    crp,
    esr,
    improving,
    mimic,
    neuro,
    nvo,
    order,
    pain,
    run,
)
from tests.support.conformance import assert_conformant_response, find_empty_values

CTX = CardContext(patient_id=PATIENT, override_reasons=load_override_reasons())
PAMA = "http://fhir.org/argonaut/Extension/pama-rating"


def scenario(rec: Recommendation) -> Assessment:
    if rec is Recommendation.ADVISE_AGAINST:
        return run(improving())
    if rec is Recommendation.SUPPORT:
        return run([crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(28, 6)])
    if rec is Recommendation.SUPPORT_URGENT:
        return run(improving(), [nvo(), neuro(onset=26)], order_day=27)
    if rec is Recommendation.INSUFFICIENT_DATA:
        return run([crp(28, 25), pain(28, 4)], order_day=28)
    return run(improving(), orders=[])


ALL = [
    Recommendation.ADVISE_AGAINST,
    Recommendation.SUPPORT,
    Recommendation.SUPPORT_URGENT,
    Recommendation.INSUFFICIENT_DATA,
]


def only_card(response: dict[str, Any]) -> dict[str, Any]:
    assert len(response["cards"]) == 1
    card: dict[str, Any] = response["cards"][0]
    return card


@pytest.mark.parametrize("rec", ALL)
def test_every_response_conforms_and_has_no_empty_values(rec: Recommendation) -> None:
    a = scenario(rec)
    assert a.recommendation is rec
    response = render_response(a, CTX)
    assert_conformant_response(response)
    assert len(only_card(response)["summary"]) < 140


@pytest.mark.parametrize(
    ("rec", "indicator"),
    [
        (Recommendation.ADVISE_AGAINST, "warning"),
        (Recommendation.SUPPORT, "info"),
        (Recommendation.SUPPORT_URGENT, "critical"),
        (Recommendation.INSUFFICIENT_DATA, "info"),
    ],
)
def test_indicator_per_recommendation(rec: Recommendation, indicator: str) -> None:
    assert only_card(render_response(scenario(rec), CTX))["indicator"] == indicator


def test_not_applicable_gives_no_card_and_nothing_else() -> None:
    assert render_response(scenario(Recommendation.NOT_APPLICABLE), CTX) == {"cards": []}


def test_summary_stays_short_with_every_red_flag_and_long_displays() -> None:
    long = "x" * 200
    a = run(
        [crp(0, 100), crp(28, 95), pain(0, 3), pain(28, 6)],
        [
            nvo(verification="provisional", display=long),
            complication(onset=5, display=long),
            mimic(display=long),
        ],
    )
    assert a.recommendation is Recommendation.SUPPORT
    response = render_response(a, CTX)
    assert_conformant_response(response)
    assert len(only_card(response)["summary"]) < 140


def test_insufficient_summary_stays_short_with_every_gap() -> None:
    a = run([], [nvo()], order_day=10)
    card = only_card(render_response(a, CTX))
    assert len(card["summary"]) < 140
    assert "no CRP" in card["summary"]


def test_advise_against_card_content() -> None:
    response = render_response(scenario(Recommendation.ADVISE_AGAINST), CTX)
    card = only_card(response)
    assert card["summary"].startswith("Routine repeat spine MRI not recommended: improving")
    detail = card["detail"]
    for text in ("2024-03-04", "2024-03-18", "2024-04-01", "142", "61", "18", "\u221287.3%"):
        assert text in detail
    assert "Pain (0-10): 8 (day 0)" in detail and "3 (day 28)" in detail
    assert "latest CRP 1 day ago" in detail
    assert "doi.org/10.1093/cid/civ482" in detail
    assert card["source"]["url"] == "https://doi.org/10.1093/cid/civ482"
    codes = {r["code"] for r in card["overrideReasons"]}
    assert "surgical-planning" in codes and "requested-by-specialist" in codes
    system = load_override_reasons()[0].system
    assert all(r["system"] == system and r["display"] for r in card["overrideReasons"])


def test_advise_against_suggests_removing_the_order_alone() -> None:
    """The latest CRP is recent (advise-against needs that), so no new CRP is asked for."""
    card = only_card(render_response(scenario(Recommendation.ADVISE_AGAINST), CTX))
    assert card["selectionBehavior"] == "at-most-one"
    (suggestion,) = card["suggestions"]
    assert suggestion["label"] == "Remove the spine MRI order"
    assert suggestion["isRecommended"] is True
    assert [(x["type"], x["resourceId"]) for x in suggestion["actions"]] == [
        ("delete", "ServiceRequest/sr1")
    ]


def test_insufficient_data_with_a_stale_crp_suggests_ordering_markers() -> None:
    a = run([crp(0, 140), crp(14, 60), pain(0, 8), pain(28, 3)], order_day=29)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    card = only_card(render_response(a, CTX))
    assert "Latest CRP 15 days old: repeat CRP before deciding on imaging." in card["detail"]
    assert "latest CRP 15 days old" in card["summary"]
    actions = [x for s in card["suggestions"] for x in s["actions"]]
    creates = [x["resource"] for x in actions if x["type"] == "create"]
    assert sorted(r["code"]["coding"][0]["code"] for r in creates) == ["1988-5", "4537-7"]
    for r in creates:
        assert r["resourceType"] == "ServiceRequest"
        assert (r["status"], r["intent"]) == ("draft", "order")
        assert r["code"]["coding"][0]["system"] == "http://loinc.org"
        assert r["subject"] == {"reference": f"Patient/{PATIENT}"}


def test_insufficient_data_with_a_crp_drawn_today_asks_for_no_new_crp_and_no_rating() -> None:
    response = render_response(scenario(Recommendation.INSUFFICIENT_DATA), CTX)
    card = only_card(response)
    assert "systemActions" not in response and "extension" not in response
    assert "suggestions" not in card  # the only CRP was drawn today: nothing to order now
    assert (
        "One CRP only (25 mg/L on day 28): repeat it at the next weekly check" in (card["detail"])
    )
    assert "baseline" not in card["detail"]  # a day-28 value is no baseline


@pytest.mark.parametrize(
    ("rec", "rating"),
    [
        (Recommendation.ADVISE_AGAINST, "not-appropriate"),
        (Recommendation.SUPPORT, "appropriate"),
        (Recommendation.SUPPORT_URGENT, "appropriate"),
    ],
)
def test_rating_is_in_both_system_action_places(rec: Recommendation, rating: str) -> None:
    response = render_response(scenario(rec), CTX)
    card = only_card(response)
    assert response["systemActions"] == response["extension"]["systemActions"]
    (action,) = response["systemActions"]
    assert action["type"] == "update"
    resource = action["resource"]
    assert resource["resourceType"] == "ServiceRequest" and resource["id"] == "sr1"
    assert resource["code"]["coding"][0]["code"] == "72158"  # the whole draft, not a stub
    ext = {e["url"]: e for e in resource["extension"]}
    assert ext[PAMA]["valueCodeableConcept"]["coding"][0] == {
        "system": "http://fhir.org/argonaut/CodeSystem/pama-rating",
        "code": rating,
    }
    assert ext[PAMA + "-consult-id"]["valueUri"] == f"urn:uuid:{card['uuid']}"
    assert ext[PAMA + "-qcdsm-consulted"]["valueString"]


def test_rating_replaces_earlier_pama_extensions_and_keeps_others() -> None:
    other = {"url": "https://example.org/ext", "valueString": "kept"}
    stale = {"url": PAMA, "valueCodeableConcept": {"coding": [{"code": "no-criteria-apply"}]}}
    a = run(improving(), orders=[order(29, extension=[other, stale])])
    resource = render_response(a, CTX)["systemActions"][0]["resource"]
    urls = [e["url"] for e in resource["extension"]]
    assert urls.count(PAMA) == 1 and other in resource["extension"]
    assert a.orders[0].resource["extension"] == [other, stale]  # the input is not modified


def test_empty_values_in_the_draft_are_not_echoed() -> None:
    o = order(29)
    o.resource["reasonCode"] = []
    o.resource["note"] = [{"text": ""}]
    response = render_response(run(improving(), orders=[o]), CTX)
    assert find_empty_values(response) == []


def test_several_spine_orders_get_one_card() -> None:
    orders = [
        order(29, ref="ServiceRequest/mri"),
        order(29, ref="ServiceRequest/ct", modality=Modality.CT, code="72131"),
    ]
    response = render_response(run(improving(), orders=orders), CTX)
    card = only_card(response)
    assert_conformant_response(response)
    assert "MRI/CT" in card["summary"]
    assert len(response["systemActions"]) == 2
    deletes = {
        x["resourceId"] for s in card["suggestions"] for x in s["actions"] if x["type"] == "delete"
    }
    assert deletes == {"ServiceRequest/mri", "ServiceRequest/ct"}


def test_machine_readable_result() -> None:
    card = only_card(render_response(scenario(Recommendation.ADVISE_AGAINST), CTX))
    result = card["extension"][ASSESSMENT_KEY]
    assert list(card["extension"]) == [ASSESSMENT_KEY]
    assert result["recommendation"] == "advise-against"
    assert [r["id"] for r in result["rulesFired"]] == ["advise-against"]
    assert result["rulesFired"][0]["data"]["fallPct"] == 87.323944  # not rounded onto 87.3
    assert result["crp"]["baseline"] == {
        "value": 142,
        "unit": "mg/L",
        "date": "2024-03-04",
        "reference": result["crp"]["baseline"]["reference"],
        "day": 0,
    }
    assert result["crp"]["latest"]["date"] == "2024-04-01"
    assert result["crp"]["percentChange"] == -87.323944
    assert result["daysSinceT0"] == 29
    assert [result["pain"][k]["value"] for k in ("first", "lowest", "latest")] == [8, 3, 3]
    assert json.loads(json.dumps(result)) == result


def test_red_flag_result_names_the_rule_and_its_data() -> None:
    card = only_card(render_response(scenario(Recommendation.SUPPORT_URGENT), CTX))
    result = card["extension"][ASSESSMENT_KEY]
    (fired,) = result["rulesFired"]
    assert fired["id"] == "neuro"
    assert fired["data"]["conditions"][0]["codes"][0]["code"] == "G83.4"
    assert "cauda equina syndrome (day 26)" in card["detail"]
    assert card["summary"] == (
        "New cauda equina syndrome (day 26): emergency MRI of the whole spine with "
        "gadolinium now; urgent spine surgery review"
    )


def test_comparator_is_marked_in_the_card() -> None:
    a = run([crp(0, 100), crp(28, 5, comparator="<"), pain(0, 5), pain(28, 2)])
    card = only_card(render_response(a, CTX))
    # under the normal limit: read as normal, not "at its limit" (no plateau or rise from it)
    assert "CRP reported below a limit (<5 mg/L on" in card["detail"]
    assert "is read as within the normal range: no plateau or rise" in card["detail"]
    assert "counted at the limit" not in card["detail"]
    a = run([crp(0, 100), crp(14, 60), crp(28, 12, comparator="<"), pain(0, 5), pain(28, 2)])
    card = only_card(render_response(a, CTX))
    assert "CRP reported as a limit (<12 mg/L on" in card["detail"]
    assert "is counted at the limit" in card["detail"]


def test_converted_unit_is_shown_with_the_original() -> None:
    a = run(
        [
            crp(0, 140, original_value=14.0, original_unit="mg/dL"),
            crp(28, 12),
            pain(0, 5),
            pain(28, 2),
        ]
    )
    assert "reported 14 mg/dL" in only_card(render_response(a, CTX))["detail"]


def test_same_decision_gets_the_same_card_across_calls() -> None:
    # order-select then order-sign: orders without authoredOn, evaluated at different times
    # of the same day, data objects rebuilt. Same decision -> same uuid and wording.
    def call(hour: int) -> dict[str, Any]:
        data = PatientData((nvo(ref="Condition/e"),), tuple(_stable_measurements()))
        now = datetime(2024, 4, 2, hour, tzinfo=UTC)
        return render_response(assess([order(None)], data, RuleSettings(), now), CTX)

    first, second = call(9), call(17)
    assert only_card(first)["uuid"] == only_card(second)["uuid"]
    assert first == second


def test_a_different_decision_gets_a_different_uuid() -> None:
    a = render_response(scenario(Recommendation.ADVISE_AGAINST), CTX)
    b = render_response(run([*improving(), crp(29, 17)]), CTX)
    # the same figures on another patient's records (each scenario's have their own ids)
    c = render_response(scenario(Recommendation.ADVISE_AGAINST), CTX)
    uuids = {only_card(r)["uuid"] for r in (a, b, c)}
    assert len(uuids) == 3


def test_the_card_uuid_is_not_made_from_the_patient_id() -> None:
    """An audit row keeps the card uuid beside what it was made from and a keyed hash of
    the patient id: a uuid over the id too let a review find the patient by trying ids."""
    a = scenario(Recommendation.ADVISE_AGAINST)
    other = CardContext(patient_id="12824066", override_reasons=CTX.override_reasons)
    assert (
        only_card(render_response(a, CTX))["uuid"] == only_card(render_response(a, other))["uuid"]
    )


def test_esr_note_cites_its_source() -> None:
    data = [crp(0, 140), crp(28, 18), pain(0, 8), pain(28, 3)]
    from tests.engine.builders import esr

    a = run([*data, esr(0, 40), esr(28, 70)])
    detail = only_card(render_response(a, CTX))["detail"]
    assert "ESR rising (40\u219270 mm/h) while CRP falls" in detail
    assert "resolves more slowly (Ahn 2020)" in detail and "2020;21:428" in detail


def test_tuberculous_beside_pyogenic_gives_no_card() -> None:
    tb = condition("A18.01", ConditionCategory.OUT_OF_SCOPE)
    assert render_response(run(improving(), [nvo(), tb]), CTX) == {"cards": []}


def _stable_measurements() -> list[Any]:
    refs = iter(f"Observation/s{i}" for i in range(100))
    return [
        crp(0, 142, ref=next(refs)),
        crp(14, 61, ref=next(refs)),
        crp(28, 18, ref=next(refs)),
        pain(0, 8, ref=next(refs)),
        pain(28, 3, ref=next(refs)),
    ]


def test_summary_names_the_modality_ordered() -> None:
    ct = [order(29, modality=Modality.CT, code="72131")]
    advise = render_response(run(improving(), orders=ct), CTX)
    assert only_card(advise)["summary"].startswith("Routine repeat spine CT not recommended")
    plateau = [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(28, 6)]
    support = only_card(render_response(run(plateau, orders=ct), CTX))
    # summary and detail agree on a CT order: MRI is the study that answers
    assert support["summary"].endswith(
        "repeat spine MRI reasonable (MRI with gadolinium preferred to the CT ordered)"
    )
    assert "MRI with gadolinium is preferred" in support["detail"]
    stale = [crp(0, 140), crp(14, 60), pain(0, 8), pain(28, 3)]
    unsure = only_card(render_response(run(stale, orders=ct), CTX))
    assert unsure["summary"].startswith("Not enough data to judge repeat spine CT")


def _crp_rows(detail: str) -> list[str]:
    table = detail.split("| Date | Day | CRP mg/L | |", 1)[1].split("\n\n", 1)[0]
    return [line for line in table.strip().splitlines() if not line.startswith("|---")]


def test_a_long_crp_series_shows_its_ends_and_the_values_the_rules_used() -> None:
    from tests.engine.builders import esr

    # CRP every day for four weeks, falling; ESR every other day, falling
    values = [crp(day, 150 - 4.5 * day) for day in range(29)]
    a = run([*values, *[esr(day, 100 - day) for day in range(0, 29, 2)], pain(0, 8), pain(28, 3)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    detail = only_card(render_response(a, CTX))["detail"]
    rows = _crp_rows(detail)
    shown_days = [row.split(" | ")[1] for row in rows if not row.startswith("| … ")]
    assert shown_days == ["0", "1", "2", "26", "27", "28"]
    assert "baseline" in rows[0] and "latest" in rows[-1]
    assert rows[3] == "| … | | | 23 more CRP (days 3-25) not shown: see the trend |"
    assert "ESR (mm/h): 100 (day 0) \u2192 72 (day 28); first and latest of 15 values." in detail


def test_a_short_crp_series_is_shown_whole() -> None:
    values = [crp(day, 150 - 10 * day) for day in range(12)]
    detail = only_card(render_response(run([*values, pain(0, 8), pain(28, 3)]), CTX))["detail"]
    rows = _crp_rows(detail)
    assert len(rows) == 12 and not any("not shown" in row for row in rows)


def test_a_value_with_a_role_in_the_middle_of_a_long_series_is_kept() -> None:
    # falls to day 10, then rises: the lowest value before the latest is kept in view
    values = [crp(day, 150 - 12 * day) for day in range(11)]
    values += [crp(day, 30 + 5 * (day - 10)) for day in range(11, 40)]
    a = run([*values, pain(0, 8), pain(38, 7)], order_day=40)
    detail = only_card(render_response(a, CTX))["detail"]
    rows = _crp_rows(detail)
    assert any("lowest before latest" in row and "| 10 |" in row for row in rows), rows
    assert sum("not shown" in row for row in rows) == 2


def test_a_re_signed_active_order_is_not_called_a_draft() -> None:
    """order-sign may carry orders that are no longer drafts (CDS Hooks order-sign)."""
    drafted = order(29)
    active = order(29, ref="ServiceRequest/sr2")
    active.resource["status"] = "active"
    for imaging, word in ((drafted, "Remove the draft spine MRI order"), (active, None)):
        card = only_card(render_response(run(improving(), orders=[imaging]), CTX))
        (action,) = card["suggestions"][0]["actions"]
        if word is None:
            assert "draft" not in json.dumps(card)
            assert action["description"] == "Remove the spine MRI order"
        else:
            assert action["description"] == word


def test_the_rating_can_be_turned_off_and_the_card_stays_the_same() -> None:
    """appropriateness_rating = false: CMS's AUC program is paused (docs/cards.md)."""
    a = scenario(Recommendation.ADVISE_AGAINST)
    rated = render_response(a, CTX)
    unrated = render_response(a, dataclasses.replace(CTX, rating=False))
    assert "systemActions" in rated and "extension" in rated
    assert unrated == {"cards": rated["cards"]}


def test_a_card_that_asks_for_two_things_lets_the_clinician_take_both() -> None:
    """Advise-against beside a rising ESR: remove the MRI and order CRP and ESR, both
    recommended. "at-most-one" let an EHR that enforces it take only one (a clinician
    reviewer); the two act on different resources, so the card says "any"."""
    rising = [crp(0, 142), crp(14, 61), crp(28, 18), esr(0, 40), esr(28, 50)]
    c = rendered(run([*rising, pain(0, 7), pain(14, 5), pain(25, 3)]))
    assert c["extension"][ASSESSMENT_KEY]["recommendation"] == "advise-against"
    assert len(c["suggestions"]) == 2
    assert all(s["isRecommended"] for s in c["suggestions"]), c["suggestions"]
    assert c["selectionBehavior"] == "any"
    changed = [
        x.get("resourceId") or f"ServiceRequest/{x['resource'].get('id')}"
        for s in c["suggestions"]
        for x in s["actions"]
        if x["type"] != "create"
    ]
    assert len(set(changed)) == len(changed), changed  # no draft changed by two suggestions
