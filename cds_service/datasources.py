"""The patient data the service reads: one row per source, the one home of each.

A row names the prefetch key (hooks.json), the FHIR search (the same query serves the
EHR's prefetch and the service's own fetch), the value-set kinds whose codes the search
asks for, what the data feed in the domain, and whether the decision can go ahead
without it. ``invocation.py`` reads its keys from here; ``check_discovery`` holds
hooks.json to this table at start-up, so a renamed key fails loudly instead of silently
fetching; ``served_prefetch`` puts the codes a site adds through ``valueset_dir`` into
the queries, so what is mapped is also asked for.

Adding a source: one row here (its ``feeds`` names the mapper call in ``invocation.py``),
one mapper in ``fhir_mappers``, its use in the engine (a key it tests by name goes in
``engine/sources.py``), its words on a card (``cards/completeness_phrases.KIND_WORDS``),
an as-of rule for a new resource type (``impact/asof.RULES``), tests; hooks.json gets the
row's query (the start-up check says which). tests/shell/test_datasources.py and
tests/impact/test_asof.py fail until each is there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from cds_service.discovery import Discovery
from fhir_mappers.valuesets import ObservationKind, ValueSets

PATIENT = "{{context.patientId}}"

# The mapper a source's resources go to; each is called by these names in invocation.py
# or patient_reads.py (tests/shell/test_datasources.py fails on one nobody reads).
Feeds = Literal["conditions", "measurements", "antibiotics", "patient", "procedures", "imaging"]


@dataclass(frozen=True)
class DataSource:
    """One search of the patient's record."""

    key: str  # the prefetch key in hooks.json
    resource_type: str  # what the search returns
    query: str  # the search; "{codes}" is filled with the value sets' codes
    feeds: Feeds  # the mapper its resources go to
    codes_of: tuple[ObservationKind, ...] = ()  # value-set kinds that fill "{codes}"
    # Without a required source the answer is a 412; without an optional one the
    # decision goes ahead and the card says what was not read.
    required: bool = True

    def render(self, value_sets: ValueSets) -> str:
        """The query with its code list, as hooks.json holds it (codes in the value-set
        files' order, the shipped files first)."""
        if not self.codes_of:
            return self.query
        codes = [
            f"{system}|{code}"
            for (system, code), entry in value_sets.observations.items()
            if entry.kind in self.codes_of
        ]
        return self.query.replace("{codes}", ",".join(codes))


_OBSERVATIONS = f"Observation?patient={PATIENT}&code={{codes}}&_sort=-date&_count=100"

SOURCES: tuple[DataSource, ...] = (
    DataSource("conditions", "Condition", f"Condition?patient={PATIENT}&_count=100", "conditions"),
    DataSource(
        "crp",
        "Observation",
        _OBSERVATIONS,
        "measurements",
        (ObservationKind.CRP, ObservationKind.CRP_HS, ObservationKind.CRP_MOLAR),
    ),
    DataSource("esr", "Observation", _OBSERVATIONS, "measurements", (ObservationKind.ESR,)),
    DataSource("pain", "Observation", _OBSERVATIONS, "measurements", (ObservationKind.PAIN,)),
    # T0 from the first antibiotic order (clinical-rules.md, 2026-12-06). Optional: an
    # EHR that cannot share orders still gets an answer, T0 then being the episode date.
    DataSource(
        "antibiotics",
        "MedicationRequest",
        f"MedicationRequest?patient={PATIENT}&_include=MedicationRequest:medication&_count=100",
        "antibiotics",
        required=False,
    ),
    # The patient's birthDate: adults only (clinical-rules.md, "Imaging", 2026-12-06).
    # Optional: without it the decision goes ahead as before and the audit says so.
    DataSource("patient", "Patient", f"Patient/{PATIENT}", "patient", required=False),
    # Spine surgery in the episode (clinical-rules.md, "Imaging", 2026-12-06): a CT after
    # a fusion or debridement is not advised against. Optional, like the others above.
    DataSource(
        "procedures",
        "Procedure",
        f"Procedure?patient={PATIENT}&_count=100",
        "procedures",
        required=False,
    ),
    # Prior spine imaging (clinical-rules.md, "Imaging", 2026-12-06): the last spine
    # study of the episode is named; a red flag seen on a study of the last days says so.
    DataSource(
        "imaging_studies",
        "ImagingStudy",
        f"ImagingStudy?patient={PATIENT}&_count=100",
        "imaging",
        required=False,
    ),
    DataSource(
        "imaging_reports",
        "DiagnosticReport",
        f"DiagnosticReport?patient={PATIENT}&_count=100",
        "imaging",
        required=False,
    ),
)

BY_KEY: Mapping[str, DataSource] = {s.key: s for s in SOURCES}
OPTIONAL_KEYS = frozenset(s.key for s in SOURCES if not s.required)


def keys_feeding(feeds: Feeds) -> tuple[str, ...]:
    """The prefetch keys whose resources go to one mapper, in table order."""
    return tuple(s.key for s in SOURCES if s.feeds == feeds)


def discovery_problems(services: Mapping[str, Mapping[str, str]], shipped: ValueSets) -> list[str]:
    """Where hooks.json's prefetch templates and this table disagree, one line each.

    ``services`` maps each service id to its prefetch templates. Keys must be the
    table's keys, and each template the row's query with the shipped value sets' codes.
    """
    problems = []
    for service_id, prefetch in services.items():
        missing = sorted(set(BY_KEY) - set(prefetch))
        unknown = sorted(set(prefetch) - set(BY_KEY))
        if missing:
            problems.append(f"service {service_id!r} has no prefetch key {', '.join(missing)}")
        if unknown:
            problems.append(
                f"service {service_id!r} has prefetch key {', '.join(unknown)} that no data "
                "source reads (cds_service/datasources.py)"
            )
        for key, template in prefetch.items():
            source = BY_KEY.get(key)
            if source is not None and template != source.render(shipped):
                problems.append(
                    f"service {service_id!r} prefetch {key!r} is {template!r}; the data source "
                    f"reads {source.render(shipped)!r}"
                )
    return problems


def served_prefetch(value_sets: ValueSets) -> dict[str, str]:
    """The prefetch templates with the codes of the value sets in force (shipped plus a
    site's ``valueset_dir``): what discovery serves and what the service fetches."""
    return {s.key: s.render(value_sets) for s in SOURCES}


def with_served_prefetch(
    discovery: Discovery, shipped: ValueSets, in_force: ValueSets
) -> Discovery:
    """``discovery`` checked against the table (ValueError listing each disagreement) and
    serving the queries of the value sets in force, in its document and its services."""
    problems = discovery_problems(
        {sid: s.prefetch for sid, s in discovery.services.items()}, shipped
    )
    if problems:
        raise ValueError(
            f"{discovery.source} and the data sources disagree: " + "; ".join(problems)
        )
    prefetch = served_prefetch(in_force)
    document = copy.deepcopy(discovery.document)
    for entry in document.get("services", []):
        entry["prefetch"] = dict(prefetch)
    services = {sid: replace(s, prefetch=dict(prefetch)) for sid, s in discovery.services.items()}
    return replace(discovery, document=document, services=services)
