"""Value sets: every code of clinical-rules.md recognised as it says, nothing else, and
files validated with errors that name the file and entry.

The expected tables below are transcribed from clinical-rules.md ("Codes"), not from
the JSON files, so a wrong or missing entry in the data fails here.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.datasources import served_prefetch
from cds_service.valuesets import load_value_sets, shipped_files
from fhir_mappers.model import ConditionCategory, Modality
from fhir_mappers.valuesets import (
    CPT,
    ICD10CM,
    LOINC,
    SNOMED,
    ConditionEntry,
    ObservationKind,
    ValueSets,
    build_value_sets,
    canonical_system,
    normalize_code,
)

VS = load_value_sets()
TEST_SYSTEM = "http://example.org/test-codes"  # synthetic codes for structure tests

CPT_SPINE = {
    # code: (modality, region, contrast); contrast as the CPT descriptor says
    "72141": ("MRI", "cervical", "without"),
    "72142": ("MRI", "cervical", "with"),
    "72156": ("MRI", "cervical", "without-and-with"),
    "72146": ("MRI", "thoracic", "without"),
    "72147": ("MRI", "thoracic", "with"),
    "72157": ("MRI", "thoracic", "without-and-with"),
    "72148": ("MRI", "lumbar", "without"),
    "72149": ("MRI", "lumbar", "with"),
    "72158": ("MRI", "lumbar", "without-and-with"),
    "72125": ("CT", "cervical", "without"),
    "72126": ("CT", "cervical", "with"),
    "72127": ("CT", "cervical", "without-and-with"),
    "72128": ("CT", "thoracic", "without"),
    "72129": ("CT", "thoracic", "with"),
    "72130": ("CT", "thoracic", "without-and-with"),
    "72131": ("CT", "lumbar", "without"),
    "72132": ("CT", "lumbar", "with"),
    "72133": ("CT", "lumbar", "without-and-with"),
}

LOINC_SPINE = {
    **dict.fromkeys(["24935-9", "30667-0", "24938-3", "24937-5"], ("MRI", "cervical")),
    **dict.fromkeys(["24980-5", "36532-0", "24982-1", "24981-3"], ("MRI", "thoracic")),
    **dict.fromkeys(["24968-0", "30679-5", "30678-7", "24967-2"], ("MRI", "lumbar")),
    **dict.fromkeys(["36531-2", "30854-4", "30855-1"], ("MRI", "spine")),
    **dict.fromkeys(["24932-6", "30592-0", "24933-4"], ("CT", "cervical")),
    **dict.fromkeys(["24978-9", "30597-9", "24979-7"], ("CT", "thoracic")),
    **dict.fromkeys(["24963-1", "30620-9", "24964-9"], ("CT", "lumbar")),
    **dict.fromkeys(["36530-4", "24987-0"], ("CT", "spine")),
}

SNOMED_SPINE = {
    **dict.fromkeys(["241645008", "431985004"], ("MRI", "spine")),
    **dict.fromkeys(["571891000119109", "60443006"], ("MRI", "cervical")),
    **dict.fromkeys(["396171000119100", "91333005"], ("MRI", "thoracic")),
    **dict.fromkeys(["394451000119106", "41333006"], ("MRI", "lumbar")),
    **dict.fromkeys(["411611000119102", "495741000119105"], ("MRI", "spine")),
    **dict.fromkeys(["241577003"], ("CT", "spine")),
    **dict.fromkeys(["572061000119104", "762008"], ("CT", "cervical")),
    **dict.fromkeys(["572081000119108", "113105001"], ("CT", "thoracic")),
    **dict.fromkeys(["572091000119106", "90523008"], ("CT", "lumbar")),
    **dict.fromkeys(["429875006", "429859008"], ("CT", "spine")),
}

NOT_SPINE = [
    (LOINC, "24590-2"),  # MR brain
    (LOINC, "24587-8"),  # MR brain
    *[(CPT, str(code)) for code in range(70551, 70556)],  # MR brain
    (CPT, "72159"),  # MR angiography of the spinal canal
    (LOINC, "24936-7"),  # under anaesthesia
    (LOINC, "24977-1"),
]


@pytest.mark.parametrize(("code", "expected"), sorted(CPT_SPINE.items()))
def test_every_cpt_spine_code_has_its_modality_region_and_contrast(
    code: str, expected: tuple[str, str, str]
) -> None:
    entry = VS.imaging_entry(CPT, code)
    assert entry is not None
    assert (entry.modality.value, entry.region, entry.contrast) == expected
    assert entry.verified is True
    assert entry.display  # CPT displays are confirmed in the sandbox's value set


def test_cpt_display_matches_what_the_sandbox_sends() -> None:
    body = json.loads((Path(__file__).parents[1] / "data" / "sandbox-requests.json").read_text())
    coding = body["imaging_tab_lumbar_ct_order_select"]["context"]["draftOrders"]["entry"][0][
        "resource"
    ]["code"]["coding"][0]
    entry = VS.imaging_entry(coding["system"], coding["code"])
    assert entry is not None and entry.display == coding["display"]


@pytest.mark.parametrize(("code", "expected"), sorted(LOINC_SPINE.items()))
def test_every_loinc_spine_code_has_its_modality_and_region(
    code: str, expected: tuple[str, str]
) -> None:
    entry = VS.imaging_entry(LOINC, code)
    assert entry is not None
    assert (entry.modality.value, entry.region) == expected


# The contrast each LOINC spine code's short name states (LOINC via Microsoft Learn, Azure
# AI Health Insights, radiology procedure inference, Appendix A): "W contrast IV" with,
# "WO contrast" without, "WO and W contrast IV" both; a name without one, None.
LOINC_CONTRAST = {
    **dict.fromkeys(["24935-9", "24980-5", "24968-0", "24932-6", "24978-9", "24963-1"]),
    **dict.fromkeys(["24938-3", "24982-1", "30678-7", "24933-4", "24979-7"], "with"),
    **dict.fromkeys(["24964-9", "24987-0"], "with"),  # 24964-9: CT Lumbar spine W contrast IV
    **dict.fromkeys(["30667-0", "36532-0", "30679-5", "36531-2", "30854-4"], "without"),
    **dict.fromkeys(["30592-0", "30597-9", "30620-9", "36530-4"], "without"),
    **dict.fromkeys(["24937-5", "24981-3", "24967-2", "30855-1"], "without-and-with"),
}


@pytest.mark.parametrize(("code", "contrast"), sorted(LOINC_CONTRAST.items()))
def test_every_loinc_spine_code_has_the_contrast_its_name_states(
    code: str, contrast: str | None
) -> None:
    entry = VS.imaging_entry(LOINC, code)
    assert entry is not None and entry.contrast == contrast


def test_whole_spine_mr_contrast_as_the_rules_state() -> None:
    without = VS.imaging_entry(LOINC, "30854-4")
    both = VS.imaging_entry(LOINC, "30855-1")
    assert without is not None and without.contrast == "without"
    assert both is not None and both.contrast == "without-and-with"


@pytest.mark.parametrize(("code", "expected"), sorted(SNOMED_SPINE.items()))
def test_every_snomed_spine_code_has_its_modality_and_region(
    code: str, expected: tuple[str, str]
) -> None:
    entry = VS.imaging_entry(SNOMED, code)
    assert entry is not None
    assert (entry.modality.value, entry.region) == expected


# Added by the imaging revision (clinical-rules.md, "Imaging", 2026-12-06): (modality,
# region, contrast) as the public tables name them; CT myelography (intrathecal
# contrast) is one policy across CPT and LOINC: a CT with contrast.
ADDED = {
    (LOINC, "36067-7"): ("MRI", "spine", None),
    (LOINC, "28566-8"): ("CT", "spine", None),
    (LOINC, "36111-3"): ("MRI", "lumbar", "without"),
    (LOINC, "36100-6"): ("MRI", "lumbar", "with"),
    (LOINC, "36112-1"): ("MRI", "thoracic", "without"),
    (LOINC, "36101-4"): ("MRI", "thoracic", "with"),
    (LOINC, "36109-7"): ("CT", "cervical", "without"),
    (LOINC, "36099-0"): ("CT", "cervical", "with"),
    (LOINC, "36110-5"): ("CT", "lumbar", "without"),
    (LOINC, "24934-2"): ("CT", "cervical", "with"),
    (LOINC, "30596-1"): ("CT", "thoracic", "with"),
    (LOINC, "24965-6"): ("CT", "lumbar", "with"),
    (SNOMED, "411571000119106"): ("MRI", "thoracolumbar", "without"),
    (SNOMED, "448641007"): ("MRI", "thoracolumbar", "with"),
    (SNOMED, "433141005"): ("MRI", "lumbosacral", None),
    (SNOMED, "433140006"): ("MRI", "lumbosacral", "with"),
    (SNOMED, "702487007"): ("CT", "thoracolumbar", None),
    (SNOMED, "702488002"): ("CT", "thoracolumbar", "with"),
    (SNOMED, "711224009"): ("CT", "lumbosacral", None),
    (SNOMED, "723646000"): ("CT", "lumbosacral", "with"),
    (SNOMED, "388321000119101"): ("MRI", "sacral", "without"),
    (SNOMED, "709527009"): ("MRI", "sacral", "with"),
    (SNOMED, "241581003"): ("CT", "sacral", None),
    (SNOMED, "430452007"): ("CT", "sacral", "with"),
}


@pytest.mark.parametrize(("key", "expected"), sorted(ADDED.items()))
def test_the_imaging_revisions_codes_have_their_modality_region_and_contrast(
    key: tuple[str, str], expected: tuple[str, str, str | None]
) -> None:
    entry = VS.imaging_entry(*key)
    assert entry is not None and entry.verified is True
    assert (entry.modality.value, entry.region, entry.contrast) == expected


def test_imaging_value_set_holds_exactly_the_listed_codes() -> None:
    listed = (
        {(CPT, c) for c in CPT_SPINE}
        | {(LOINC, c) for c in LOINC_SPINE}
        | {(SNOMED, c) for c in SNOMED_SPINE}
        | set(ADDED)
    )
    assert set(VS.imaging) == listed


@pytest.mark.parametrize(("system", "code"), NOT_SPINE)
def test_brain_and_excluded_studies_are_not_spine(system: str, code: str) -> None:
    assert VS.imaging_entry(system, code) is None


def test_same_code_in_another_system_is_not_matched() -> None:
    assert VS.imaging_entry(LOINC, "72158") is None
    assert VS.imaging_entry("http://example.org/local-codes", "72158") is None


# The HL7 OIDs of the code systems, transcribed from HL7 Terminology (THO) 5.2.0
# "External Code Systems" and THO's CodeSystem icd10CM and v3-WC (their identifier),
# not from the module: a wrong digit in fhir_mappers/valuesets.py fails here.
HL7_OIDS = {
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "urn:oid:2.16.840.1.113883.6.12": CPT,
    "urn:oid:2.16.840.1.113883.6.88": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "urn:oid:2.16.840.1.113883.6.73": "http://www.whocc.no/atc",
}


@pytest.mark.parametrize(("oid", "uri"), sorted(HL7_OIDS.items()))
def test_a_code_system_given_by_its_hl7_oid_reads_as_its_fhir_uri(oid: str, uri: str) -> None:
    assert canonical_system(oid) == uri
    assert canonical_system(oid.replace("urn:oid:", "URN:OID:")) == uri
    assert canonical_system(uri) == uri


@pytest.mark.parametrize(
    "system",
    [
        "urn:oid:2.16.840.1.113883.6.3",  # ICD-10 (WHO), not ICD-10-CM
        "urn:oid:2.16.840.1.113883.6.9",  # a prefix of ICD-10-CM's OID, another system
        "urn:oid:1.2.840.114350.1.13.999.2.7.2.696580",  # an Epic site's own codes
        "2.16.840.1.113883.6.90",  # a bare OID is not a FHIR system
        "",
    ],
)
def test_other_systems_are_left_as_they_are(system: str) -> None:
    assert canonical_system(system) == system


def test_every_value_set_is_looked_up_by_the_oid_of_its_system() -> None:
    """G83.4 from an interface that writes ICD-10-CM by OID is cauda equina syndrome
    (it was read as no condition at all, and the card said "no red flag recorded")."""
    icd = "urn:oid:2.16.840.1.113883.6.90"
    assert VS.condition_entry(icd, "G83.4") is VS.condition_entry(ICD10CM, "G83.4") is not None
    assert VS.condition_entry(icd, "M46.26") is VS.condition_entry(ICD10CM, "M4626") is not None
    assert VS.condition_entry(icd, "T84.63XA") is VS.condition_entry(ICD10CM, "T84.63XA")
    assert normalize_code(icd, "g83.4") == "G834"
    snomed = "urn:oid:2.16.840.1.113883.6.96"
    assert VS.condition_entry(snomed, "192970008") is VS.condition_entry(SNOMED, "192970008")
    loinc = "urn:oid:2.16.840.1.113883.6.1"
    assert VS.observation_entry(loinc, "1988-5") is VS.observation_entry(LOINC, "1988-5")
    assert VS.imaging_entry(loinc, "24968-0") is VS.imaging_entry(LOINC, "24968-0") is not None
    cpt = "urn:oid:2.16.840.1.113883.6.12"
    assert VS.imaging_entry(cpt, "72158") is VS.imaging_entry(CPT, "72158") is not None
    assert VS.imaging_entry(snomed, "241645008") is VS.imaging_entry(SNOMED, "241645008")
    (procedure,) = [key for key in VS.procedures if key[0] == CPT][:1]
    assert VS.procedure_entry(cpt, procedure[1]) is VS.procedures[procedure]


def test_a_site_file_may_name_a_system_by_its_oid() -> None:
    site = {
        "valueSet": "conditions",
        "source": "a site's problem list (synthetic)",
        "entries": [
            {
                "system": "urn:oid:2.16.840.1.113883.6.90",
                "code": "M46.28",
                "match": "exact",
                "category": "nvo",
                "verified": False,
            }
        ],
    }
    vs = build_value_sets([("site.json", site)])
    entry = vs.condition_entry(ICD10CM, "M46.28")
    assert entry is not None and entry.system == ICD10CM


# SNOMED CT condition codes of clinical-rules.md (revised 2026-11-28), by category.
SNOMED_NVO = (
    "203241002",
    "444760002",
    "445063003",
    "203157008",
    "203158003",
    "203159006",
    "203193005",
    "203194004",
    "203195003",
    "203296008",
    "203297004",
    "203298009",
    "202756004",
    "302935008",
)
SNOMED_OUT_OF_SCOPE = ("35984006", "203263006", "203264000", "203265004")
SNOMED_NEURO = ("192970008", "12454008", "8663007", "782388003", "60389000", "11538006", "71286001")
SNOMED_MIMIC = ("363438000", "94222008", "94602001", "94250008", "94274006", "94389000", "77547008")
# Seen only in NLM's 2010 CORE problem-list subset: their entries must say so.
SNOMED_2010 = {"302935008", "2304001", "274146004", "71286001", "77547008"}

CONDITION_CASES = [
    # (system, code as a client may send it, expected category or None)
    (ICD10CM, "M46.26", ConditionCategory.NVO),
    (ICD10CM, "M4626", ConditionCategory.NVO),
    (ICD10CM, "m46.26", ConditionCategory.NVO),
    (ICD10CM, "M46.2", ConditionCategory.NVO),
    (ICD10CM, "M46.35", ConditionCategory.NVO),
    (ICD10CM, "M46.47", ConditionCategory.NVO_UNSPECIFIED),
    (ICD10CM, "M46.58", ConditionCategory.NVO_OTHER_INFECTIVE),
    (SNOMED, "203241002", ConditionCategory.NVO),
    (ICD10CM, "A18.01", ConditionCategory.OUT_OF_SCOPE),
    (ICD10CM, "A23.9", ConditionCategory.OUT_OF_SCOPE),
    (ICD10CM, "T84.50XA", ConditionCategory.OUT_OF_SCOPE),
    (ICD10CM, "T84.63XA", ConditionCategory.OUT_OF_SCOPE),
    (ICD10CM, "T847XXA", ConditionCategory.OUT_OF_SCOPE),
    (ICD10CM, "G06.1", ConditionCategory.COMPLICATION),
    (ICD10CM, "G06.2", ConditionCategory.COMPLICATION),
    (ICD10CM, "M48.56XA", ConditionCategory.MECHANICAL),
    (ICD10CM, "M84.48XA", ConditionCategory.MECHANICAL),
    (ICD10CM, "M84.58XA", ConditionCategory.MECHANICAL),
    (ICD10CM, "G83.4", ConditionCategory.NEURO_DEFICIT),
    (ICD10CM, "G82.21", ConditionCategory.NEURO_DEFICIT),
    (ICD10CM, "G95.9", ConditionCategory.NEURO_DEFICIT),
    (ICD10CM, "G95.89", ConditionCategory.NEURO_DEFICIT),
    (ICD10CM, "G82.54", ConditionCategory.NEURO_DEFICIT),
    (ICD10CM, "M51.36", ConditionCategory.MIMIC),
    (ICD10CM, "M51.37", ConditionCategory.MIMIC),
    # revised 2026-11-28: M46.2x ends at M46.28; M51.36x/M51.37x split since FY2025
    (ICD10CM, "M46.20", ConditionCategory.NVO),
    (ICD10CM, "M46.28", ConditionCategory.NVO),
    (ICD10CM, "M46.29", None),
    (ICD10CM, "M51.360", ConditionCategory.MIMIC),
    (ICD10CM, "M51.369", ConditionCategory.MIMIC),
    (ICD10CM, "M51.372", ConditionCategory.MIMIC),
    (ICD10CM, "M48.50XA", ConditionCategory.MECHANICAL),
    (ICD10CM, "T84.63XD", ConditionCategory.OUT_OF_SCOPE),
    (ICD10CM, "A23.1", ConditionCategory.OUT_OF_SCOPE),
    # SNOMED CT concepts listed in the revision
    *((SNOMED, c, ConditionCategory.NVO) for c in SNOMED_NVO),
    (SNOMED, "2304001", ConditionCategory.NVO_UNSPECIFIED),
    *((SNOMED, c, ConditionCategory.OUT_OF_SCOPE) for c in SNOMED_OUT_OF_SCOPE),
    (SNOMED, "274146004", ConditionCategory.MECHANICAL),
    # imaging revision 2026-12-06: cord compression, psoas and retroperitoneal abscess,
    # instability (mechanical, with collapse and fracture), spinal pain as an order reason
    (ICD10CM, "G95.20", ConditionCategory.NEURO_DEFICIT),
    (ICD10CM, "G95.29", ConditionCategory.NEURO_DEFICIT),
    (ICD10CM, "K68.12", ConditionCategory.COMPLICATION),
    (ICD10CM, "K68.19", ConditionCategory.COMPLICATION),
    (ICD10CM, "K68.11", None),  # postprocedural retroperitoneal abscess: not listed
    (ICD10CM, "M53.2X6", ConditionCategory.MECHANICAL),
    (ICD10CM, "M53.2X2", ConditionCategory.MECHANICAL),
    (ICD10CM, "M53.3", None),
    (ICD10CM, "M54.50", ConditionCategory.SPINAL_PAIN),
    (ICD10CM, "M54.2", ConditionCategory.SPINAL_PAIN),
    (SNOMED, "279039007", ConditionCategory.SPINAL_PAIN),
    (SNOMED, "81680005", ConditionCategory.SPINAL_PAIN),
    *((SNOMED, c, ConditionCategory.NEURO_DEFICIT) for c in SNOMED_NEURO),
    *((SNOMED, c, ConditionCategory.MIMIC) for c in SNOMED_MIMIC),
    (ICD10CM, "C41.2", ConditionCategory.MIMIC),
    (ICD10CM, "C79.51", ConditionCategory.MIMIC),
    # near misses: a shorter code than an exact entry, a sibling, a parent category
    (ICD10CM, "A18.0", None),
    (ICD10CM, "G06.0", None),
    (ICD10CM, "G06", None),
    (ICD10CM, "G95.8", None),
    (ICD10CM, "C79.5", None),
    (ICD10CM, "M46", None),
    (ICD10CM, "M46.1", None),
    (ICD10CM, "T84.4", None),
    (SNOMED, "M46.26", None),  # an ICD-10-CM code under the wrong system
]


@pytest.mark.parametrize(("system", "code", "expected"), CONDITION_CASES)
def test_condition_codes_by_category(
    system: str, code: str, expected: ConditionCategory | None
) -> None:
    entry = VS.condition_entry(system, code)
    assert (entry.category if entry else None) == expected


def _shipped_conditions() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for name in ("conditions.json", "conditions-imaging.json"):
        path = resources.files("cds_service.valuesets").joinpath(name)
        entries += json.loads(path.read_text(encoding="utf-8"))["entries"]
    return entries


def test_every_condition_code_is_verified_and_2010_only_codes_say_so() -> None:
    """The revision checked every code list against public sources; the codes seen only
    in the 2010 CORE subset keep that mark in their comment."""
    entries = _shipped_conditions()
    assert all(e["verified"] is True for e in entries)
    marked = {e["code"] for e in entries if "2010" in e.get("comment", "")}
    assert marked == SNOMED_2010


OBSERVATION_KINDS = {
    "1988-5": ObservationKind.CRP,
    "30522-7": ObservationKind.CRP_HS,
    "71426-1": ObservationKind.CRP_HS,
    "76485-2": ObservationKind.CRP_MOLAR,
    "11039-5": ObservationKind.IGNORE,
    "4537-7": ObservationKind.ESR,
    "30341-2": ObservationKind.ESR,
    "72514-3": ObservationKind.PAIN,
    "38208-5": ObservationKind.PAIN,
}


def test_observation_codes_by_kind() -> None:
    found = {code: entry.kind for (system, code), entry in VS.observations.items()}
    assert found == OBSERVATION_KINDS
    assert {system for system, _ in VS.observations} == {LOINC}


def test_the_queries_ask_for_the_codes_read_not_the_ignored_ones() -> None:
    read = {code for code, kind in OBSERVATION_KINDS.items() if kind is not ObservationKind.IGNORE}
    queries = " ".join(served_prefetch(VS).values())
    assert set(re.findall(rf"{re.escape(LOINC)}\|([^,&]+)", queries)) == read
    assert "11039-5" not in queries


def test_every_shipped_file_says_where_its_codes_come_from() -> None:
    files = shipped_files()
    assert {name for name, _ in files} == {
        "spine-imaging.json",
        "spine-imaging-added.json",
        "procedures.json",
        "conditions.json",
        "conditions-imaging.json",
        "observations.json",
        "antibiotics.json",
    }
    for name, data in files:
        assert "clinical-rules.md" in data["source"], name
        if name != "antibiotics.json":  # read by fhir_mappers/antibiotics.py, not ValueSets
            assert VS.sources[name] == data["source"]


def test_value_sets_are_immutable() -> None:
    with pytest.raises(TypeError):
        VS.imaging[(CPT, "99999")] = VS.imaging[(CPT, "72158")]  # type: ignore[index]
    with pytest.raises(AttributeError):
        VS.imaging = {}  # type: ignore[misc]


# --- validation and site extension -------------------------------------------------------


def _imaging_file(**entry: Any) -> dict[str, Any]:
    base = {
        "system": "http://example.org/site-codes",
        "code": "SPINE-MR-1",
        "modality": "MRI",
        "region": "lumbar",
        "contrast": None,
        "verified": False,
    }
    base.update(entry)
    return {"valueSet": "spine-imaging", "source": "site list (test)", "entries": [base]}


def _write(directory: Path, name: str, data: Any) -> Path:
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_site_directory_extends_the_shipped_lists(tmp_path: Path) -> None:
    _write(tmp_path, "site-imaging.json", _imaging_file())
    _write(
        tmp_path,
        "site-conditions.json",
        {
            "valueSet": "conditions",
            "source": "site list (test)",
            "entries": [
                {
                    "system": "http://example.org/site-dx",
                    "code": "NVO-1",
                    "match": "exact",
                    "category": "nvo",
                    "verified": False,
                }
            ],
        },
    )
    extended = load_value_sets(tmp_path)
    site = extended.imaging_entry("http://example.org/site-codes", "SPINE-MR-1")
    assert site is not None and site.modality is Modality.MRI and site.region == "lumbar"
    cond = extended.condition_entry("http://example.org/site-dx", "NVO-1")
    assert cond is not None and cond.category is ConditionCategory.NVO
    assert extended.imaging_entry(CPT, "72158") is not None  # shipped codes still there
    assert len(extended.imaging) == len(VS.imaging) + 1


def test_a_site_may_repeat_a_shipped_entry_unchanged(tmp_path: Path) -> None:
    shipped = dict(shipped_files())["spine-imaging.json"]["entries"][0]
    _write(
        tmp_path, "repeat.json", {"valueSet": "spine-imaging", "source": "x", "entries": [shipped]}
    )
    assert len(load_value_sets(tmp_path).imaging) == len(VS.imaging)


def test_a_conflicting_repeat_names_both_files(tmp_path: Path) -> None:
    changed = _imaging_file(system=CPT, code="72158", modality="CT")
    _write(tmp_path, "site.json", changed)
    with pytest.raises(ValueError, match=r"site\.json: entries\[0\].*72158.*spine-imaging\.json"):
        load_value_sets(tmp_path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_imaging_file(modality="PET"), r"entries\[0\] \(.*SPINE-MR-1\): 'modality' must be"),
        (_imaging_file(region="brain"), r"'region' must be one of"),
        (_imaging_file(contrast="iv"), r"'contrast' must be one of"),
        (_imaging_file(verified="yes"), r"'verified' must be true or false"),
        (_imaging_file(modaltiy="MRI"), r"unknown keys \['modaltiy'\]"),
        (_imaging_file(code=" 72158"), r"'code' must be a non-empty string"),
        ({"valueSet": "spine-imaging", "entries": []}, r"'source'.*is required"),
        ({"valueSet": "drugs", "source": "x", "entries": []}, r"'valueSet' must be one of"),
        ({"valueSet": "conditions", "source": "x", "entries": {}}, r"'entries' must be a list"),
        (
            {
                "valueSet": "conditions",
                "source": "x",
                "entries": [{"system": ICD10CM, "code": "X", "match": "fuzzy", "verified": True}],
            },
            r"'match' must be one of exact, prefix",
        ),
        (
            {
                "valueSet": "observations",
                "source": "x",
                "entries": [{"system": LOINC, "code": "1-1", "kind": "glucose", "verified": True}],
            },
            r"'kind' must be one of",
        ),
        (["not", "an", "object"], r"expected a JSON object"),
    ],
)
def test_invalid_data_names_the_file_and_entry(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=r"^site-file\.json: .*" + message):
        build_value_sets([("site-file.json", data)])


def test_invalid_json_in_the_site_directory_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        load_value_sets(tmp_path)


def test_a_missing_site_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="value-set directory not found"):
        load_value_sets(tmp_path / "nope")


def test_prefix_and_exact_entries_resolve_most_specific_first() -> None:
    entries = [
        {
            "system": TEST_SYSTEM,
            "code": code,
            "match": match,
            "category": category,
            "verified": False,
        }
        for code, match, category in [
            ("X1", "prefix", "nvo"),
            ("X1.2", "prefix", "mimic"),
            ("X1.23", "exact", "other"),
        ]
    ]
    vs: ValueSets = build_value_sets(
        [("f.json", {"valueSet": "conditions", "source": "test", "entries": entries})]
    )

    def category(code: str) -> str | None:
        entry = vs.condition_entry(TEST_SYSTEM, code)
        return entry.category.value if entry else None

    assert category("X1.9") == "nvo"
    assert category("X1.24") == "mimic"
    assert category("X1.23") == "other"
    assert category("X2") is None


# --- clinical names and spinal regions (clinical-rules.md, 2026-12-06) ----------------------

# Regions the codes fix, transcribed from clinical-rules.md ("Codes" and "Level of the
# infection and of the order"): SNOMED CT concepts by their region, cauda equina syndrome
# lumbosacral, and the ICD-10-CM disc degeneration codes by their region. ICD-10-CM M46.2x-
# M46.5x get theirs from the fifth character in the mapper, not from the file.
SHIPPED_REGIONS = {
    (SNOMED, "203157008"): "cervical",  # acute osteomyelitis of cervical spine
    (SNOMED, "203158003"): "thoracic",
    (SNOMED, "203159006"): "lumbar",
    (SNOMED, "203193005"): "cervical",  # chronic
    (SNOMED, "203194004"): "thoracic",
    (SNOMED, "203195003"): "lumbar",
    (SNOMED, "203296008"): "cervical",  # subacute
    (SNOMED, "203297004"): "thoracic",
    (SNOMED, "203298009"): "lumbar",
    (SNOMED, "203263006"): "cervical",  # tuberculosis of cervical spine
    (SNOMED, "203264000"): "thoracic",
    (SNOMED, "203265004"): "lumbar",
    (ICD10CM, "G83.4"): "lumbosacral",  # cauda equina syndrome
    (SNOMED, "192970008"): "lumbosacral",
    (SNOMED, "12454008"): "lumbosacral",
    (SNOMED, "8663007"): "lumbosacral",
    (SNOMED, "782388003"): "lumbosacral",
    # the level a deficit implies (a clinical refinement, docs/clinical-logic.md): a
    # quadriplegia's lesion is cervical, a paraplegia's thoracic or above
    (ICD10CM, "G82.5"): "cervical",  # quadriplegia
    (SNOMED, "11538006"): "cervical",
    (ICD10CM, "G82.2"): "thoracic",  # paraplegia
    (SNOMED, "60389000"): "thoracic",
    # an arm's monoplegia: its cord and roots are cervical (added 2026-12-07)
    (ICD10CM, "G83.2"): "cervical",
    (ICD10CM, "M51.36"): "lumbar",  # disc degeneration, lumbar region
    (ICD10CM, "M51.37"): "lumbosacral",  # disc degeneration, lumbosacral region
}

# The names a card says, from "What a card should say" and the meaning of each code.
SHIPPED_NAMES = {
    (ICD10CM, "M46.26"): "osteomyelitis of the vertebra",
    (ICD10CM, "M46.34"): "pyogenic disc infection",
    (ICD10CM, "M46.46"): "discitis",
    (SNOMED, "2304001"): "discitis",
    (ICD10CM, "A18.01"): "tuberculous spondylitis",
    (SNOMED, "203264000"): "tuberculous spondylitis",
    (ICD10CM, "G83.4"): "cauda equina syndrome",
    (SNOMED, "8663007"): "cauda equina syndrome",
    (ICD10CM, "G82.20"): "paraplegia",
    (SNOMED, "60389000"): "paraplegia",
    (ICD10CM, "G82.54"): "quadriplegia",
    (SNOMED, "11538006"): "quadriplegia",
    (ICD10CM, "G95.9"): "spinal cord disease",
    (SNOMED, "71286001"): "compression of the spinal cord",
    (ICD10CM, "G06.1"): "intraspinal abscess",
    (ICD10CM, "M48.56XA"): "collapsed vertebra",
    (SNOMED, "274146004"): "pathological fracture of a vertebra",
    (ICD10CM, "M51.369"): "disc degeneration",
    (SNOMED, "77547008"): "disc degeneration",
    (ICD10CM, "C79.51"): "bone metastases",
    (SNOMED, "94222008"): "bone metastases",
    (ICD10CM, "C41.2"): "vertebral cancer",
}


@pytest.mark.parametrize("entry", _shipped_conditions(), ids=lambda e: e["code"])
def test_every_shipped_condition_has_a_clinical_name(entry: dict[str, Any]) -> None:
    name = entry.get("name")
    assert isinstance(name, str) and name.strip() == name and len(name) >= 5
    assert entry["code"] not in name, "a name is a clinical name, never the code"
    found = VS.condition_entry(entry["system"], entry["code"])
    assert found is not None and found.name == name


def test_the_shipped_file_walk_covers_every_indexed_entry() -> None:
    indexed = list(VS.condition_exact.values()) + [
        entry for entries in VS.condition_prefixes.values() for _, entry in entries
    ]
    assert len(indexed) == len(_shipped_conditions())
    assert all(entry.name for entry in indexed)


@pytest.mark.parametrize(("key", "name"), sorted(SHIPPED_NAMES.items()))
def test_shipped_names_say_what_a_clinician_says(key: tuple[str, str], name: str) -> None:
    entry = VS.condition_entry(*key)
    assert entry is not None and entry.name == name


@pytest.mark.parametrize(("key", "region"), sorted(SHIPPED_REGIONS.items()))
def test_codes_that_fix_the_region_carry_it(key: tuple[str, str], region: str) -> None:
    entry = VS.condition_entry(*key)
    assert entry is not None and entry.region == region


def test_only_codes_that_fix_the_region_carry_one() -> None:
    """Cord disease and the M46 entries (their fifth character is read by the mapper) have
    none in the file."""
    with_region = {
        (entry["system"], entry["code"]): entry["region"]
        for entry in _shipped_conditions()
        if "region" in entry
    }
    assert with_region == SHIPPED_REGIONS


def test_a_site_file_gives_its_codes_a_name_and_region(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "site-conditions.json",
        {
            "valueSet": "conditions",
            "source": "site list (test)",
            "entries": [
                {
                    "system": "http://example.org/site-dx",
                    "code": "SEA-1",
                    "match": "exact",
                    "category": "complication",
                    "name": "spinal epidural abscess",
                    "region": "thoracic",
                    "verified": False,
                }
            ],
        },
    )
    entry = load_value_sets(tmp_path).condition_entry("http://example.org/site-dx", "SEA-1")
    assert entry is not None
    assert (entry.name, entry.region) == ("spinal epidural abscess", "thoracic")
    assert entry.source_file.endswith("site-conditions.json")


def test_a_site_file_with_a_bad_region_is_refused_naming_file_and_entry(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "site-conditions.json",
        {
            "valueSet": "conditions",
            "source": "site list (test)",
            "entries": [
                {
                    "system": "http://example.org/site-dx",
                    "code": "SEA-1",
                    "match": "exact",
                    "category": "complication",
                    "region": "T10",
                    "verified": False,
                }
            ],
        },
    )
    with pytest.raises(
        ValueError,
        match=r"site-conditions\.json: entries\[0\] \(http://example\.org/site-dx\|SEA-1\): "
        r"'region' must be one of .*, not 'T10'",
    ):
        load_value_sets(tmp_path)


def test_a_site_file_repeating_a_shipped_condition_without_name_still_loads(
    tmp_path: Path,
) -> None:
    shipped = next(e for e in _shipped_conditions() if e["code"] == "G83.4")
    old_style = {k: v for k, v in shipped.items() if k not in ("name", "region")}
    _write(
        tmp_path, "repeat.json", {"valueSet": "conditions", "source": "x", "entries": [old_style]}
    )
    entry = load_value_sets(tmp_path).condition_entry(ICD10CM, "G83.4")
    assert entry is not None
    assert (entry.name, entry.region) == ("cauda equina syndrome", "lumbosacral")


def _scan(vs: ValueSets, system: str, code: str) -> ConditionEntry | None:
    """condition_entry as a plain scan: exact match, else the first of the prefixes
    (longest first) the code starts with."""
    key = normalize_code(system, code)
    exact = vs.condition_exact.get((system, key))
    if exact is not None:
        return exact
    for prefix, entry in vs.condition_prefixes.get(system, ()):
        if key.startswith(prefix):
            return entry
    return None


_KNOWN_KEYS = sorted(
    {prefix for items in VS.condition_prefixes.values() for prefix, _ in items}
    | {code for _, code in VS.condition_exact}
)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from([ICD10CM, SNOMED, TEST_SYSTEM]),
    st.sampled_from(_KNOWN_KEYS),
    st.integers(0, 8),
    st.text(alphabet="0123456789.XAm ", max_size=4),
)
def test_condition_entry_is_the_longest_matching_prefix(
    system: str, known: str, cut: int, tail: str
) -> None:
    """Codes cut from and grown beyond the value set's own codes and prefixes."""
    code = known[:cut] + tail
    assert VS.condition_entry(system, code) is _scan(VS, system, code)
    assert VS.condition_entry(system, known + tail) is _scan(VS, system, known + tail)


def test_a_longer_prefix_wins_over_a_shorter_one() -> None:
    nested = ValueSets(
        imaging={},
        condition_exact={},
        condition_prefixes={
            TEST_SYSTEM: tuple(
                (prefix, replace(VS.condition_exact[(ICD10CM, "M4626")], code=prefix))
                for prefix in ("ABC1", "AB", "A")
            )
        },
        observations={},
        sources={},
    )
    assert nested.condition_entry(TEST_SYSTEM, "ABC12").code == "ABC1"  # type: ignore[union-attr]
    assert nested.condition_entry(TEST_SYSTEM, "ABD").code == "AB"  # type: ignore[union-attr]
    assert nested.condition_entry(TEST_SYSTEM, "Z") is None


@pytest.mark.parametrize("code", ["A&_include=x", "1,2", "A|B", "A#B", "A B", "A+B", "A%26"])
def test_a_site_observation_code_a_search_url_would_misread_is_refused(
    tmp_path: Path, code: str
) -> None:
    # an attack suite: a site's code with "&" added a search parameter, "," split it in
    # two, "#" cut the query; the codes go into the searches as they are
    (tmp_path / "site.json").write_text(
        json.dumps(
            {
                "valueSet": "observations",
                "source": "a site's lab catalogue (test)",
                "entries": [
                    {
                        "system": "http://example.org/lab",
                        "code": code,
                        "kind": "crp",
                        "verified": False,
                    }
                ],
            }
        )
    )
    with pytest.raises(ValueError, match="must not contain"):
        load_value_sets(tmp_path)
