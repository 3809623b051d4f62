"""A CRP near the largest double is still a 200 with a card, never a 500 (an attack review:
its rise from 61 mg/L was an infinite percentage, and formatting it raised
OverflowError). The value is used as the record gives it: no plausibility ceiling is
invented here; only the percentage is said in words once it is too large to print."""

from __future__ import annotations

import copy
import math

import pytest
from flask.testing import FlaskClient

from cds_service.cards.words import MINUS, change_pct, signed_pct
from tests.builders import SELECT_ID
from tests.support.ehr_calls import card_request

LARGEST = 1.79e308


def _latest_first(body: dict[str, object]) -> list[dict[str, object]]:
    crp = body["prefetch"]["crp"]  # type: ignore[index]
    entries = [e["resource"] for e in crp["entry"]]
    return sorted(entries, key=lambda r: str(r["effectiveDateTime"]), reverse=True)


def test_a_crp_near_the_largest_double_gives_a_card_not_a_500(client: FlaskClient) -> None:
    body = copy.deepcopy(card_request("e01-improving"))
    _latest_first(body)[0]["valueQuantity"]["value"] = LARGEST  # type: ignore[index]
    # the conformance-checking client: the rise too large for a float is the largest one
    # in the card's data, a number, never null (engine/rules.pct_change)
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    (card,) = response.get_json()["cards"]
    assert card["summary"] == (
        "CRP rising again: 61→1.79e+308 mg/L (more than +999999%) since day 14; "
        "repeat spine MRI reasonable"
    )


def test_a_baseline_crp_near_the_largest_double_gives_a_card(client: FlaskClient) -> None:
    body = copy.deepcopy(card_request("e01-improving"))
    _latest_first(body)[-1]["valueQuantity"]["value"] = LARGEST  # type: ignore[index]
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    (card,) = response.get_json()["cards"]
    assert f"CRP 1.79e+308→18 mg/L, {MINUS}100%" in card["summary"]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (math.inf, "more than +999999%"),
        (-math.inf, f"more than {MINUS}999999%"),
        (1.6e306, "more than +999999%"),
        (999_999.5, "more than +999999%"),
        (999_999.4, "+999999%"),
        (math.nan, "change not computable"),
    ],
)
def test_a_percentage_too_large_to_print_is_said_in_words(value: float, said: str) -> None:
    assert signed_pct(value) == said
    for comparators in [(None, None), (">", None), ("<", None), (None, "<"), ("<", "<")]:
        assert change_pct(value, *comparators).startswith(said)


@pytest.mark.parametrize(
    ("value", "said"), [(58, "+58%"), (-87, f"{MINUS}87%"), (0, "0%"), (24.999, "+24.99%")]
)
def test_ordinary_percentages_read_as_before(value: float, said: str) -> None:
    assert signed_pct(value) == said
    assert change_pct(value, ">") == f"{said} or {'more' if value > 0 else 'less'}"
