"""An order the card changes carries its reason, as the CDS Hooks sandbox needs it.

In the official sandbox in a browser, taking "Order ... instead" threw in its PAMA tab
(``resource.reasonCode.map`` of undefined) and the order was never replaced: the sandbox's
drafts have ``reasonCode: []``, which the service leaves out as empty (invalid in FHIR
JSON). A draft without a reason now gets the infection the card is about, from the
patient's own Condition; a reason the clinician gave is kept as it is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cds_service.cards import CardContext, render_response
from cds_service.engine import Recommendation
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import Modality
from tests.engine.builders import PATIENT, crp, improving, neuro, nvo, order, pain, run

CTX = CardContext(patient_id=PATIENT, value_sets=load_value_sets())
PLATEAU = [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(28, 6)]


def update_resources(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        action["resource"]
        for card in response["cards"]
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
        if action["type"] == "update"
    ]


def ct_draft(**fields: Any) -> Any:
    ct = replace(order(29, code="72131", modality=Modality.CT), contrast="without")
    return replace(ct, resource={**ct.resource, "reasonCode": [], **fields})


def test_a_replacement_of_a_draft_without_a_reason_names_the_infection() -> None:
    a = run(PLATEAU, orders=[ct_draft()])
    assert a.recommendation is Recommendation.SUPPORT
    (resource,) = update_resources(render_response(a, CTX))
    assert resource["reasonCode"] == [
        {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/sid/icd-10-cm",
                    "code": "M46.26",
                    "display": "Osteomyelitis of vertebra, lumbar region",
                }
            ]
        }
    ]


def test_making_an_order_stat_gives_it_the_reason_too() -> None:
    mri = replace(order(29, code="72158", region="spine"), contrast="without-and-with")
    mri = replace(mri, resource={**mri.resource, "priority": "routine", "reasonCode": []})
    urgent = run(improving()[:2], [nvo(region="lumbar"), neuro(onset=15)], orders=[mri])
    assert urgent.recommendation is Recommendation.SUPPORT_URGENT
    (resource,) = update_resources(render_response(urgent, CTX))
    assert resource["priority"] == "stat"
    assert [c["coding"][0]["code"] for c in resource["reasonCode"]] == ["M46.26"]


def test_a_reason_the_draft_gives_is_kept_as_it_is() -> None:
    given = [{"text": "Follow-up of L4-5 discitis"}]
    kept = run(PLATEAU, orders=[ct_draft(reasonCode=given)])
    (resource,) = update_resources(render_response(kept, CTX))
    assert resource["reasonCode"] == given
    referenced = {"reasonReference": [{"reference": "Condition/c1"}]}
    by_reference = run(PLATEAU, orders=[ct_draft(**referenced)])
    (other,) = update_resources(render_response(by_reference, CTX))
    assert "reasonCode" not in other and other["reasonReference"] == referenced["reasonReference"]
