"""map_orders: selections, disagreeing codings and what the audit shows, from orders.py's
contract.

- order-select reads the selected orders wherever they stand in draftOrders; a selection
  is "Type/id", or a URL cut to its last two path segments (a trailing slash is not a
  segment), and any FHIR id is matched as written.
- When the codings of one order disagree, a verified code decides modality and region.
- An authoredOn the service cannot read leaves the order undated and is reported.
- Every DataIssue names what it is about and says what was wrong, in the words the audit
  shows.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.valuesets import is_antibiotics, load_value_sets, shipped_files
from fhir_mappers.model import DataIssue, Modality
from fhir_mappers.orders import map_orders
from fhir_mappers.valuesets import build_value_sets

VS = load_value_sets()
SITE = "http://example.org/site-imaging"  # synthetic site codes
TEN_DIGITS = "2024-03-04T10:00:00.1234567890Z"  # R4B's pattern takes it, FHIR R4 does not
CPT = "http://www.ama-assn.org/go/cpt"


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


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}


def cpt(code: str) -> dict[str, Any]:
    return {"system": CPT, "code": code}


# --- selections ---------------------------------------------------------------------------


def test_a_selected_order_after_one_not_selected_is_read() -> None:
    drafts = bundle(service_request("a", cpt("72131")), service_request("b", cpt("72158")))
    result = map_orders(drafts, ["ServiceRequest/b"], VS)
    assert [o.reference for o in result.orders] == ["ServiceRequest/b"]
    assert result.issues == ()


@pytest.mark.parametrize(
    "selection",
    [
        "ServiceRequest/MRI-X",
        "ServiceRequest/MRI-X/",
        "https://ehr.example.org/fhir/ServiceRequest/MRI-X/",
    ],
)
def test_a_selection_matches_its_order_with_or_without_a_trailing_slash(selection: str) -> None:
    drafts = bundle(service_request("MRI-X", cpt("72158")), service_request("other", cpt("72131")))
    result = map_orders(drafts, [selection], VS)
    assert [o.reference for o in result.orders] == ["ServiceRequest/MRI-X"]
    assert result.issues == ()


def test_bad_selections_are_reported_with_what_was_sent() -> None:
    drafts = bundle(service_request("mri-1", cpt("72158")))
    result = map_orders(drafts, [7, "nonsense", "ServiceRequest/gone"], VS)  # type: ignore[list-item]
    assert result.orders == ()
    assert result.issues == (
        DataIssue("selections", "not a 'Type/id' reference: 7"),
        DataIssue("selections", "not a 'Type/id' reference: 'nonsense'"),
        DataIssue("ServiceRequest/gone", "selected in the request but not found in draftOrders"),
    )


# --- codings ------------------------------------------------------------------------------


def _with_unverified_site_ct() -> Any:
    site = {
        "valueSet": "spine-imaging",
        "source": "site list (test)",
        "entries": [
            {
                "system": SITE,
                "code": "CT-L",
                "modality": "CT",
                "region": "lumbar",
                "contrast": None,
                "verified": False,
            }
        ],
    }
    # the antibiotics list has its own reader (fhir_mappers/antibiotics.py)
    code_lists = [f for f in shipped_files() if not is_antibiotics(f[1])]
    return build_value_sets([*code_lists, ("site.json", site)])


@pytest.mark.parametrize("site_first", [True, False], ids=["site-first", "cpt-first"])
def test_a_verified_code_decides_when_codings_disagree(site_first: bool) -> None:
    vs = _with_unverified_site_ct()
    codings = [{"system": SITE, "code": "CT-L"}, cpt("72158")]
    order = service_request("o", *(codings if site_first else codings[::-1]))
    result = map_orders(bundle(order), None, vs)
    (read,) = result.orders
    assert (read.modality, read.region, read.contrast) == (
        Modality.MRI,
        "lumbar",
        "without-and-with",
    )
    assert result.issues == (
        DataIssue(
            "ServiceRequest/o",
            "codings disagree on modality/region/contrast; read as 72158",
            kept=True,
        ),
    )


# --- what could not be read ---------------------------------------------------------------


def test_an_authored_on_that_cannot_be_read_leaves_the_order_undated() -> None:
    order = service_request("x", cpt("72158"), authoredOn=TEN_DIGITS)
    result = map_orders(bundle(order), None, VS)
    assert [(o.reference, o.authored_on) for o in result.orders] == [("ServiceRequest/x", None)]
    assert result.issues == (
        DataIssue(
            "ServiceRequest/x",
            f"authoredOn not read: not a FHIR date/time: {TEN_DIGITS!r}",
            kept=True,
        ),
    )


def test_an_invalid_spine_order_is_reported_under_its_reference() -> None:
    broken = service_request("bad", cpt("72158"))
    del broken["intent"]
    (issue,) = map_orders(bundle(broken), None, VS).issues
    assert issue.reference == "ServiceRequest/bad"
    assert issue.reason.startswith("spine imaging order is not a valid R4 ServiceRequest (intent")


def test_a_primitive_extension_that_breaks_the_model_is_an_invalid_order_not_a_crash() -> None:
    # fhir.resources raises AttributeError (not a ValidationError) for this one
    broken = service_request("bad", cpt("72158"), _status="0")
    result = map_orders(bundle(broken), None, VS)
    assert [o.reference for o in result.orders] == ["ServiceRequest/bad"]
    (issue,) = result.issues
    assert issue.reference == "ServiceRequest/bad"
    assert issue.reason.startswith("spine imaging order is not a valid R4 ServiceRequest")


@pytest.mark.parametrize(
    ("drafts", "reason"),
    [
        ([service_request("m", cpt("72158"))], "not a Bundle: no orders read"),
        ({"resourceType": "Patient"}, "not a Bundle: no orders read"),
        ({"resourceType": "Bundle", "entry": {}}, "Bundle.entry is not a list: no orders read"),
    ],
)
def test_draft_orders_that_cannot_be_read_say_why(drafts: Any, reason: str) -> None:
    result = map_orders(drafts, None, VS)
    assert result.orders == ()
    assert result.issues == (DataIssue("draftOrders", reason),)


def test_an_entry_without_a_resource_is_reported_by_position() -> None:
    drafts = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "urn:uuid:1"},
            {"resource": {"resourceType": "MedicationRequest", "id": "m"}},
        ],
    }
    result = map_orders(drafts, None, VS)
    assert result.issues == (
        DataIssue("draftOrders.entry[0]", "entry without a resource: skipped"),
    )
