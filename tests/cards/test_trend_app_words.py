"""The trend app says the decision in the card's words, sent in the link's appContext.

The app kept its own wordings (rule names, recommendation titles, where T0 came from),
checked only in a browser against literals. Now the card sends them, made by the cards'
own phrase functions: the summary (``reason``), each fired rule's short phrase
(``ruleShorts``) and where T0 came from (``t0Text``); the app shows those, and
tests/cards/test_trend_app_config.py holds its source free of the card's wording.
For every example patient with a card, each is here the phrasebook's, as plain text.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import orjson
import pytest
from flask import Flask

from cds_service.cards.detail import advise_against_line
from cds_service.cards.episode_line import t0_phrase
from cds_service.cards.phrasebook import phrase
from cds_service.cards.safe_text import quote, unquote
from cds_service.cards.trend_words import card_words
from cds_service.ehr_requests import bundle_resources, local_prefetch
from cds_service.engine.assessment import Assessment
from cds_service.examples import load_example, load_examples
from cds_service.pipeline import run_hook
from cds_service.runtime import Runtime
from tests.builders import SELECT_ID
from tests.engine.builders import improving, nvo, run
from tests.support.ehr_calls import order_request

ORDER_DATE = date(2026, 11, 26)


def cards_and_assessments(app: Flask) -> list[tuple[str, dict[str, Any], Assessment]]:
    """(example key, its card, the Assessment the card shows) for every example with a card."""
    runtime: Runtime = app.extensions["spine_cds"]
    service = runtime.discovery.services[SELECT_ID]
    found = []
    for example in load_examples(ORDER_DATE):
        body = order_request("order-select", example.patient_id, example.draft_order)
        bundle = bundle_resources(example.bundle)
        body["prefetch"] = local_prefetch(service.prefetch, body["context"], bundle)
        outcome = run_hook(runtime, service, orjson.dumps(body), trend_base_url="http://localhost")
        cards = outcome.response["cards"]
        if cards:
            assert outcome.assessment is not None
            found.append((example.key, cards[0], outcome.assessment))
    assert len(found) > 20
    return found


def test_every_card_sends_its_own_words_to_the_app(app: Flask) -> None:
    with_t0 = 0
    for key, card, a in cards_and_assessments(app):
        (link,) = card["links"]
        context = json.loads(link["appContext"])
        assert context["reason"] == card["summary"], key
        shorts = [
            unquote(advise_against_line(a).removesuffix("."))
            if f.rule_id == "advise-against"
            else unquote(phrase(f).short)
            for f in a.rules_fired
        ]
        assert context["ruleShorts"] == shorts, key
        if a.recommendation.value == "advise-against":
            # the card's opening state, word for word: never "improving" where the card
            # withholds it (the Yoon levels, an early rise)
            assert shorts[0] + "." in unquote(card["detail"]), key
        assert len(shorts) == len(context["rulesFired"]), key
        if a.episode is not None and a.episode.t0 is not None:
            with_t0 += 1
            assert context["t0Text"] == unquote(t0_phrase(a)), key
            # as the card's episode line says it
            assert t0_phrase(a) in card["detail"], key
        else:
            assert "t0Text" not in context, key
    assert with_t0 > 20


def test_the_words_are_plain_text() -> None:
    """The card's markdown escapes what a record's text could make markup of; the summary
    the card shows is plain text, and so is what the app is sent (it shows text, never
    markup)."""
    summary = "New " + quote("*cauda* equina_syndrome") + " (day 26)"
    assert "\\" in summary
    words = card_words(run(improving(), [nvo()]), summary)
    assert words["reason"] == "New *cauda* equina_syndrome (day 26)"


def test_without_a_treatment_start_no_t0_words_are_sent() -> None:
    """An infection recorded without a date: no T0, and nothing said about where it came
    from (t0_phrase has nothing to say); the rules' words are still sent."""
    a = run(improving(), [nvo(onset=None)])
    assert a.episode is not None and a.episode.t0 is None
    words = card_words(a, "")
    assert "t0Text" not in words
    assert words["ruleShorts"] == [unquote(phrase(f).short) for f in a.rules_fired]
    assert words["ruleShorts"]


def _e18_card(app: Flask, change: Any, leave_out: str = "") -> tuple[dict[str, Any], Assessment]:
    """e18 (cefazolin from the day of diagnosis) with its bundle changed by ``change``,
    and without the prefetch key ``leave_out`` (no fhirServer: that data is unavailable)."""
    runtime: Runtime = app.extensions["spine_cds"]
    service = runtime.discovery.services[SELECT_ID]
    example = load_example("e18-antibiotic-start", ORDER_DATE)
    bundle = json.loads(json.dumps(example.bundle))
    change(bundle)
    body = order_request("order-select", example.patient_id, example.draft_order)
    prefetch = local_prefetch(service.prefetch, body["context"], bundle_resources(bundle))
    body["prefetch"] = {k: v for k, v in prefetch.items() if k != leave_out}
    outcome = run_hook(runtime, service, orjson.dumps(body), trend_base_url="http://localhost")
    (card,) = outcome.response["cards"]
    assert outcome.assessment is not None
    return card, outcome.assessment


def _orders(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    found = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]
    assert found
    return found


def _drafts(bundle: dict[str, Any]) -> None:
    for order in _orders(bundle):
        order["status"] = "draft"


@pytest.mark.parametrize(
    ("change", "leave_out", "said"),
    [
        (lambda bundle: None, "", "(first antibiotic order: cefazolin)"),
        (lambda bundle: None, "antibiotics", "(antibiotic orders could not be read;"),
        (_drafts, "", "(no antibiotic order counted as treatment;"),
    ],
    ids=["first-order", "could-not-be-read", "not-counted"],
)
def test_each_way_t0_came_from_is_sent_in_the_cards_words(
    app: Flask, change: Any, leave_out: str, said: str
) -> None:
    card, a = _e18_card(app, change, leave_out)
    context = json.loads(card["links"][0]["appContext"])
    assert context["t0Text"] == unquote(t0_phrase(a))
    assert said in context["t0Text"]
    assert t0_phrase(a) in card["detail"]
