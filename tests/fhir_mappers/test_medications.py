"""Antibiotic orders -> treatment starts (clinical-rules.md 'T0', 'Antibiotic orders')."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappers.antibiotics import Antibiotics, build_antibiotics
from fhir_mappers.medications import AUTHORED_ON, BOUNDS_START, map_antibiotic_orders
from fhir_mappers.model import (
    ORDER_DATED_FROM_AUTHORED_ON,
    ORDER_NOT_COUNTED,
    ORDER_UNDATED,
    AntibioticStart,
    DataIssue,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
LOCAL = "http://example.org/local-formulary"  # synthetic, in no value set

SHIPPED: dict[str, Any] = json.loads(
    resources.files("cds_service.valuesets").joinpath("antibiotics.json").read_text("utf-8")
)
AB = build_antibiotics([("antibiotics.json", SHIPPED)])

# The ingredients clinical-rules.md lists, with the RxNorm codes confirmed on 2026-12-06
# (None: none confirmed, matched by name only). Pinned so that a typo in the file fails.
EXPECTED_CODES = {
    "vancomycin": {"11124"},
    "cefazolin": {"2180"},
    "ceftriaxone": {"2193"},
    "cefepime": {"20481"},
    "ceftazidime": {"2191"},
    "cefuroxime": {"2194"},
    "ceftaroline": {"1040004"},
    "nafcillin": {"7233"},
    "oxacillin": {"7773"},
    "cloxacillin": None,
    "flucloxacillin": None,
    "penicillin G": {"7980"},
    "ampicillin": {"733"},
    "amoxicillin": {"723"},
    "amoxicillin-clavulanate": {"48203"},
    "piperacillin-tazobactam": {"8339", "74169"},
    "ertapenem": {"325642"},
    "meropenem": {"29561"},
    "daptomycin": {"22299"},
    "linezolid": {"190376"},
    "clindamycin": {"2582"},
    "levofloxacin": {"82122"},
    "ciprofloxacin": {"2551"},
    "moxifloxacin": {"139462"},
    "rifampin": {"9384"},
    "trimethoprim-sulfamethoxazole": {"10180", "10829", "10831"},
    "doxycycline": {"3640"},
    "metronidazole": {"6922"},
    "gentamicin": {"1596450"},
    "dalbavancin": {"1539239"},
}


def order(
    oid: str = "o1",
    text: str | None = "vancomycin 1000 MG Injection",
    *,
    status: Any = "active",
    intent: Any = "order",
    authored: Any = "2026-11-07T09:30:00+01:00",
    start: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": oid,
        "status": status,
        "intent": intent,
        "subject": {"reference": "Patient/p1"},
    }
    if text is not None:
        resource["medicationCodeableConcept"] = {"text": text}
    if authored is not None:
        resource["authoredOn"] = authored
    if start is not None:
        resource["dosageInstruction"] = [{"timing": {"repeat": {"boundsPeriod": {"start": start}}}}]
    resource.update(extra)
    return resource


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return {"coding": [coding]}


def run(
    *items: Any, antibiotics: Antibiotics = AB
) -> tuple[list[AntibioticStart], list[DataIssue]]:
    starts, issues = map_antibiotic_orders(list(items), antibiotics)
    return list(starts), list(issues)


def one(resource: dict[str, Any]) -> AntibioticStart:
    starts, issues = run(resource)
    assert issues == []
    (start,) = starts
    return start


def skipped(resource: dict[str, Any]) -> DataIssue:
    starts, issues = run(resource)
    assert starts == []
    (issue,) = issues
    return issue


# --- the shipped value set -------------------------------------------------------------


def test_the_shipped_file_lists_exactly_the_ingredients_of_the_rules_with_their_codes() -> None:
    entries = {entry["name"]: entry for entry in SHIPPED["entries"]}
    assert set(entries) == set(EXPECTED_CODES)
    for name, codes in EXPECTED_CODES.items():
        listed = entries[name]["rxnorm"]
        if codes is None:
            assert listed is None
            assert "no RxNorm code confirmed" in entries[name]["note"]
        else:
            assert {item["code"] for item in listed} == codes


def test_the_shipped_file_says_where_and_when_its_codes_were_checked() -> None:
    assert "2026-12-06" in SHIPPED["source"]
    assert "RxNorm" in SHIPPED["source"]
    assert SHIPPED["atc"] == {"system": ATC, "prefixes": ["J01"], "codes": ["J04AB02"]}


@pytest.mark.parametrize(
    "name, code", [(n, c) for n, codes in EXPECTED_CODES.items() for c in sorted(codes or ())]
)
def test_every_rxnorm_code_alone_identifies_its_ingredient(name: str, code: str) -> None:
    resource = order(text=None, medicationCodeableConcept=concept(RXNORM, code))
    assert one(resource).name == name


@pytest.mark.parametrize(
    "words, name",
    [
        ("vancomycin", "vancomycin"),
        ("Rifampicin 600 mg capsule", "rifampin"),
        ("RIFAMPIN 300 MG Oral Capsule", "rifampin"),
        ("co-trimoxazole 960 mg tablet", "trimethoprim-sulfamethoxazole"),
        (
            "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet",
            "trimethoprim-sulfamethoxazole",
        ),
        ("Benzylpenicillin 2.4 g IV", "penicillin G"),
        ("penicillin G potassium 5000000 UNT Injection", "penicillin G"),
        ("Flucloxacillin 2 g IV", "flucloxacillin"),
        ("floxacillin 500 mg", "flucloxacillin"),
        ("Cloxacillin 2 g IV q4h", "cloxacillin"),
        ("ceftaroline fosamil 600 MG Injection", "ceftaroline"),
        ("amoxicillin 875 MG / clavulanate 125 MG Oral Tablet", "amoxicillin-clavulanate"),
        ("amoxicillin 500 MG Oral Capsule", "amoxicillin"),
        ("co-amoxiclav 625 mg", "amoxicillin-clavulanate"),
        ("piperacillin 4000 MG / tazobactam 500 MG Injection", "piperacillin-tazobactam"),
        ("gentamicin 40 MG/ML Injectable Solution", "gentamicin"),
        ("dalbavancin 500 MG Injection", "dalbavancin"),
    ],
)
def test_a_drug_is_known_by_the_words_of_its_ingredient(words: str, name: str) -> None:
    assert one(order(text=words)).name == name


def test_an_rxnorm_clinical_drug_is_known_by_its_display() -> None:
    # 1807508 is a clinical drug, not an ingredient: the display names vancomycin.
    medication = concept(RXNORM, "1807508", "vancomycin 1000 MG Injection")
    start = one(order(text=None, medicationCodeableConcept=medication))
    assert start.name == "vancomycin"
    assert start.reference == "MedicationRequest/o1"


def test_a_local_code_is_known_by_its_display_in_any_case() -> None:
    medication = concept(LOCAL, "ABX-77", "CEFAZOLIN 2 G IN DEXTROSE")
    assert one(order(text=None, medicationCodeableConcept=medication)).name == "cefazolin"


@pytest.mark.parametrize(
    "text",
    [
        "penicillin 500 mg",  # penicillin without G: not the listed ingredient
        "vancomycinX",  # inside a longer word
        "xcefazolin 1 g",
        "tazobactam 500 MG",  # alone it also names ceftolozane / tazobactam
        "ceftolozane 1000 MG / tazobactam 500 MG Injection",  # not in the list
        "atorvastatin 40 MG Oral Tablet",
    ],
)
def test_words_match_whole_words_of_the_listed_ingredients_only(text: str) -> None:
    assert run(order(text=text)) == ([], [])


# --- what is not ours: silently out ----------------------------------------------------


def test_a_statin_is_not_our_data_and_leaves_no_trace() -> None:
    statin = order(
        text=None,
        medicationCodeableConcept=concept(RXNORM, "617312", "atorvastatin 40 MG Oral Tablet"),
    )
    cancelled_statin = order("o2", "simvastatin 20 MG", status="cancelled", authored=None)
    assert run(statin, cancelled_statin) == ([], [])


def test_a_cancelled_order_of_an_unknown_medication_is_not_reported() -> None:
    lost = order(text=None, status="cancelled", medicationReference={"reference": "Medication/x"})
    assert run(lost) == ([], [])


# --- status, intent, doNotPerform -------------------------------------------------------


@pytest.mark.parametrize("status", ["active", "completed", "stopped"])
def test_the_statuses_that_count(status: str) -> None:
    assert one(order(status=status)).name == "vancomycin"


@pytest.mark.parametrize("status", ["draft", "cancelled", "entered-in-error", "on-hold", "unknown"])
def test_other_statuses_are_reported_not_counted(status: str) -> None:
    issue = skipped(order(text="ceftriaxone 2 G Injection", status=status))
    assert issue.reference == "MedicationRequest/o1"
    assert issue.kind == "antibiotic"
    assert issue.plain == f"ceftriaxone order marked {status}"
    assert issue.code == ORDER_NOT_COUNTED
    assert repr(status) in issue.reason


@pytest.mark.parametrize("status", [None, "", 3, ["active"]])
def test_a_missing_or_malformed_status_is_reported(status: Any) -> None:
    issue = skipped(order(status=status))
    assert issue.plain == "vancomycin order without a status"


@pytest.mark.parametrize("intent", ["order", "plan", "original-order"])
def test_the_intents_that_count(intent: str) -> None:
    assert one(order(intent=intent)).name == "vancomycin"


@pytest.mark.parametrize(
    "intent", ["proposal", "reflex-order", "filler-order", "instance-order", "option"]
)
def test_other_intents_are_reported_not_counted(intent: str) -> None:
    issue = skipped(order(intent=intent))
    assert issue.plain == f"vancomycin {intent}, not an order"
    assert issue.kind == "antibiotic"


@pytest.mark.parametrize("intent", [None, {"code": "order"}])
def test_a_missing_or_malformed_intent_is_reported(intent: Any) -> None:
    assert skipped(order(intent=intent)).plain == "vancomycin order without an intent"


def test_an_order_not_to_give_the_antibiotic_does_not_count() -> None:
    issue = skipped(order(doNotPerform=True))
    assert issue.plain == "order not to give vancomycin"
    assert one(order(doNotPerform=False)).name == "vancomycin"


def test_a_malformed_do_not_perform_is_not_read_as_an_order_to_give() -> None:
    issue = skipped(order(doNotPerform="true"))
    assert "doNotPerform" in issue.reason


# --- the start ------------------------------------------------------------------------


def test_the_start_is_the_first_dosage_bounds_start() -> None:
    start = one(order(start="2026-11-05T08:00:00-05:00", authored="2026-11-04T20:00:00Z"))
    assert start.source == BOUNDS_START == "boundsPeriod.start"
    assert start.when.day == date(2026, 11, 5)
    assert start.when.instant == datetime(2026, 11, 5, 13, 0, tzinfo=UTC)
    assert start.when.instant.utcoffset() == timedelta(hours=-5)


def test_without_bounds_the_start_is_authored_on() -> None:
    start = one(order(authored="2026-11-07T09:30:00+01:00"))
    assert start.source == AUTHORED_ON == "authoredOn"
    assert start.when.instant == datetime(2026, 11, 7, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    assert not start.when.date_only


def test_a_date_only_start_is_that_day() -> None:
    start = one(order(start="2026-11-05", authored=None))
    assert (start.when.day, start.when.date_only) == (date(2026, 11, 5), True)


def test_only_the_first_dosage_instruction_gives_the_start() -> None:
    resource = order(authored="2026-11-07")
    resource["dosageInstruction"] = [
        {"text": "1 g IV q12h"},
        {"timing": {"repeat": {"boundsPeriod": {"start": "2026-11-01"}}}},
    ]
    start = one(resource)
    assert (start.source, start.when.day) == (AUTHORED_ON, date(2026, 11, 7))


def test_bounds_without_a_start_fall_back_to_authored_on_silently() -> None:
    resource = order(authored="2026-11-07")
    resource["dosageInstruction"] = [
        {"timing": {"repeat": {"boundsPeriod": {"end": "2026-12-19"}}}}
    ]
    assert one(resource).source == AUTHORED_ON


@pytest.mark.parametrize(
    "dosage",
    [
        {"timing": {"repeat": {"boundsPeriod": {"start": "5 Nov 2026"}}}},  # not a FHIR date
        {"timing": {"repeat": {"boundsPeriod": {"start": 20261105}}}},  # not a string
        {"timing": {"repeat": {"boundsPeriod": "2026-11-05"}}},  # not an object
        {"timing": ["2026-11-05"]},
    ],
)
def test_an_unreadable_bounds_start_falls_back_to_authored_on_and_says_so(dosage: Any) -> None:
    starts, issues = run(order(authored="2026-11-07", dosageInstruction=[dosage]))
    (start,) = starts
    assert (start.source, start.when.day) == (AUTHORED_ON, date(2026, 11, 7))
    (issue,) = issues
    assert "boundsPeriod.start not read" in issue.reason
    assert issue.plain == "vancomycin order start date unreadable; the order date was used"
    assert issue.code == ORDER_DATED_FROM_AUTHORED_ON  # counted, and said so


def test_a_dosage_instruction_that_is_not_a_list_is_reported() -> None:
    starts, issues = run(order(authored="2026-11-07", dosageInstruction={"timing": {}}))
    assert [s.source for s in starts] == [AUTHORED_ON]
    assert [i.kind for i in issues] == ["antibiotic"]


def test_an_order_without_any_start_is_reported() -> None:
    issue = skipped(order(authored=None))
    assert issue.plain == "vancomycin order without a start date"
    assert "authoredOn" in issue.reason
    assert issue.code == ORDER_UNDATED


@pytest.mark.parametrize("authored", ["yesterday", 20261107, "2026-13-01"])
def test_an_unreadable_authored_on_without_bounds_is_reported(authored: Any) -> None:
    issue = skipped(order(authored=authored))
    assert issue.plain == "vancomycin order with an unreadable start date"
    assert issue.code == ORDER_UNDATED


def test_both_dates_unreadable_is_one_issue_naming_both() -> None:
    issue = skipped(order(start="soon", authored="later"))
    assert "boundsPeriod.start" in issue.reason and "authoredOn" in issue.reason


def test_starts_come_earliest_first() -> None:
    late = order("late", authored="2026-11-20")
    early = order("early", "cefazolin 2 G", start="2026-11-02T23:00:00-03:00")
    middle = order("middle", "rifampin 300 MG", authored="2026-11-03T01:00:00Z")
    starts, _ = run(late, early, middle)
    assert [s.reference for s in starts] == [
        "MedicationRequest/middle",
        "MedicationRequest/early",
        "MedicationRequest/late",
    ]


# --- the shapes of the medication -------------------------------------------------------


def test_a_contained_medication() -> None:
    resource = order(text=None, medicationReference={"reference": "#med"})
    resource["contained"] = [
        {"resourceType": "Organization", "id": "other", "name": "vancomycin supplier"},
        {"resourceType": "Medication", "id": "med", "code": concept(RXNORM, "2193")},
    ]
    assert one(resource).name == "ceftriaxone"


def test_a_contained_resource_of_another_type_is_not_the_medication() -> None:
    resource = order(text=None, medicationReference={"reference": "#med"})
    resource["contained"] = [{"resourceType": "Organization", "id": "med", "name": "vancomycin"}]
    starts, issues = run(resource)
    assert starts == []
    (issue,) = issues
    assert issue.plain == "medication order whose drug could not be read"
    assert issue.code == ORDER_NOT_COUNTED  # it would count, were it an antibiotic
    assert "'#med'" in issue.reason


@pytest.mark.parametrize(
    "target",
    [
        "Medication/m1",
        "https://ehr.example.org/fhir/Medication/m1",
        "Medication/m1/_history/3",
    ],
)
def test_a_medication_read_with_include(target: str) -> None:
    medication = {
        "resourceType": "Medication",
        "id": "m1",
        "code": concept(LOCAL, "17", "Daptomycin 500 mg vial"),
    }
    resource = order(text=None, medicationReference={"reference": target})
    starts, issues = run(resource, medication)
    assert issues == []
    assert [(s.reference, s.name) for s in starts] == [("MedicationRequest/o1", "daptomycin")]


def test_a_medication_is_read_by_its_ingredients_too() -> None:
    medication = {
        "resourceType": "Medication",
        "id": "m2",
        "code": {"text": "Pharmacy compounded bag 250 mL"},
        "ingredient": [{"itemCodeableConcept": concept(RXNORM, "29561", "meropenem")}],
    }
    resource = order(text=None, medicationReference={"reference": "Medication/m2"})
    assert run(medication, resource)[0][0].name == "meropenem"


def test_a_reference_display_is_read_when_the_medication_is_not_there() -> None:
    resource = order(
        text=None,
        medicationReference={"reference": "Medication/absent", "display": "Linezolid 600 mg"},
    )
    assert one(resource).name == "linezolid"


def test_an_unresolved_medication_of_a_countable_order_is_reported() -> None:
    resource = order(text=None, medicationReference={"reference": "Medication/absent"})
    issue = skipped(resource)
    assert issue.kind is None
    assert "whether it is an antibiotic is unknown" in issue.reason


@pytest.mark.parametrize(
    "shape",
    [
        {"medicationCodeableConcept": "vancomycin"},
        {"medicationReference": "Medication/m1"},
        {"medicationReference": {"reference": 7}},
        {},
    ],
)
def test_a_medication_that_cannot_be_read_is_reported(shape: dict[str, Any]) -> None:
    resource = order(text=None, **shape)
    issue = skipped(resource)
    assert issue.plain == "medication order whose drug could not be read"


def test_the_medication_resources_themselves_are_not_orders() -> None:
    medication = {"resourceType": "Medication", "id": "m1", "code": concept(RXNORM, "11124")}
    assert run(medication) == ([], [])


# --- ATC --------------------------------------------------------------------------------


def test_an_atc_code_under_j01_is_an_antibacterial() -> None:
    medication = concept(ATC, "J01XX08", "linezolid")
    assert one(order(text=None, medicationCodeableConcept=medication)).name == "linezolid"


def test_an_atc_only_antibacterial_outside_the_list_is_named_by_its_display() -> None:
    medication = concept(ATC, "J01FA10", "azithromycin")
    assert one(order(text=None, medicationCodeableConcept=medication)).name == "azithromycin"


def test_an_atc_code_without_a_display_is_named_by_the_code() -> None:
    medication = concept(ATC, " j01dh02 ")
    start = one(order(text=None, medicationCodeableConcept=medication))
    assert start.name == "an antibacterial (ATC j01dh02)"


def test_rxnorm_and_atc_given_by_their_hl7_oids_are_read_as_rxnorm_and_atc() -> None:
    """An interface that writes code systems by OID (HL7 Terminology's External Code
    Systems: RxNorm 2.16.840.1.113883.6.88, WHO ATC 2.16.840.1.113883.6.73)."""
    rxnorm = concept("urn:oid:2.16.840.1.113883.6.88", "11124")
    assert one(order(text=None, medicationCodeableConcept=rxnorm)).name == "vancomycin"
    atc = concept("urn:oid:2.16.840.1.113883.6.73", "J01FA10", "azithromycin")
    assert one(order(text=None, medicationCodeableConcept=atc)).name == "azithromycin"


def test_rifampicin_by_its_atc_code() -> None:
    medication = concept(ATC, "J04AB02")
    assert one(order(text=None, medicationCodeableConcept=medication)).name.endswith("J04AB02)")


@pytest.mark.parametrize(
    "system, code",
    [
        (ATC, "J04AB04"),  # rifabutin: not the listed rifamycin
        (ATC, "J02AC01"),  # fluconazole: an antifungal
        (ATC, "D06AX09"),  # mupirocin: topical
        (LOCAL, "J01XA01"),  # an ATC-looking code of another system
    ],
)
def test_other_atc_codes_are_not_antibacterials(system: str, code: str) -> None:
    assert run(order(text=None, medicationCodeableConcept=concept(system, code))) == ([], [])


# --- systemic or not --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, found",
    [
        ("gentamicin 3 MG/ML Ophthalmic Solution", "ophthalmic"),
        ("clindamycin 10 MG/ML Topical Gel", "topical"),
        ("metronidazole 7.5 MG/ML Vaginal Gel", "vaginal"),
        ("Gentamicin bone cement 40 g", "cement"),
        ("ciprofloxacin 0.3% ear drops", "ear"),
    ],
)
def test_a_non_systemic_form_is_reported_not_counted(text: str, found: str) -> None:
    issue = skipped(order(text=text))
    assert issue.kind == "antibiotic"
    assert f"({found})" in (issue.plain or "")
    assert issue.code == ORDER_NOT_COUNTED


def test_a_non_systemic_route_is_reported_not_counted() -> None:
    dosage = [{"route": concept(SNOMED, "54485002", "Ophthalmic route")}]
    issue = skipped(order(text="moxifloxacin 5 MG/ML", dosageInstruction=dosage))
    assert "(ophthalmic)" in (issue.plain or "")


@pytest.mark.parametrize(
    "resource",
    [
        order(text="vancomycin 125 MG Oral Capsule"),
        order(dosageInstruction=[{"route": {"text": "PO"}}]),
        order(dosageInstruction=[{"route": concept(SNOMED, "26643006", "Oral route")}]),
    ],
)
def test_vancomycin_by_mouth_does_not_count(resource: dict[str, Any]) -> None:
    issue = skipped(resource)
    assert (issue.plain or "").startswith("vancomycin by a route that does not reach")


def test_other_drugs_by_mouth_count() -> None:
    dosage = [{"route": concept(SNOMED, "26643006", "Oral route")}]
    assert one(order(text="metronidazole 500 MG Oral Tablet", dosageInstruction=dosage)).name == (
        "metronidazole"
    )


def test_intravenous_vancomycin_counts_whatever_the_dosage_text_says() -> None:
    dosage = [
        {
            "text": "1 g IV q12h; watch the skin for a rash; oral intake as tolerated",
            "route": concept(SNOMED, "47625008", "Intravenous route"),
        }
    ]
    assert one(order(dosageInstruction=dosage)).name == "vancomycin"


# --- odd input never raises -----------------------------------------------------------


def test_items_that_are_not_orders_are_reported() -> None:
    outcome = {"resourceType": "OperationOutcome", "id": "oo"}
    starts, issues = run("MedicationRequest/1", 42, None, outcome, order())
    assert [s.reference for s in starts] == ["MedicationRequest/o1"]
    assert [i.reference for i in issues] == ["#0", "#1", "#2", "OperationOutcome/oo"]


def test_an_order_without_an_id_is_named_by_its_position() -> None:
    resource = order()
    del resource["id"]
    starts, _ = run({"resourceType": "Medication", "id": "m"}, resource)
    assert starts[0].reference == "MedicationRequest/#1"


@pytest.mark.parametrize("given_input", [None, 5, "MedicationRequest", b"{}"])
def test_input_that_is_not_a_list_never_raises(given_input: Any) -> None:
    starts, issues = map_antibiotic_orders(given_input, AB)
    assert starts == ()
    assert len(issues) <= 1


def test_one_resource_instead_of_a_list_is_read() -> None:
    starts, _ = map_antibiotic_orders(order(), AB)
    assert [s.name for s in starts] == ["vancomycin"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
ELEMENTS = [
    "status",
    "intent",
    "doNotPerform",
    "authoredOn",
    "dosageInstruction",
    "medicationCodeableConcept",
    "medicationReference",
    "contained",
    "id",
    "resourceType",
]


@settings(max_examples=400, deadline=None)
@given(element=st.sampled_from(ELEMENTS), value=JSON)
def test_any_value_in_an_antibiotic_order_never_raises(element: str, value: Any) -> None:
    resource = order(start="2026-11-05")  # counts as it stands
    resource[element] = value
    starts, issues = map_antibiotic_orders([resource, value], AB)
    assert all(isinstance(s, AntibioticStart) for s in starts)
    assert all(isinstance(i, DataIssue) for i in issues)
    assert len(starts) + len(issues) >= 1  # the order is counted or its skip is said


@settings(max_examples=300, deadline=None)
@given(code=JSON, ingredient=JSON, contained=JSON, link=JSON)
def test_any_medication_shape_never_raises(
    code: Any, ingredient: Any, contained: Any, link: Any
) -> None:
    by_contained = order("c", text=None, medicationReference={"reference": "#m"})
    by_contained["contained"] = [{"resourceType": "Medication", "id": "m", "code": code}, contained]
    by_include = order("i", text=None, medicationReference={"reference": "Medication/m"})
    included = {"resourceType": "Medication", "id": "m", "code": code, "ingredient": ingredient}
    by_odd_link = order("l", text=None, medicationReference=link)
    starts, issues = map_antibiotic_orders([by_contained, by_include, included, by_odd_link], AB)
    assert all(isinstance(s, AntibioticStart) for s in starts)
    assert all(isinstance(i, DataIssue) for i in issues)


@settings(max_examples=200, deadline=None)
@given(
    path=st.lists(st.sampled_from(["timing", "repeat", "boundsPeriod", "start"]), max_size=4),
    value=JSON,
)
def test_any_dosage_shape_never_raises(path: list[str], value: Any) -> None:
    dosage: Any = value
    for key in reversed(path):
        dosage = {key: dosage}
    starts, issues = map_antibiotic_orders([order(dosageInstruction=[dosage])], AB)
    # authoredOn is good, so the order always counts, from one element or the other
    assert [s.source for s in starts] in ([AUTHORED_ON], [BOUNDS_START])
    assert all(i.kind == "antibiotic" for i in issues)


# --- building the value set, and a site's extension --------------------------------------


def site_file(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "valueSet": "antibiotics",
        "source": "site formulary 2026",
        "entries": [],
    }
    data.update(fields)
    return data


def test_a_site_adds_an_ingredient_and_a_word() -> None:
    extra = site_file(
        entries=[
            {"name": "fosfomycin", "rxnorm": None, "words": ["fosfomycin"]},
            {"name": "vancomycin", "rxnorm": None, "words": ["vanco"]},
        ]
    )
    extended = build_antibiotics([("antibiotics.json", SHIPPED), ("site.json", extra)])
    starts, issues = run(
        order("a", "Fosfomycin 4 g IV"), order("b", "VANCO 1.5G IVPB"), antibiotics=extended
    )
    assert issues == []
    assert sorted(s.name for s in starts) == ["fosfomycin", "vancomycin"]
    assert extended.sources["site.json"] == "site formulary 2026"
    # the shipped set alone knows neither word
    assert run(order("a", "Fosfomycin 4 g IV"), order("b", "VANCO 1.5G IVPB")) == ([], [])


def test_a_site_adds_an_rxnorm_code_and_an_atc_code() -> None:
    extra = site_file(
        atc={"system": ATC, "codes": ["J04AB04"]},
        entries=[
            {
                "name": "cefiderocol",
                "rxnorm": [{"code": "2193011", "display": "cefiderocol", "tty": "IN"}],
                "words": ["cefiderocol"],
            }
        ],
    )
    extended = build_antibiotics([("antibiotics.json", SHIPPED), ("site.json", extra)])
    coded = order("a", None, medicationCodeableConcept=concept(RXNORM, "2193011"))
    rifabutin = order("b", None, medicationCodeableConcept=concept(ATC, "J04AB04", "rifabutin"))
    starts, _ = run(coded, rifabutin, antibiotics=extended)
    assert sorted(s.name for s in starts) == ["cefiderocol", "rifabutin"]
    assert extended.is_atc_antibacterial("J01CA04")  # the shipped prefix stays


def test_a_site_extends_the_non_systemic_words() -> None:
    extra = site_file(nonSystemicWords=["intrathecal"])
    extended = build_antibiotics([("antibiotics.json", SHIPPED), ("site.json", extra)])
    resource = order(text="vancomycin intrathecal 10 mg")
    assert run(resource)[0] != []
    assert run(resource, antibiotics=extended)[0] == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            site_file(
                entries=[
                    {
                        "name": "x",
                        "rxnorm": [{"code": "11124", "display": "x", "tty": "IN"}],
                        "words": ["x"],
                    }
                ]
            ),
            "already names 'vancomycin'",
        ),
        (
            site_file(entries=[{"name": "x", "rxnorm": None, "words": ["Vancomycin"]}]),
            "already names 'vancomycin'",
        ),
        (
            # (ATC's own OID, urn:oid:2.16.840.1.113883.6.73, is the same system: not this)
            site_file(atc={"system": "http://example.org/local-atc", "prefixes": ["J01"]}),
            "differs",
        ),
        (site_file(valueSet="conditions"), "'valueSet' must be 'antibiotics'"),
        (site_file(source=""), "'source'"),
        (site_file(entries={}), "'entries' must be a list"),
        (site_file(extra=1), "unknown keys ['extra']"),
        (site_file(entries=["vancomycin"]), "entries[0]: expected an object"),
        (site_file(entries=[{"name": "x", "rxnorm": None, "words": []}]), "at least once"),
        (site_file(entries=[{"name": "x", "rxnorm": None, "words": ["-"]}]), "no letter or digit"),
        (site_file(entries=[{"name": "x", "rxnorm": None, "words": "x"}]), "must be a list"),
        (site_file(entries=[{"name": " x", "rxnorm": None, "words": ["x"]}]), "'name' must be"),
        (
            site_file(entries=[{"name": "x", "rxnorm": [], "words": ["x"]}]),
            "null or a non-empty list",
        ),
        (
            site_file(
                entries=[
                    {
                        "name": "x",
                        "rxnorm": [{"code": "R11", "display": "x", "tty": "IN"}],
                        "words": ["x"],
                    }
                ]
            ),
            "digits only",
        ),
        (
            site_file(
                entries=[
                    {
                        "name": "x",
                        "rxnorm": [{"code": "11", "display": "x", "tty": "SCD"}],
                        "words": ["x"],
                    }
                ]
            ),
            "tty",
        ),
        (
            site_file(
                entries=[{"name": "x", "rxnorm": [{"code": "11", "tty": "IN"}], "words": ["x"]}]
            ),
            "display",
        ),
        (
            site_file(entries=[{"name": "x", "rxnorm": None, "words": ["x"], "route": "oral"}]),
            "unknown keys ['route']",
        ),
        (
            site_file(entries=[{"name": "x", "rxnorm": None, "words": ["x"], "note": 3}]),
            "'note' must be a string",
        ),
    ],
)
def test_a_bad_site_file_is_refused_with_its_name_and_entry(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=r"site\.json") as raised:
        build_antibiotics([("antibiotics.json", SHIPPED), ("site.json", extra)])
    assert message in str(raised.value)


def test_a_value_set_needs_entries_and_an_atc_block() -> None:
    with pytest.raises(ValueError, match="no entries"):
        build_antibiotics([("a.json", site_file(atc={"system": ATC}))])
    without_atc = copy.deepcopy(SHIPPED)
    del without_atc["atc"]
    with pytest.raises(ValueError, match="no 'atc' block"):
        build_antibiotics([("a.json", without_atc)])
    with pytest.raises(ValueError, match="expected a JSON object"):
        build_antibiotics([("a.json", [])])  # type: ignore[list-item]


def test_building_does_not_change_the_parsed_json() -> None:
    before = copy.deepcopy(SHIPPED)
    build_antibiotics([("antibiotics.json", SHIPPED)])
    assert SHIPPED == before
