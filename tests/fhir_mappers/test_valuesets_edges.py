"""build_value_sets on a site's own files: every field read as written, exact and prefix
entries kept apart, and error messages a site can act on.

valuesets.py's contract: a site extends the code lists with its own JSON files; each
entry is read into an entry record (code, display, whether it is verified, the file it
came from, for the audit and the cards) and a bad file is refused with a ValueError that
names the file, the entry and what is wrong. The shipped lists are tested in
test_valuesets.py; here each test builds its own lists, so what is checked is the
building itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.valuesets import load_value_sets
from fhir_mappers.model import ConditionCategory, Modality
from fhir_mappers.valuesets import (
    ICD10CM,
    LOINC,
    ConditionEntry,
    ImagingEntry,
    ObservationEntry,
    ObservationKind,
    build_value_sets,
)

SITE = "http://example.org/site-codes"  # synthetic site codes


def file(value_set: str, *entries: Any, source: str = "site list (test)") -> dict[str, Any]:
    return {"valueSet": value_set, "source": source, "entries": list(entries)}


def imaging(**changes: Any) -> dict[str, Any]:
    entry = {
        "system": SITE,
        "code": "MR-L",
        "display": "MRI lumbar spine",
        "modality": "MRI",
        "region": "lumbar",
        "contrast": "with",
        "verified": True,
    }
    return entry | changes


def condition(**changes: Any) -> dict[str, Any]:
    entry = {
        "system": SITE,
        "code": "DX-1",
        "display": "Spinal infection (site)",
        "match": "exact",
        "category": "nvo",
        "verified": True,
    }
    return entry | changes


def observation(**changes: Any) -> dict[str, Any]:
    entry = {
        "system": LOINC,
        "code": "1988-5",
        "display": "CRP",
        "kind": "crp",
        "verified": False,
    }
    return entry | changes


# --- what is read ----------------------------------------------------------------------------


def test_every_field_of_an_entry_is_read_as_written() -> None:
    vs = build_value_sets(
        [
            ("img.json", file("spine-imaging", imaging(), source="radiology list")),
            ("dx.json", file("conditions", condition(), source="problem list")),
            ("obs.json", file("observations", observation(), source="lab list")),
        ]
    )
    assert vs.imaging_entry(SITE, "MR-L") == ImagingEntry(
        system=SITE,
        code="MR-L",
        display="MRI lumbar spine",
        modality=Modality.MRI,
        region="lumbar",
        contrast="with",
        verified=True,
        source_file="img.json",
    )
    assert vs.condition_entry(SITE, "DX-1") == ConditionEntry(
        system=SITE,
        code="DX-1",
        match="exact",
        category=ConditionCategory.NVO,
        display="Spinal infection (site)",
        verified=True,
        source_file="dx.json",
    )
    assert vs.observation_entry(LOINC, "1988-5") == ObservationEntry(
        system=LOINC,
        code="1988-5",
        kind=ObservationKind.CRP,
        display="CRP",
        verified=False,
        source_file="obs.json",
    )
    assert dict(vs.sources) == {
        "img.json": "radiology list",
        "dx.json": "problem list",
        "obs.json": "lab list",
    }


def test_a_prefix_entry_keeps_its_code_as_written_and_its_display() -> None:
    vs = build_value_sets(
        [("dx.json", file("conditions", condition(system=ICD10CM, code="Q99.1", match="prefix")))]
    )
    entry = vs.condition_entry(ICD10CM, "Q9912")
    assert entry is not None
    assert (entry.code, entry.match, entry.display, entry.verified, entry.source_file) == (
        "Q99.1",
        "prefix",
        "Spinal infection (site)",
        True,
        "dx.json",
    )


def test_an_entry_without_a_display_has_none() -> None:
    plain = imaging()
    del plain["display"]
    vs = build_value_sets([("img.json", file("spine-imaging", plain))])
    entry = vs.imaging_entry(SITE, "MR-L")
    assert entry is not None and entry.display is None


def test_an_exact_entry_matches_its_code_only_and_a_prefix_entry_the_codes_below_it() -> None:
    vs = build_value_sets(
        [
            (
                "dx.json",
                file(
                    "conditions",
                    condition(system=ICD10CM, code="Q98.1", match="exact", category="mimic"),
                    condition(system=ICD10CM, code="Q99.1", match="prefix", category="mimic"),
                ),
            )
        ]
    )
    exact = vs.condition_entry(ICD10CM, "Q98.1")
    assert exact is not None and exact.category is ConditionCategory.MIMIC
    assert vs.condition_entry(ICD10CM, "Q98.12") is None
    assert vs.condition_entry(ICD10CM, "Q99.12") is not None


def test_the_shipped_observation_codes_are_found_by_system_and_code() -> None:
    vs = load_value_sets()
    crp = vs.observation_entry(LOINC, "1988-5")
    assert crp is not None and crp.kind is ObservationKind.CRP
    assert vs.observation_entry(LOINC, "1988-6") is None
    assert vs.observation_entry(SITE, "1988-5") is None


# --- what is refused, and the words ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"valueSet": "drugs", "source": "x", "entries": []},
            "f.json: 'valueSet' must be one of spine-imaging, conditions, observations, procedures",
        ),
        (
            file("conditions", ["not", "an", "object"]),
            "f.json: entries[0]: expected an object",
        ),
        (
            file("spine-imaging", imaging(system="")),
            "f.json: entries[0]: 'system' must be a non-empty string without surrounding spaces",
        ),
        (
            file("spine-imaging", imaging(code=72158)),
            "f.json: entries[0]: 'code' must be a non-empty string without surrounding spaces",
        ),
        (
            file("spine-imaging", imaging(code=None)),
            "f.json: entries[0]: 'code' must be a non-empty string without surrounding spaces",
        ),
        (
            file("spine-imaging", imaging(display=7)),
            f"f.json: entries[0] ({SITE}|MR-L): 'display' must be a string",
        ),
        (
            file("spine-imaging", imaging(modality="PET")),
            f"f.json: entries[0] ({SITE}|MR-L): 'modality' must be one of MRI, CT, not 'PET'",
        ),
        (
            file("conditions", condition(category="abscess")),
            f"f.json: entries[0] ({SITE}|DX-1): 'category' must be one of nvo, nvo-unspecified, "
            "nvo-other-infective, out-of-scope, complication, mechanical, neuro-deficit, mimic, "
            "immunosuppression, bacteraemia, spinal-pain, other, not 'abscess'",
        ),
        (
            file("observations", observation(kind="glucose")),
            f"f.json: entries[0] ({LOINC}|1988-5): 'kind' must be one of crp, crp-hs, crp-molar, "
            "esr, pain, ignore, not 'glucose'",
        ),
    ],
    ids=[
        "value-set",
        "entry",
        "system",
        "code-number",
        "code-missing",
        "display",
        "modality",
        "category",
        "kind",
    ],
)
def test_a_bad_file_is_refused_naming_the_file_the_entry_and_the_problem(
    data: Any, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        build_value_sets([("f.json", data)])
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value_set", "entry", "changed", "key"),
    [
        ("conditions", condition(), condition(category="mimic"), f"{SITE}|DX-1"),
        ("observations", observation(), observation(kind="esr"), f"{LOINC}|1988-5"),
        ("spine-imaging", imaging(), imaging(region="cervical"), f"{SITE}|MR-L"),
    ],
)
def test_a_conflicting_repeat_names_both_files(
    value_set: str, entry: dict[str, Any], changed: dict[str, Any], key: str
) -> None:
    with pytest.raises(ValueError) as caught:
        build_value_sets([("a.json", file(value_set, entry)), ("b.json", file(value_set, changed))])
    assert str(caught.value) == (
        f"b.json: entries[0] ({key}): conflicts with the entry for the same code in a.json"
    )


# --- a condition's clinical name and spinal region ----------------------------------------


def test_a_condition_name_and_region_are_read_as_written() -> None:
    vs = build_value_sets(
        [
            (
                "dx.json",
                file("conditions", condition(name="spinal infection", region="thoracolumbar")),
            )
        ]
    )
    assert vs.condition_entry(SITE, "DX-1") == ConditionEntry(
        system=SITE,
        code="DX-1",
        match="exact",
        category=ConditionCategory.NVO,
        display="Spinal infection (site)",
        verified=True,
        source_file="dx.json",
        name="spinal infection",
        region="thoracolumbar",
    )


def test_a_condition_without_name_or_region_has_none_of_either() -> None:
    vs = build_value_sets([("dx.json", file("conditions", condition()))])
    entry = vs.condition_entry(SITE, "DX-1")
    assert entry is not None and (entry.name, entry.region) == (None, None)


@pytest.mark.parametrize(
    "region",
    [
        "occipito-atlanto-axial",
        "cervical",
        "cervicothoracic",
        "thoracic",
        "thoracolumbar",
        "lumbar",
        "lumbosacral",
        "sacral",
        "multiple",
    ],
)
def test_every_spinal_region_of_the_rules_is_accepted(region: str) -> None:
    vs = build_value_sets([("dx.json", file("conditions", condition(region=region)))])
    entry = vs.condition_entry(SITE, "DX-1")
    assert entry is not None and entry.region == region


CONDITION_REGIONS_WORDS = (
    "'region' must be one of cervical, cervicothoracic, lumbar, lumbosacral, multiple, "
    "occipito-atlanto-axial, sacral, thoracic, thoracolumbar"
)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (condition(region="brain"), f"{CONDITION_REGIONS_WORDS}, not 'brain'"),
        # the imaging lists' whole-spine region is not a place a condition sits
        (condition(region="spine"), f"{CONDITION_REGIONS_WORDS}, not 'spine'"),
        (condition(region="Lumbar"), f"{CONDITION_REGIONS_WORDS}, not 'Lumbar'"),
        (condition(region=["lumbar"]), f"{CONDITION_REGIONS_WORDS}, not ['lumbar']"),
        (
            condition(name=""),
            "'name' must be a non-empty string without surrounding spaces",
        ),
        (
            condition(name=" discitis"),
            "'name' must be a non-empty string without surrounding spaces",
        ),
        (
            condition(name=3),
            "'name' must be a non-empty string without surrounding spaces",
        ),
    ],
    ids=["unknown", "imaging-spine", "capitalised", "list", "empty-name", "spaced-name", "number"],
)
def test_a_bad_condition_region_or_name_is_refused_naming_file_and_entry(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        build_value_sets([("site.json", file("conditions", entry))])
    assert str(caught.value) == f"site.json: entries[0] ({SITE}|DX-1): {message}"


def test_a_condition_region_is_not_an_imaging_region() -> None:
    # a study images a third, a combined region or the sacrum; "cervicothoracic" and
    # "multiple" are where a condition sits, not what a study covers
    for region in ("cervicothoracic", "multiple"):
        with pytest.raises(
            ValueError,
            match=r"'region' must be one of cervical, lumbar, lumbosacral, sacral, spine, "
            r"thoracic, thoracolumbar",
        ):
            build_value_sets([("img.json", file("spine-imaging", imaging(region=region)))])


def test_name_and_region_are_condition_keys_only() -> None:
    with pytest.raises(ValueError, match=r"unknown keys \['name'\]"):
        build_value_sets([("obs.json", file("observations", observation(name="CRP")))])


def test_a_repeat_that_leaves_out_name_and_region_is_the_same_entry_and_keeps_them() -> None:
    """A site file written before entries had a name and region still repeats the entry."""
    named = condition(name="spinal infection", region="lumbar")
    vs = build_value_sets(
        [("a.json", file("conditions", named)), ("b.json", file("conditions", condition()))]
    )
    entry = vs.condition_entry(SITE, "DX-1")
    assert entry is not None
    assert (entry.name, entry.region, entry.source_file) == ("spinal infection", "lumbar", "a.json")


def test_a_repeat_may_add_the_name_and_region_the_first_entry_lacks() -> None:
    vs = build_value_sets(
        [
            ("a.json", file("conditions", condition())),
            ("b.json", file("conditions", condition(name="spinal infection"))),
            ("c.json", file("conditions", condition(region="sacral"))),
        ]
    )
    entry = vs.condition_entry(SITE, "DX-1")
    assert entry is not None
    assert (entry.name, entry.region, entry.source_file) == ("spinal infection", "sacral", "a.json")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (condition(region="lumbar"), condition(region="thoracic")),
        (condition(name="discitis"), condition(name="spondylodiscitis")),
        # leaving out the name does not excuse a different category
        (condition(name="discitis"), condition(category="mimic")),
    ],
    ids=["region", "name", "category"],
)
def test_a_repeat_with_a_different_name_or_region_conflicts(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    with pytest.raises(ValueError) as caught:
        build_value_sets(
            [("a.json", file("conditions", first)), ("b.json", file("conditions", second))]
        )
    assert str(caught.value) == (
        f"b.json: entries[0] ({SITE}|DX-1): conflicts with the entry for the same code in a.json"
    )
