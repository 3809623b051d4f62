"""Cards as a busy clinician reads them: every example, both data paths, through gunicorn.

The checks are the plain-language rules the cards were reviewed against: no resource
ids or internal names, one arrow style, every change signed, a summary under 140
characters that names the modality ordered, the latest CRP's age, single values said
as such, data left out named in clinical words, the evidence last, and a detail short
enough for a ten-second read before the CRP table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.cards.identity import suggestion_uuids
from cds_service.examples import Example, load_examples
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.ehr_calls import order_request, prefetch_from_server

pytestmark = pytest.mark.integration
TOKEN = "ehr-issued-token-plain-language"  # synthetic; the server only checks it matches
ORDER_DATE = date(2026, 11, 30)
EXAMPLES = load_examples(ORDER_DATE)
WITH_CARD = [e for e in EXAMPLES if e.expected != "no-card"]
MINUS, ARROW = "\u2212", "\u2192"
INTERNAL = ("Condition/", "Observation/", "ServiceRequest/", "Patient/", "T0", "audit record")
INTERNAL += ("this service", "NVO", "->", "spine-cds", "episode")


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        for example in EXAMPLES:
            server.load_bundle(example.bundle)
        yield server


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp: Path = tmp_path_factory.mktemp("plain")
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3")}
    with ServiceProcess(env=env, log_path=tmp / "service.log", workers=1) as running:
        yield running


def answers(fhir: FhirTestServer, service: ServiceProcess, example: Example) -> list[Any]:
    """The response to the prefetch request and to the fetch request, in that order."""
    base = order_request("order-select", example.patient_id, example.draft_order)
    prefetch = prefetch_from_server(fhir.base_url, base["context"], SELECT_ID, fhir.auth_headers)
    bodies = [
        order_request("order-select", example.patient_id, example.draft_order, prefetch=prefetch),
        order_request(
            "order-select",
            example.patient_id,
            example.draft_order,
            fhir_server=fhir.base_url,
            access_token=TOKEN,
        ),
    ]
    out = []
    for body in bodies:
        response = requests.post(f"{service.url}/cds-services/{SELECT_ID}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        out.append(response.json())
    return out


@pytest.fixture(scope="module")
def responses(fhir: FhirTestServer, service: ServiceProcess) -> dict[str, list[Any]]:
    return {e.key: answers(fhir, service, e) for e in EXAMPLES}


def card_of(response: dict[str, Any]) -> dict[str, Any]:
    (card,) = response["cards"]
    return dict(card)


def before_table(detail: str) -> str:
    """The part of the detail read first: everything before the CRP table or evidence."""
    for marker in ("\n| Date", "\n**Evidence**"):
        if marker in detail:
            detail = detail[: detail.index(marker)]
    return detail


@pytest.mark.parametrize("example", WITH_CARD, ids=[e.key for e in WITH_CARD])
def test_card_reads_plainly_on_both_paths(
    responses: dict[str, list[Any]], example: Example
) -> None:
    prefetched, fetched = responses[example.key]
    assert prefetched == fetched, "both data paths give the same card"
    card = card_of(prefetched)
    summary, detail = card["summary"], card["detail"]
    assert len(summary) < 140, summary
    for word in INTERNAL:
        assert word not in summary, (word, summary)
        assert word not in detail, (word, detail)
    # every change is signed; the ASCII hyphen never stands for a minus
    assert not re.search(r"(?<![\w.+\u2212])\d+(\.\d+)?% from the", detail)
    assert not re.search(r"-\d+(\.\d+)?%", summary + detail)
    for change in re.findall(r"mg/L,? \(?([^\s;)]*%)", summary + detail):
        assert change[0] in "+" + MINUS or change == "0%", change
    assert not re.search(r"fell \u2212", detail)
    # the disease is spelt out once, the evidence comes last, the read before the table is short
    assert detail.count("Vertebral osteomyelitis (spondylodiscitis)") == 1
    assert detail.rstrip().splitlines()[-1].startswith("Sources:")
    # 160 words: the 2026-12-06 revision asks every card to say where the treatment start
    # came from and support cards to give the next steps; its imaging part asks each card
    # to say which study answers (urgent, abscess, markers) and advise-against cards how
    # to read a study done anyway; still a short read
    assert len(before_table(detail).split()) <= 160, before_table(detail)
    # the latest CRP's age is always said when there is one
    if "| Date" in detail:
        assert re.search(r"([Ll]atest CRP|one value\),) (today|1 day ago|\d+ days ago)", detail)


def rules_of(response: Any) -> list[str]:
    assessment = card_of(response)["extension"]["spine-cds-assessment"]
    return [str(r["id"]) for r in assessment["rulesFired"]]


def test_modality_comes_from_the_order(responses: dict[str, list[Any]]) -> None:
    for example in WITH_CARD:
        summary = card_of(responses[example.key][0])["summary"]
        ct = example.draft_order["code"]["coding"][0]["code"] == "72131"
        if example.expected == "support-urgent":
            continue  # urgent cards always ask for MRI
        if ct and example.expected == "advise-against":
            assert "spine CT not recommended" in summary, summary
        elif ct and "mechanical" in rules_of(responses[example.key][0]):
            # a mechanical question is answered by radiographs and CT, not MRI
            assert "standing radiographs" in summary, summary
        elif ct and example.expected == "insufficient-data":
            assert "spine CT" in summary, summary
        elif ct:  # a support card on a CT says which study answers (summary and detail agree)
            assert "MRI with gadolinium preferred to the CT ordered" in summary, summary
        elif "think mechanical" in summary:  # worse pain while the CRP falls: CT answers too
            assert "radiographs or CT; MRI also answers" in summary, summary
        else:
            assert "MRI" in summary and "CT" not in summary, summary


def test_advise_against_leads_with_what_would_change_it(responses: dict[str, list[Any]]) -> None:
    card = card_of(responses["e01-improving"][0])
    assert card["summary"] == (
        f"Routine repeat spine MRI not recommended: improving (CRP 142{ARROW}18 mg/L, "
        f"{MINUS}87.3%; pain 8{ARROW}3)"
    )
    first = card["detail"].splitlines()[0]
    assert first.startswith("**Would change this advice:**")
    for words in (
        "a worse neurologic exam",
        "new deficit",
        "worsening pain",
        "fever or bacteraemia",
        "rising CRP",
    ):
        assert words in first
    assert "confirm the neurologic exam" in first
    assert "latest CRP 1 day ago" in card["detail"]
    assert "Berbari EF et al." in card["detail"] and "Zarrouk V et al." in card["detail"]
    assert "2.8 months" in card["detail"]
    labels = [s["label"] for s in card["suggestions"]]
    assert labels == ["Remove the spine MRI order"]
    reasons = {r["display"] for r in card["overrideReasons"]}
    assert "Fever or bacteraemia persists / not clinically improving" in reasons
    # reasons fit the card: no abscess or deficit known at diagnosis on this one
    assert "Undrained abscess on initial imaging" not in reasons
    assert "Deficit or complication known before treatment, unchanged" not in reasons


def test_urgent_card_on_a_ct_order(responses: dict[str, list[Any]]) -> None:
    response = responses["e17-ct-cauda-equina"][0]
    card = card_of(response)
    assert card["indicator"] == "critical"
    assert card["summary"] == (
        "New cauda equina syndrome (day 26): emergency MRI of the whole spine with "
        "gadolinium now; urgent spine surgery review"
    )
    # on an urgent card: MRI now, and the CT that can stand in for it (a CT without
    # contrast cannot exclude an epidural abscess)
    assert card["detail"].startswith(
        "**Emergency MRI of the whole spine, without and with gadolinium; do not delay it for "
        "contrast. MRI impossible: CT myelography"
    )
    assert "a CT without contrast cannot exclude an epidural abscess" in card["detail"]
    assert "nuclear" not in card["detail"]
    assert "surgical intervention for progressive neurologic deficits" in card["detail"]
    assert "routine follow-up MRI" not in card["detail"]  # not the follow-up recommendation
    (action,) = response["systemActions"]
    rating = next(e for e in action["resource"]["extension"] if e["url"].endswith("pama-rating"))
    assert rating["valueCodeableConcept"]["coding"][0]["code"] == "not-appropriate"
    reasons = {r["display"] for r in card["overrideReasons"]}
    assert "MRI contraindicated or unavailable" in reasons
    mri = card_of(responses["e02-cauda-equina"][0])
    assert "MRI with gadolinium is preferred" not in mri["detail"]
    (mri_action,) = responses["e02-cauda-equina"][0]["systemActions"]
    assert "appropriate" in str(mri_action["resource"]["extension"])


def test_red_flags_are_named_with_numbers_and_dates(responses: dict[str, list[Any]]) -> None:
    rebound = card_of(responses["e04-crp-rebound"][0])
    assert rebound["summary"].startswith(
        f"CRP rising again: 60{ARROW}95 mg/L (+58.3%) since day 10"
    )
    assert "do not prove treatment failure" in rebound["detail"]
    assert "C. difficile" in rebound["detail"]
    plateau = card_of(responses["e03-plateau"][0])
    assert plateau["summary"].startswith(
        f"CRP fell less than 25%: 120{ARROW}105 mg/L ({MINUS}12.5%)"
    )
    assert "C. difficile" not in plateau["detail"]  # not a rebound
    abscess = card_of(responses["e11-epidural-abscess"][0])
    assert abscess["summary"] == (
        "Intraspinal abscess recorded day 12: MRI reasonable; examine neurology now; discuss "
        "with spine surgery"
    )
    pain = card_of(responses["e12-pain-worse"][0])
    assert pain["summary"].startswith(f"Pain worse: 3{ARROW}6/10 since day 14")


def test_insufficient_data_asks_for_what_is_missing(responses: dict[str, list[Any]]) -> None:
    single = card_of(responses["e06-single-crp"][0])
    assert "baseline" not in single["detail"]  # a day-28 value is no baseline
    assert "suggestions" not in single  # the only CRP was drawn today: do not ask for another
    assert "(one value)" in single["detail"]
    stale = card_of(responses["e16-stale-crp"][0])
    assert "Latest CRP 9 days old: repeat CRP before deciding on imaging." in stale["detail"]
    assert [s["label"] for s in stale["suggestions"]] == ["Order CRP and ESR"]
    for card in (single, stale):
        assert "Confirm the neurologic exam" in card["detail"]
        assert "neither supports nor advises against" in card["detail"]


def test_data_left_out_is_named_in_clinical_words(responses: dict[str, list[Any]]) -> None:
    card = card_of(responses["e10-entered-in-error"][0])
    # a value the chart shows is named with its value and day (clinical-rules.md, 2026-12-06)
    assert re.search(
        r"Not used: CRP [0-9.]+ mg/L on day \d+, marked entered-in-error\.", card["detail"]
    )


def test_molar_crp_counts_and_is_never_called_no_crp(responses: dict[str, list[Any]]) -> None:
    card = card_of(responses["e13-molar-crp"][0])
    assert "no CRP" not in card["summary"] + card["detail"]
    assert "reported 1333 nmol/L" in card["detail"]
    assert f"CRP 140{ARROW}15 mg/L" in card["summary"]


def test_out_of_scope_beside_pyogenic_gives_no_card(responses: dict[str, list[Any]]) -> None:
    assert responses["e15-tb-beside-pyogenic"] == [{"cards": []}, {"cards": []}]


def test_every_suggestion_uuid_is_one_feedback_can_name(responses: dict[str, list[Any]]) -> None:
    # feedback checks an accepted suggestion against the uuids its card can offer
    # (cds_service/cards/identity.py): every suggestion on every card must be one of them
    seen = 0
    for example in WITH_CARD:
        for response in responses[example.key]:
            for card in response["cards"]:
                offered = suggestion_uuids(card["uuid"])
                for suggestion in card.get("suggestions", []):
                    assert suggestion["uuid"] in offered, (example.key, suggestion["label"])
                    seen += 1
    assert seen > 20  # advise-against removals, CRP orders, replacements, STAT
