"""map_orders: which draft orders are spine MRI/CT orders in question, on real-client bodies."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.valuesets import load_value_sets
from fhir_mappers.model import Modality
from fhir_mappers.orders import map_orders

VS = load_value_sets()
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
SANDBOX = json.loads((Path(__file__).parents[1] / "data" / "sandbox-requests.json").read_text())


def service_request(order_id: str, *codings: dict[str, Any], **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "code": {"coding": list(codings)},
        "subject": {"reference": "Patient/p1"},
    }
    resource.update(extra)
    return resource


def bundle(*resources: Any, bundle_type: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    if bundle_type:
        out["type"] = bundle_type
    return out


def cpt(code: str) -> dict[str, Any]:
    return {"system": CPT, "code": code}


def medication_request(order_id: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "an antibiotic"},
    }


# --- the CDS Hooks sandbox's own bodies ---------------------------------------------------


def test_sandbox_page_load_order_with_an_empty_coding_is_no_order() -> None:
    context = SANDBOX["imaging_tab_page_load_order_select"]["context"]
    result = map_orders(context["draftOrders"], context["selections"], VS)
    assert result.orders == ()
    assert result.issues == ()


def test_sandbox_lumbar_ct_is_a_lumbar_ct_with_contrast() -> None:
    context = SANDBOX["imaging_tab_lumbar_ct_order_select"]["context"]
    result = map_orders(context["draftOrders"], context["selections"], VS)
    assert len(result.orders) == 1
    order = result.orders[0]
    assert order.reference == "ServiceRequest/example-request-id"
    assert (order.modality, order.region, order.contrast) == (Modality.CT, "lumbar", "with")
    assert [(c.system, c.code) for c in order.codes] == [(CPT, "72132")]
    assert order.authored_on is None
    assert order.resource == context["draftOrders"]["entry"][0]["resource"]
    assert result.issues == ()


def test_sandbox_rx_sign_medication_order_is_no_order() -> None:
    context = SANDBOX["rx_sign_tab_order_sign"]["context"]
    result = map_orders(context["draftOrders"], None, VS)
    assert result.orders == ()
    assert result.issues == ()


# --- selection rules ----------------------------------------------------------------------


def test_order_select_reads_only_the_selected_orders() -> None:
    drafts = bundle(medication_request("med-1"), service_request("mri-1", cpt("72158")))
    result = map_orders(drafts, ["MedicationRequest/med-1"], VS)
    assert result.orders == ()
    assert result.issues == ()


def test_order_select_with_the_spine_order_selected() -> None:
    drafts = bundle(medication_request("med-1"), service_request("mri-1", cpt("72158")))
    result = map_orders(drafts, ["ServiceRequest/mri-1"], VS)
    assert [o.reference for o in result.orders] == ["ServiceRequest/mri-1"]


def test_order_sign_reads_every_draft_and_keeps_only_spine_imaging() -> None:
    lab = service_request("lab-1", {"system": LOINC, "code": "1988-5"})
    drafts = bundle(service_request("ct-1", cpt("72128")), lab, medication_request("med-1"))
    result = map_orders(drafts, None, VS)
    assert [(o.reference, o.modality, o.region) for o in result.orders] == [
        ("ServiceRequest/ct-1", Modality.CT, "thoracic")
    ]
    assert result.issues == ()


def test_order_sign_with_two_spine_orders_returns_both_in_order() -> None:
    drafts = bundle(service_request("a", cpt("72141")), service_request("b", cpt("72148")))
    result = map_orders(drafts, None, VS)
    assert [(o.reference, o.region) for o in result.orders] == [
        ("ServiceRequest/a", "cervical"),
        ("ServiceRequest/b", "lumbar"),
    ]


def test_a_selection_given_as_a_full_url_is_matched() -> None:
    drafts = bundle(service_request("mri-1", cpt("72158")))
    result = map_orders(drafts, ["https://ehr.example.org/fhir/ServiceRequest/mri-1"], VS)
    assert [o.reference for o in result.orders] == ["ServiceRequest/mri-1"]


def test_a_selection_not_in_draft_orders_is_reported() -> None:
    drafts = bundle(service_request("mri-1", cpt("72158")))
    result = map_orders(drafts, ["ServiceRequest/other"], VS)
    assert result.orders == ()
    assert [i.reference for i in result.issues] == ["ServiceRequest/other"]
    assert "not found" in result.issues[0].reason


@pytest.mark.parametrize(
    "coding",
    [
        {"system": LOINC, "code": "24590-2"},  # MR brain
        {"system": LOINC, "code": "24587-8"},
        *[cpt(str(code)) for code in range(70551, 70556)],
        cpt("72159"),  # MR angiography of the spinal canal
        {"code": "72158"},  # no system: cannot be trusted to be CPT
        {"system": CPT},
        {},
    ],
)
def test_non_spine_or_unusable_codes_are_no_order(coding: dict[str, Any]) -> None:
    result = map_orders(bundle(service_request("x", coding)), None, VS)
    assert result.orders == ()
    assert result.issues == ()


def test_loinc_and_snomed_spine_codes_are_orders() -> None:
    drafts = bundle(
        service_request("l", {"system": LOINC, "code": "30855-1"}),
        service_request("s", {"system": SNOMED, "code": "41333006"}),
    )
    result = map_orders(drafts, None, VS)
    assert [(o.modality, o.region, o.contrast) for o in result.orders] == [
        (Modality.MRI, "spine", "without-and-with"),
        (Modality.MRI, "lumbar", None),
    ]


def test_every_matching_coding_is_kept_and_a_disagreement_is_reported() -> None:
    order = service_request("x", cpt("72158"), {"system": SNOMED, "code": "762008"})
    result = map_orders(bundle(order), None, VS)
    assert len(result.orders) == 1
    assert [c.code for c in result.orders[0].codes] == ["72158", "762008"]
    assert result.orders[0].modality is Modality.MRI  # the first coding decides
    assert len(result.issues) == 1 and "disagree" in result.issues[0].reason


# --- robustness ---------------------------------------------------------------------------


def test_bundle_without_type_and_entries_without_resource() -> None:
    drafts = {
        "resourceType": "Bundle",
        "entry": [
            {},
            {"fullUrl": "urn:uuid:1"},
            "junk",
            {"resource": service_request("m", cpt("72149"))},
        ],
    }
    result = map_orders(drafts, None, VS)
    assert [o.reference for o in result.orders] == ["ServiceRequest/m"]
    assert [i.reference for i in result.issues] == [
        "draftOrders.entry[0]",
        "draftOrders.entry[1]",
        "draftOrders.entry[2]",
    ]


@pytest.mark.parametrize("drafts", [None, {"resourceType": "Bundle"}])
def test_no_draft_orders_is_no_order_and_no_issue(drafts: Any) -> None:
    result = map_orders(drafts, None, VS)
    assert result.orders == () and result.issues == ()


@pytest.mark.parametrize(
    "drafts",
    [
        [service_request("m", cpt("72158"))],
        {"resourceType": "Patient"},
        "text",
        {"resourceType": "Bundle", "entry": {}},
    ],
)
def test_something_other_than_a_bundle_is_reported(drafts: Any) -> None:
    result = map_orders(drafts, None, VS)
    assert result.orders == ()
    assert [i.reference for i in result.issues] == ["draftOrders"]


def test_an_invalid_spine_service_request_is_read_for_what_the_rules_use_and_reported() -> None:
    # an EHR's order without intent is still a lumbar MRI: no advice lost for an element
    # the rules do not read, and the audit says what was wrong
    broken = service_request("bad", cpt("72158"))
    del broken["intent"]
    good = service_request("good", cpt("72131"))
    result = map_orders(bundle(broken, good), None, VS)
    assert [o.reference for o in result.orders] == ["ServiceRequest/bad", "ServiceRequest/good"]
    assert [i.reference for i in result.issues] == ["ServiceRequest/bad"]
    assert "intent" in result.issues[0].reason
    assert result.issues[0].reason.endswith(
        "read for its code, status, priority, reasons and date only"
    )


def test_an_order_without_id_gets_a_positional_reference() -> None:
    order = service_request("x", cpt("72158"))
    del order["id"]
    result = map_orders(bundle(medication_request("m"), order), None, VS)
    assert [o.reference for o in result.orders] == ["ServiceRequest/#1"]


def test_non_string_selections_are_reported() -> None:
    drafts = bundle(service_request("mri-1", cpt("72158")))
    result = map_orders(drafts, ["ServiceRequest/mri-1", 7, "nonsense"], VS)  # type: ignore[list-item]
    assert [o.reference for o in result.orders] == ["ServiceRequest/mri-1"]
    assert [i.reference for i in result.issues] == ["selections", "selections"]


# --- authoredOn ---------------------------------------------------------------------------


def test_authored_on_keeps_its_day_and_instant() -> None:
    order = service_request("x", cpt("72158"), authoredOn="2024-03-01T23:30:00-05:00")
    when = map_orders(bundle(order), None, VS).orders[0].authored_on
    assert when is not None
    assert when.day == date(2024, 3, 1)
    assert when.instant == datetime(2024, 3, 2, 4, 30, tzinfo=UTC)
    assert when.instant.utcoffset() == timedelta(hours=-5)
    assert when.date_only is False


def test_authored_on_as_a_date() -> None:
    order = service_request("x", cpt("72158"), authoredOn="2024-03-01")
    when = map_orders(bundle(order), None, VS).orders[0].authored_on
    assert when is not None
    assert (when.day, when.date_only) == (date(2024, 3, 1), True)
    assert when.instant == datetime(2024, 3, 1, tzinfo=UTC)


def test_an_unreadable_authored_on_leaves_the_order_undated_and_is_reported() -> None:
    order = service_request("x", cpt("72158"), authoredOn="yesterday")
    result = map_orders(bundle(order), None, VS)
    assert [(o.reference, o.authored_on) for o in result.orders] == [("ServiceRequest/x", None)]
    reasons = [i.reason for i in result.issues]
    assert any("not a valid R4 ServiceRequest (authoredOn" in r for r in reasons), reasons
    assert any(r.startswith("authoredOn not read") for r in reasons), reasons


# --- never raises -------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = ["resourceType", "id", "code", "status", "intent", "subject", "authoredOn", "entry"]


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(FIELDS), value=JSON, select=st.booleans())
def test_odd_json_never_raises(field: str, value: Any, select: bool) -> None:
    order = service_request("x", cpt("72158"), authoredOn="2024-03-01")
    odd = copy.deepcopy(order)
    odd[field] = value
    drafts = bundle(odd, order)
    result = map_orders(drafts, ["ServiceRequest/x"] if select else None, VS)
    assert all(o.reference.startswith("ServiceRequest/") for o in result.orders)
