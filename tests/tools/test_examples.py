"""The synthetic example patients: valid FHIR, self-contained, placed on any date, and
faithful to the worked examples of the design (example-scenarios.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.servicerequest import ServiceRequest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.examples import (
    BASE_DATE,
    BENCHMARK_ORDER_DAY,
    EXPECTED_VALUES,
    Example,
    benchmark_bundle,
    example_keys,
    load_example,
    load_examples,
    shift_dates,
    split_transaction,
)

ORDER_DATE = date(2026, 7, 15)
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
CRP, ESR, PAIN = "1988-5", "4537-7", "72514-3"
CRP_MOLAR = "76485-2"
NVO = "M46.26"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# example-scenarios.md, as data: day -> value per series, the order day and the order code.
# CRP entries are (day, value, unit, status).
SCENARIOS: dict[str, dict[str, Any]] = {
    "e01-improving": {
        "crp": [(0, 142, "mg/L", "final"), (14, 61, "mg/L", "final"), (28, 18, "mg/L", "final")],
        "esr": [(0, 95), (28, 60)],
        "pain": [(0, 8), (14, 5), (28, 3)],
        "order_day": 29,
        "expected": "advise-against",
    },
    # "as E1" with the order on day 27: the data stop at the order (no results from the future).
    "e02-cauda-equina": {
        "crp": [(0, 142, "mg/L", "final"), (14, 61, "mg/L", "final")],
        "esr": [(0, 95)],
        "pain": [(0, 8), (14, 5)],
        "extra_conditions": [("G83.4", 26)],
        "order_day": 27,
        "expected": "support-urgent",
    },
    "e03-plateau": {
        "crp": [(0, 120, "mg/L", "final"), (14, 110, "mg/L", "final"), (28, 105, "mg/L", "final")],
        "pain": [(0, 7), (14, 6), (28, 6)],
        "order_day": 28,
        "expected": "support",
    },
    "e04-crp-rebound": {
        "crp": [(0, 90, "mg/L", "final"), (10, 60, "mg/L", "final"), (21, 95, "mg/L", "final")],
        "pain": [(0, 6), (10, 5), (21, 5)],
        "order_day": 21,
        "expected": "support",
    },
    "e05-mixed-units": {
        "crp": [
            (0, 14.0, "mg/dL", "final"),
            (14, 5.1, "mg/dL", "final"),
            (28, 12, "mg/L", "final"),
        ],
        "pain": [(0, 7), (14, 4), (28, 2)],
        "order_day": 28,
        "expected": "advise-against",
    },
    "e06-single-crp": {
        "crp": [(28, 25, "mg/L", "final")],
        "pain": [(28, 4)],
        "order_day": 28,
        "expected": "insufficient-data",
    },
    "e07-resolved": {"order_day": 180, "expected": "no-card"},
    "e08-tuberculous": {"order_day": None, "expected": "no-card"},
    "e09-brain-mri": {
        "crp": [(0, 142, "mg/L", "final"), (14, 61, "mg/L", "final"), (28, 18, "mg/L", "final")],
        "esr": [(0, 95), (28, 60)],
        "pain": [(0, 8), (14, 5), (28, 3)],
        "order_day": 29,
        "order_code": (LOINC, "24590-2"),
        "expected": "no-card",
    },
    "e10-entered-in-error": {
        "crp": [
            (0, 140, "mg/L", "final"),
            (14, 60, "mg/L", "final"),
            (28, 180, "mg/L", "entered-in-error"),
            (28, 20, "mg/L", "final"),
        ],
        "pain": [(0, 7), (14, 5), (28, 3)],
        "order_day": 28,
        "expected": "advise-against",
    },
}


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return load_examples(ORDER_DATE)


def by_key(examples: list[Example]) -> dict[str, Example]:
    return {e.key: e for e in examples}


def resources(bundle: dict[str, Any], resource_type: str | None = None) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if resource_type is None or e["resource"]["resourceType"] == resource_type
    ]


def walk_references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                yield v
            else:
                yield from walk_references(v)
    elif isinstance(value, list):
        for item in value:
            yield from walk_references(item)


def walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from walk_strings(item)
    elif isinstance(value, str):
        yield value


def local_date(value: str) -> date:
    """The calendar date written in a FHIR date/dateTime (its own offset, not UTC)."""
    return date.fromisoformat(value[:10])


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def has_code(concept: dict[str, Any], system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in concept["coding"])


def nvo_condition(example: Example) -> dict[str, Any]:
    (condition,) = [
        c for c in resources(example.bundle, "Condition") if has_code(c["code"], ICD10CM, NVO)
    ]
    return condition


def episode(example: Example) -> dict[str, Any]:
    """The Condition that starts the episode: the first one in every bundle."""
    return resources(example.bundle, "Condition")[0]


def day_of(example: Example, value: str) -> int:
    onset = local_date(episode(example)["onsetDateTime"])
    return (local_date(value) - onset).days


def series(example: Example, loinc: str) -> list[dict[str, Any]]:
    obs = [o for o in resources(example.bundle, "Observation") if has_code(o["code"], LOINC, loinc)]
    return sorted(obs, key=lambda o: instant(o["effectiveDateTime"]))


def number(observation: dict[str, Any]) -> float:
    if "valueInteger" in observation:
        return float(observation["valueInteger"])
    return float(observation["valueQuantity"]["value"])


# --- validity -----------------------------------------------------------------------------


def test_every_example_is_a_valid_r4b_transaction(examples: list[Example]) -> None:
    assert len(examples) >= 12
    for example in examples:
        parsed = Bundle.model_validate(example.bundle)
        assert parsed.type == "transaction"
        ServiceRequest.model_validate(example.draft_order)


def test_index_lists_valid_metadata(examples: list[Example]) -> None:
    keys = [e.key for e in examples]
    assert keys == example_keys()
    assert len(set(keys)) == len(keys)
    for example in examples:
        assert example.expected in EXPECTED_VALUES, example.key
        assert example.title and example.story and example.why
        assert len(example.title) < 60, example.key
        (patient,) = resources(example.bundle, "Patient")
        assert patient["id"] == example.patient_id
        assert patient["name"][0]["family"] == "Example"


def test_entries_are_puts_to_their_own_ids(examples: list[Example]) -> None:
    for example in examples:
        for entry in example.bundle["entry"]:
            res = entry["resource"]
            assert entry["request"] == {
                "method": "PUT",
                "url": f"{res['resourceType']}/{res['id']}",
            }
            assert res["id"].startswith(example.patient_id)


def test_references_resolve_inside_each_bundle(examples: list[Example]) -> None:
    for example in examples:
        present = {f"{r['resourceType']}/{r['id']}" for r in resources(example.bundle)}
        refs = list(walk_references(example.bundle))
        assert refs, example.key
        assert set(refs) <= present, example.key
        assert example.draft_order["subject"]["reference"] in present


def test_ids_are_unique_across_all_examples(examples: list[Example]) -> None:
    ids = [r["id"] for e in examples for r in resources(e.bundle)]
    ids += [e.draft_order["id"] for e in examples]
    assert len(ids) == len(set(ids))
    patient_ids = [e.patient_id for e in examples]
    assert len(set(patient_ids)) == len(patient_ids)


def test_every_time_carries_an_offset_and_offsets_vary(examples: list[Example]) -> None:
    offsets = set()
    for example in examples:
        for s in walk_strings(example.bundle):
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", s):
                assert re.search(r"(Z|[+-]\d{2}:\d{2})$", s), (example.key, s)
                offsets.add(instant(s).utcoffset())
    assert len(offsets) >= 5


def test_no_result_is_dated_after_its_order(examples: list[Example]) -> None:
    for example in examples:
        ordered = instant(example.draft_order["authoredOn"])
        for obs in resources(example.bundle, "Observation"):
            assert instant(obs["effectiveDateTime"]) < ordered, obs["id"]
            assert instant(obs["issued"]) < ordered, obs["id"]


def test_units_are_ucum(examples: list[Example]) -> None:
    allowed = {CRP: {"mg/L", "mg/dL"}, CRP_MOLAR: {"nmol/L"}, ESR: {"mm/h"}, PAIN: {"{score}"}}
    for example in examples:
        for obs in resources(example.bundle, "Observation"):
            (coding,) = obs["code"]["coding"]
            quantity = obs.get("valueQuantity")
            if quantity is None:
                assert coding["code"] == PAIN and isinstance(obs["valueInteger"], int)
                continue
            assert quantity["system"] == "http://unitsofmeasure.org"
            assert quantity["code"] == quantity["unit"]
            assert quantity["code"] in allowed[coding["code"]], obs["id"]


# --- placing on a date ---------------------------------------------------------------------


@pytest.mark.parametrize("order_date", [date(2026, 1, 1), date(2027, 1, 3), date(2028, 2, 29)])
def test_load_examples_places_orders_and_day_zero(order_date: date) -> None:
    for example in load_examples(order_date):
        assert local_date(example.draft_order["authoredOn"]) == order_date
        assert example.draft_order["status"] == "draft"
        assert example.draft_order["intent"] == "order"
        # day 0 is T0: the first antibiotic order's start when there is one (e18), else
        # the episode onset
        antibiotics = [
            r["authoredOn"]
            for r in resources(example.bundle)
            if r["resourceType"] == "MedicationRequest"
        ]
        start = min(antibiotics) if antibiotics else episode(example)["onsetDateTime"]
        assert local_date(start) == order_date - timedelta(days=example.order_day), example.key


def test_shifted_examples_keep_their_day_offsets() -> None:
    early = {e.key: e for e in load_examples(date(2026, 2, 10))}
    late = {e.key: e for e in load_examples(date(2031, 12, 30))}
    for key, example in early.items():
        pairs = zip(resources(example.bundle), resources(late[key].bundle), strict=True)
        for a, b in pairs:
            for field in ("effectiveDateTime", "onsetDateTime"):
                if field in a:
                    assert day_of(example, a[field]) == day_of(late[key], b[field]), key
                    assert instant(a[field]).utcoffset() == instant(b[field]).utcoffset()


def test_loaded_bundles_are_independent_copies() -> None:
    first = load_example("e01-improving", ORDER_DATE)
    first.bundle["entry"].clear()
    first.bundle["entry"].append({"broken": True})
    again = load_example("e01-improving", ORDER_DATE)
    assert len(again.bundle["entry"]) > 1
    assert all("resource" in e for e in again.bundle["entry"])


def test_unknown_key_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        load_example("e99-nobody", ORDER_DATE)


def test_stored_day_zero_is_the_base_date() -> None:
    raw = json.loads(
        files("cds_service.examples").joinpath("patients", "e01-improving.json").read_text("utf-8")
    )
    (condition,) = resources(raw, "Condition")
    assert local_date(condition["onsetDateTime"]) == BASE_DATE
    assert BASE_DATE == date(2026, 1, 1)
    # Loading on the stored order date moves nothing.
    example = load_example("e01-improving", BASE_DATE + timedelta(days=29))
    assert example.bundle == raw


# --- shift_dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("2026-01-31", 1, "2026-02-01"),
        ("2025-12-31T23:30:00-05:00", 1, "2026-01-01T23:30:00-05:00"),
        ("2026-03-01T00:15:00+09:00", -1, "2026-02-28T00:15:00+09:00"),
        ("2028-02-28T08:00:00Z", 1, "2028-02-29T08:00:00Z"),
        ("2028-03-01", -1, "2028-02-29"),
        ("2026-01-01T10:00:00.123+05:30", 365, "2027-01-01T10:00:00.123+05:30"),
        ("2026-06-15", 0, "2026-06-15"),
        ("2026", 40, "2026"),
        ("2026-03", 40, "2026-03"),
        ("spine-cds-e1-crp-d14", 3, "spine-cds-e1-crp-d14"),
        ("72514-3", 3, "72514-3"),
        ("2026-02-30", 1, "2026-02-30"),
    ],
)
def test_shift_dates_strings(value: str, days: int, expected: str) -> None:
    assert shift_dates(value, days) == expected


def test_shift_dates_is_pure_and_walks_nested_values() -> None:
    original = {
        "resourceType": "Observation",
        "effectiveDateTime": "2026-01-31T08:00:00+01:00",
        "component": [{"valuePeriod": {"start": "2026-01-30", "end": "2026-02-01"}}],
        "valueInteger": 4,
        "status": "final",
    }
    snapshot = json.loads(json.dumps(original))
    moved = shift_dates(original, 30)
    assert original == snapshot
    assert moved["effectiveDateTime"] == "2026-03-02T08:00:00+01:00"
    assert moved["component"][0]["valuePeriod"] == {"start": "2026-03-01", "end": "2026-03-03"}
    assert moved["valueInteger"] == 4
    assert moved["status"] == "final"
    unmoved = shift_dates(original, 0)
    assert unmoved == original
    assert unmoved is not original
    assert unmoved["component"] is not original["component"]


OFFSETS = st.sampled_from(["Z", "+00:00", "+01:00", "-05:00", "+05:30", "-09:30", "+14:00"])


@given(
    start=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)),
    days=st.integers(min_value=-20000, max_value=20000),
    offset=OFFSETS,
)
def test_shift_dates_moves_instants_by_whole_days(start: datetime, days: int, offset: str) -> None:
    text = start.strftime("%Y-%m-%dT%H:%M:%S") + offset
    expected_day = start.date() + timedelta(days=days)
    moved = shift_dates(text, days)
    assert moved.endswith(offset)
    assert moved[10:] == text[10:]
    before, after = instant(text), instant(moved)
    assert after - before == timedelta(days=days)
    assert after.utcoffset() == before.utcoffset()
    assert local_date(moved) == expected_day
    date_only = shift_dates(text[:10], days)
    assert date_only == expected_day.isoformat()


# --- faithful to example-scenarios.md ----------------------------------------------------


@pytest.mark.parametrize("key", sorted(SCENARIOS))
def test_data_match_the_scenario_table(examples: list[Example], key: str) -> None:
    example = by_key(examples)[key]
    scenario = SCENARIOS[key]
    assert example.expected == scenario["expected"]
    if scenario["order_day"] is not None:
        assert example.order_day == scenario["order_day"]
    system, code = scenario.get("order_code", (CPT, "72158"))
    assert has_code(example.draft_order["code"], system, code)
    if "crp" not in scenario:
        return
    crp = [
        (
            day_of(example, o["effectiveDateTime"]),
            number(o),
            o["valueQuantity"]["code"],
            o["status"],
        )
        for o in series(example, CRP)
    ]
    assert sorted(crp, key=lambda t: (t[0], t[3])) == sorted(
        scenario["crp"], key=lambda t: (t[0], t[3])
    )
    pain = [(day_of(example, o["effectiveDateTime"]), number(o)) for o in series(example, PAIN)]
    assert pain == scenario["pain"]
    esr = [(day_of(example, o["effectiveDateTime"]), number(o)) for o in series(example, ESR)]
    assert esr == scenario.get("esr", [])
    condition = nvo_condition(example)
    assert condition is episode(example)
    assert has_code(condition["clinicalStatus"], CLINICAL, "active")
    assert has_code(condition["verificationStatus"], VER_STATUS, "confirmed")
    extra = [
        (c["code"]["coding"][0]["code"], day_of(example, c["onsetDateTime"]))
        for c in resources(example.bundle, "Condition")
        if c is not condition
    ]
    assert extra == scenario.get("extra_conditions", [])


def test_e10_error_value_is_the_latest_by_time(examples: list[Example]) -> None:
    # A reader that ignored status would take 180 mg/L as the latest CRP: the case bites.
    latest = series(by_key(examples)["e10-entered-in-error"], CRP)[-1]
    assert latest["status"] == "entered-in-error"
    assert number(latest) == 180


def test_e07_episode_resolved_on_day_75(examples: list[Example]) -> None:
    example = by_key(examples)["e07-resolved"]
    (condition,) = resources(example.bundle, "Condition")
    assert has_code(condition["clinicalStatus"], CLINICAL, "resolved")
    assert day_of(example, condition["abatementDateTime"]) == 75
    assert len(condition["abatementDateTime"]) == 10  # date precision survives the shift


def test_e08_has_only_tuberculosis_of_spine(examples: list[Example]) -> None:
    example = by_key(examples)["e08-tuberculous"]
    conditions = resources(example.bundle, "Condition")
    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["A18.01"]
    assert has_code(conditions[0]["clinicalStatus"], CLINICAL, "active")


def test_e09_has_e1s_data(examples: list[Example]) -> None:
    e1, e9 = by_key(examples)["e01-improving"], by_key(examples)["e09-brain-mri"]
    for loinc in (CRP, ESR, PAIN):
        days_e1 = [(day_of(e1, o["effectiveDateTime"]), number(o)) for o in series(e1, loinc)]
        days_e9 = [(day_of(e9, o["effectiveDateTime"]), number(o)) for o in series(e9, loinc)]
        assert days_e1 == days_e9


def test_extra_patients_tell_their_story(examples: list[Example]) -> None:
    ex = by_key(examples)
    abscess = ex["e11-epidural-abscess"]
    (g061,) = [
        c for c in resources(abscess.bundle, "Condition") if has_code(c["code"], ICD10CM, "G06.1")
    ]
    assert 0 < day_of(abscess, g061["onsetDateTime"]) < abscess.order_day
    assert abscess.expected == "support"
    crp = [number(o) for o in series(abscess, CRP)]
    assert crp == sorted(crp, reverse=True)  # falling: only the complication calls for imaging

    worse = ex["e12-pain-worse"]
    assert worse.expected == "support"
    pain = [number(o) for o in series(worse, PAIN)]
    assert pain[-1] - min(pain) >= 2
    assert pain[-1] <= pain[0]  # without the pain-worse rule this would look stable
    crp = [number(o) for o in series(worse, CRP)]
    assert crp == sorted(crp, reverse=True)
    assert crp[-1] <= 0.75 * crp[0]


# --- benchmark patient ---------------------------------------------------------------------


def test_benchmark_bundle_shape() -> None:
    bundle = benchmark_bundle("bench-7", n_observations=200, n_conditions=10)
    Bundle.model_validate(bundle)
    assert len(resources(bundle, "Patient")) == 1
    assert len(resources(bundle, "Observation")) == 200
    conditions = resources(bundle, "Condition")
    assert len(conditions) == 10
    assert sum(has_code(c["code"], ICD10CM, NVO) for c in conditions) == 1
    ids = [r["id"] for r in resources(bundle)]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("bench-7") for i in ids)
    assert set(walk_references(bundle)) == {"Patient/bench-7"}
    codes = {o["code"]["coding"][0]["code"] for o in resources(bundle, "Observation")}
    assert codes == {CRP, ESR, PAIN}
    assert benchmark_bundle("bench-7") == bundle


def test_benchmark_trends_fall_and_precede_the_order() -> None:
    bundle = benchmark_bundle("bench-1", n_observations=300, n_conditions=25)
    order = datetime.combine(
        BASE_DATE + timedelta(days=BENCHMARK_ORDER_DAY), datetime.min.time(), UTC
    )
    for loinc in (CRP, ESR, PAIN):
        obs = sorted(
            (
                o
                for o in resources(bundle, "Observation")
                if o["code"]["coding"][0]["code"] == loinc
            ),
            key=lambda o: instant(o["effectiveDateTime"]),
        )
        values = [number(o) for o in obs]
        assert values == sorted(values, reverse=True), loinc
        assert values[-1] < values[0]
        assert all(instant(o["effectiveDateTime"]) < order for o in obs)
        assert all(instant(o["effectiveDateTime"]).date() >= BASE_DATE for o in obs)
    assert len(resources(bundle, "Condition")) == 25


def test_split_transaction_keeps_order_and_size() -> None:
    bundle = benchmark_bundle("bench-2", n_observations=120)
    parts = split_transaction(bundle, max_entries=50)
    assert [len(p["entry"]) for p in parts] == [50, 50, 31]
    assert [e for p in parts for e in p["entry"]] == bundle["entry"]
    assert parts[0]["entry"][0]["resource"]["resourceType"] == "Patient"
    for part in parts:
        assert Bundle.model_validate(part).type == "transaction"


def test_patients_of_the_2026_11_28_revision_tell_their_story(examples: list[Example]) -> None:
    """Each rule change of the revised clinical rules has a patient on both data paths."""
    ex = by_key(examples)
    molar = ex["e13-molar-crp"]
    assert series(molar, CRP) == [] and len(series(molar, CRP_MOLAR)) == 3
    normal = ex["e14-normal-crp"]
    crp = [number(o) for o in series(normal, CRP)]
    assert max(crp) < 10 and crp[-1] > crp[-2]  # a "rise" within the normal range
    tb = ex["e15-tb-beside-pyogenic"]
    codes = {c["code"]["coding"][0]["code"] for c in resources(tb.bundle, "Condition")}
    assert codes == {"M46.26", "A18.01"} and tb.expected == "no-card"
    stale = ex["e16-stale-crp"]
    assert stale.order_day - day_of(stale, series(stale, CRP)[-1]["effectiveDateTime"]) == 9
    ct = ex["e17-ct-cauda-equina"]
    assert has_code(ct.draft_order["code"], CPT, "72131") and ct.expected == "support-urgent"
