"""The code systems the value sets use: their FHIR URIs, and their HL7 OIDs read as them.

A code system arrives as its FHIR URI or, from many EHR interfaces, as its HL7 OID
("urn:oid:2.16.840.1.113883.6.90" for ICD-10-CM). ``canonical_system`` reads the OID
forms of the systems below as their URI; every lookup in the value sets and every
comparison of a system with one of these goes through it (fhir_mappers/valuesets.py,
conditions.py, observations.py, antibiotics.py; cds_service/fhir/combine.py and
cards/actions.py). A coding keeps the system it arrived with.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"

# The HL7 OIDs of the code systems above, as FHIR writes an OID in Coding.system
# ("urn:oid:" + the OID), and the URI each stands for. The one home of these OIDs.
# Source: HL7 Terminology (THO) 5.2.0, "External Code Systems"
# (https://terminology.hl7.org/5.2.0/external_terminologies.html): SNOMED CT
# 2.16.840.1.113883.6.96, RxNorm 2.16.840.1.113883.6.88, LOINC 2.16.840.1.113883.6.1, CPT
# 2.16.840.1.113883.6.12; and THO's CodeSystem resources, whose identifier is the OID:
# icd10CM (https://build.fhir.org/ig/HL7/UTG/CodeSystem-icd10CM.html) 2.16.840.1.113883.6.90,
# v3-WC, WHO ATC (https://build.fhir.org/ig/HL7/UTG/CodeSystem-v3-WC.html)
# 2.16.840.1.113883.6.73. Checked 2026-12-06.
SYSTEM_OIDS: Mapping[str, str] = MappingProxyType(
    {
        "2.16.840.1.113883.6.96": SNOMED,
        "2.16.840.1.113883.6.1": LOINC,
        "2.16.840.1.113883.6.90": ICD10CM,
        "2.16.840.1.113883.6.12": CPT,
        "2.16.840.1.113883.6.88": RXNORM,
        "2.16.840.1.113883.6.73": ATC,
    }
)
_URN_OID = "urn:oid:"
_URI_BY_URN = MappingProxyType({_URN_OID + oid: uri for oid, uri in SYSTEM_OIDS.items()})


def canonical_system(system: str) -> str:
    """The FHIR URI of a code system given by its OID ("urn:oid:2.16.840.1.113883.6.90" ->
    the ICD-10-CM URI); any other system as given. The "urn:oid:" prefix is read in any
    case (a URN's scheme and namespace are case-insensitive)."""
    if system[:8].lower() != _URN_OID:
        return system
    return _URI_BY_URN.get(_URN_OID + system[8:].strip(), system)
