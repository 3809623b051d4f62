"""What the service did not recognise, as kept for the audit (cds_service.unrecognised)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import Raw

from cds_service.stores.audit import AuditRecord
from cds_service.unrecognised import (
    MAX_CHARS,
    MAX_CODINGS,
    MAX_ORDERS,
    NUMBER_CODE,
    codes_not_recognised,
    orders_not_recognised,
)
from cds_service.valuesets import load_value_sets
from fhir_mappers.observations import MappingOptions, map_observations
from fhir_mappers.wire import read_resource
from tests.builders import CPT, LOINC, bundle, service_request

VS = load_value_sets()
EPIC_PROC = "urn:oid:1.2.840.114350.1.13.99999.2.7.2.696580"
SITE_EXAMPLE = Path(__file__).resolve().parent.parent / "docs/examples/site-valuesets"


def audit_row(unrecognised: dict[str, Any]) -> AuditRecord:
    """An audit row of a call whose detail kept ``unrecognised`` codes (the report's input)."""
    return AuditRecord(
        hook_instance="-",
        service_id="s",
        hook="order-select",
        received_at=datetime(2026, 12, 6, tzinfo=UTC),
        patient_key=None,
        decision="not-applicable",
        reason=None,
        rules_fired=(),
        counts={},
        data_sources={},
        card_uuids=(),
        status=200,
        latency_ms=1.0,
        fhir_ms=None,
        shadow=True,
        detail={"unrecognised": unrecognised},
    )


def test_only_orders_in_question_without_a_known_code_are_kept() -> None:
    local = service_request("a", system=EPIC_PROC, code="12345")
    both = service_request("b")
    both["code"]["coding"].insert(0, {"system": EPIC_PROC, "code": "12345"})
    page_load = service_request("c", system=None, code=None)  # the sandbox's empty order
    other = service_request("d", system=EPIC_PROC, code="999")
    orders = bundle(local, both, page_load, other)
    found = orders_not_recognised(orders, None, VS)
    assert [o["reference"] for o in found] == ["ServiceRequest/a", "ServiceRequest/d"]
    assert found[0]["codings"] == [{"system": EPIC_PROC, "code": "12345"}]
    selected = orders_not_recognised(orders, ["ServiceRequest/d"], VS)
    assert [o["reference"] for o in selected] == ["ServiceRequest/d"]


def test_a_code_sent_as_a_json_number_is_kept_and_said_so() -> None:
    """An integrator's review: CPT 72158 sent as a number matched nothing, was dropped,
    and the report then pointed at the order's local code alone."""
    order = service_request("n", system=EPIC_PROC, code="IMG1234")
    order["code"]["coding"].append({"system": CPT, "code": 72158})
    (found,) = orders_not_recognised(bundle(order), None, VS)
    assert found["codings"][1] == {"system": CPT, "code": "72158", "display": NUMBER_CODE}
    from cds_service.tools.report_codes import format_unrecognised, unrecognised_codes

    report = format_unrecognised(unrecognised_codes([audit_row({"orders": [found]})]))
    assert f"{CPT}|72158  {NUMBER_CODE}" in report


def test_what_is_kept_is_bounded() -> None:
    many = [service_request(f"o{i}", system=EPIC_PROC, code="z" * 1000) for i in range(50)]
    found = orders_not_recognised(bundle(*many), None, VS)
    assert len(found) == MAX_ORDERS
    assert len(found[0]["codings"][0]["code"]) == MAX_CHARS


def test_condition_and_observation_codes_are_pairs_only_of_unrecognised_resources() -> None:
    conditions = [
        {
            "resourceType": "Condition",
            "code": {"coding": [{"system": "x", "code": "1", "display": "free text"}]},
        },
        {
            "resourceType": "Condition",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M46.26"}]},
        },
    ]
    observations = [
        {"resourceType": "Observation", "code": {"coding": [{"system": LOINC, "code": "1988-5"}]}},
        {"resourceType": "Observation", "code": {"coding": [{"system": "lab", "code": "CRP"}]}},
    ]
    assert codes_not_recognised(conditions, observations, VS) == {
        "Condition": [["x", "1"]],
        "Observation": [["lab", "CRP"]],
    }
    assert codes_not_recognised([], [], VS) == {}


def test_the_site_value_set_example_in_the_docs_teaches_the_local_order() -> None:
    order = service_request("a", system=EPIC_PROC, code="12345")
    assert orders_not_recognised(bundle(order), None, VS)
    taught = load_value_sets(SITE_EXAMPLE)
    assert orders_not_recognised(bundle(order), None, taught) == []
    assert taught.imaging_entry(CPT, "72158") is not None  # it extends, not replaces


def test_the_report_escapes_what_clients_sent() -> None:
    from cds_service.tools.report_codes import format_unrecognised, unrecognised_codes

    record = audit_row(
        {
            "orders": [
                {"codings": [{"system": "x", "code": "1\n2", "display": "\x1b[31mred\u202e"}]}
            ],
            "Condition": [["y", "3"], ["y", "3"]],
        }
    )
    codes = unrecognised_codes([record, record])
    assert codes["orders"] == [
        {"system": "x", "code": "1\n2", "count": 2, "display": "\x1b[31mred\u202e"}
    ]
    assert codes["Condition"] == [{"system": "y", "code": "3", "count": 4}]
    text = format_unrecognised(codes)
    assert "\x1b" not in text and "\u202e" not in text  # nor a bidi override
    assert "1\\u000a2" in text and "\\u202e" in text


def test_the_report_lists_orders_with_only_a_text_by_their_text_apart() -> None:
    """An order sent with ``code.text`` and no coding (an orderable without a code
    mapping) is in the audit; the report lists it by its text, in a section of its own,
    so the "teach the service a site's codes" loop can see it (docs/integration.md)."""
    from cds_service.tools.report_codes import format_unrecognised, unrecognised_codes

    def record(*orders: dict[str, object]) -> AuditRecord:
        return audit_row({"orders": list(orders)})

    text_only = {"reference": "ServiceRequest/a", "codings": [], "text": "MRI Lumbar w/wo"}
    coded = {
        "reference": "ServiceRequest/b",
        "codings": [{"system": "x", "code": "9"}],
        "text": "has a code",
    }
    codes = unrecognised_codes([record(text_only, coded), record(text_only)])
    assert codes["orderTexts"] == [{"text": "MRI Lumbar w/wo", "count": 2}]
    assert codes["orders"] == [{"system": "x", "code": "9", "count": 1}]
    lines = format_unrecognised(codes).splitlines()
    heading = lines.index("Orders with only a text, no code (ServiceRequests in question): 1")
    assert lines[heading + 1] == "      2  MRI Lumbar w/wo"
    assert "has a code" not in "\n".join(lines)  # a coded order is listed by its code
    assert any("send a code" in line for line in lines[heading:])


# The codings an Observation may carry: known to the value set (CRP, a qualitative CRP the
# rules ignore), a site's own, without a system, empty, too long to keep whole, of a wrong
# type, not an object.
_CODINGS = st.sampled_from(
    [
        {"system": LOINC, "code": "1988-5"},
        {"system": LOINC, "code": "11039-8"},
        {"system": "lab", "code": "CRP"},
        {"system": "lab", "code": "ESR", "display": "sed rate"},
        {"code": "1988-5"},
        {"system": LOINC, "code": ""},
        {"system": LOINC, "code": "1988-5" + "x" * 300},
        {"system": "s" * 300, "code": "z"},
        {"system": LOINC, "code": 1988},
        "not an object",
    ]
)


@st.composite
def _coded_resources(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": draw(st.sampled_from(["Observation", "Observation", "Condition"])),
        "status": "final",
        "code": {"coding": draw(st.lists(_CODINGS, max_size=13))},
    }
    if draw(st.booleans()):
        resource["code"] = draw(st.sampled_from([{}, {"coding": "1988-5"}, None]))
    return resource


@settings(max_examples=800, deadline=None)
@given(st.lists(_coded_resources(), max_size=30), st.booleans())
def test_codes_found_by_the_mapper_are_the_codes_read_here_again(
    resources: list[dict[str, Any]], as_bytes: bool
) -> None:
    """The audit's list from the mapper's ``unread`` is the one of reading every
    Observation again, typed (bytes) or dicts, past MAX_CODINGS and MAX_CHARS too."""
    items = [
        read_resource(Raw(orjson.dumps(r))) if as_bytes else orjson.loads(orjson.dumps(r))
        for r in resources
    ]
    unread: list[Any] = []
    map_observations(items, VS, MappingOptions(), unread=unread)
    told = codes_not_recognised([], items, VS, unread_observations=unread)
    assert told == codes_not_recognised([], items, VS)


@settings(max_examples=400, deadline=None)
@given(st.lists(_coded_resources(), max_size=10))
def test_the_list_is_the_same_for_observations_typed_or_as_dicts(
    resources: list[dict[str, Any]],
) -> None:
    """One reading of the codings (wire.codings): the bytes' typed decode and the dict
    give the same pairs, cut and bounded alike."""
    typed = [read_resource(Raw(orjson.dumps(r))) for r in resources]
    dicts = [orjson.loads(orjson.dumps(r)) for r in resources]
    assert codes_not_recognised([], typed, VS) == codes_not_recognised([], dicts, VS)


def test_a_known_code_past_the_first_codings_is_listed_as_before() -> None:
    """The mapper reads a known code anywhere; this list checks the first MAX_CODINGS, as
    it did before the mapper told it what it read."""
    codings = [{"system": "lab", "code": str(i)} for i in range(MAX_CODINGS)]
    late = {
        "resourceType": "Observation",
        "code": {"coding": [*codings, {"system": LOINC, "code": "1988-5"}]},
    }
    items = [read_resource(Raw(orjson.dumps(late)))]
    unread: list[Any] = []
    map_observations(items, VS, MappingOptions(), unread=unread)
    assert unread == []
    listed = codes_not_recognised([], items, VS, unread_observations=unread)
    assert listed == {"Observation": [["lab", str(i)] for i in range(MAX_CODINGS)]}


def test_a_site_code_longer_than_is_kept_is_listed_as_before() -> None:
    """A value set may hold a code longer than MAX_CHARS: this list reads it cut, as it
    did before the mapper told it what it read, so such an Observation is still listed."""
    long_code = "9" * (MAX_CHARS + 5)
    crp = VS.observations[(LOINC, "1988-5")]
    site = replace(
        VS,
        observations={**VS.observations, ("lab", long_code): replace(crp, code=long_code)},
    )
    resource = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "lab", "code": long_code}]},
    }
    items = [read_resource(Raw(orjson.dumps(resource)))]
    unread: list[Any] = []
    map_observations(items, site, MappingOptions(), unread=unread)
    assert unread == []
    listed = codes_not_recognised([], items, site, unread_observations=unread)
    assert listed == {"Observation": [["lab", long_code[:MAX_CHARS]]]}
