"""Code lists as an immutable lookup structure, built from already-loaded JSON dicts.

The lists themselves are data (cds_service/valuesets/*.json) so that a site can extend
them without touching code; this module only checks their shape and indexes them for
O(1) lookups on the request path. Loading files is the caller's job (no I/O here).

Each file is an object: {"valueSet": "spine-imaging" | "conditions" | "observations",
"source": str, "note": str (optional), "entries": [...]}. Several files may feed one
value set; an entry that repeats another with different content is an error.

ICD-10-CM codes arrive with or without the dot ("M46.26" or "M4626"), so they are
compared without it and in upper case; a "prefix" entry "M46.2" matches M46.2 and every
code below it. Other systems compare exactly.

A code system arrives as its FHIR URI or, from many EHR interfaces, as its HL7 OID:
every lookup reads it through ``canonical_system`` (fhir_mappers/codesystems.py), and
the files' systems are read the same way. A coding keeps the system it arrived with.

A condition entry may carry a clinical "name" (what a card calls the condition, e.g.
"cauda equina syndrome") and a spinal "region" (one of CONDITION_REGIONS) when its code
fixes one; absent means unknown or unspecified. The region an ICD-10-CM M46.2x-M46.5x
code takes from its fifth character is a rule of that code system and lives in
fhir_mappers/conditions.py; a region written in the file wins over it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from fhir_mappers.codesystems import ATC as ATC
from fhir_mappers.codesystems import CPT as CPT
from fhir_mappers.codesystems import ICD10CM as ICD10CM
from fhir_mappers.codesystems import LOINC as LOINC
from fhir_mappers.codesystems import RXNORM as RXNORM
from fhir_mappers.codesystems import SNOMED as SNOMED
from fhir_mappers.codesystems import canonical_system as canonical_system
from fhir_mappers.model import ConditionCategory, Modality

E = TypeVar("E", bound=Enum)

# Where an imaging study looks: a third of the spine, a combined study (thoracolumbar:
# thoracic and lumbar; lumbosacral: lumbar and sacral), the sacrum, or the whole spine.
REGIONS = frozenset(
    {"cervical", "thoracic", "lumbar", "thoracolumbar", "lumbosacral", "sacral", "spine"}
)
CONTRASTS = frozenset({"without", "with", "without-and-with"})
# Where on the spine a condition sits (clinical-rules.md, "Level of the infection and of the
# order"): the ICD-10-CM spinal sites; absent means unknown or unspecified.
CONDITION_REGIONS = frozenset(
    {
        "occipito-atlanto-axial",
        "cervical",
        "cervicothoracic",
        "thoracic",
        "thoracolumbar",
        "lumbar",
        "lumbosacral",
        "sacral",
        "multiple",
    }
)


class ObservationKind(StrEnum):
    """How an Observation code is read; IGNORE marks codes that are known but not used."""

    CRP = "crp"  # mass concentration (observations_careful.CRP_MASS_TO_MG_PER_L)
    CRP_HS = "crp-hs"  # high-sensitivity CRP, mass concentration
    CRP_MOLAR = "crp-molar"  # nmol/L, used only with a configured factor
    ESR = "esr"  # mm/h
    PAIN = "pain"  # 0-10
    IGNORE = "ignore"  # e.g. qualitative CRP


@dataclass(frozen=True)
class ImagingEntry:
    system: str
    code: str
    display: str | None
    modality: Modality
    region: str
    contrast: str | None
    verified: bool
    source_file: str


@dataclass(frozen=True)
class ConditionEntry:
    system: str
    code: str  # as written in the file; matching uses normalize_code(system, code)
    match: str  # "exact" | "prefix"
    category: ConditionCategory
    display: str | None
    verified: bool
    source_file: str
    name: str | None = None  # the clinical name a card uses, e.g. "cauda equina syndrome"
    region: str | None = None  # one of CONDITION_REGIONS when the code fixes it, else None


@dataclass(frozen=True)
class ProcedureEntry:
    """A spine surgery code (clinical-rules.md, "Imaging", 2026-12-06: a CT after spine
    surgery in the episode is not advised against)."""

    system: str
    code: str
    display: str | None
    name: str  # what a card calls it, e.g. "lumbar fusion"
    verified: bool
    source_file: str
    # "fusion" (may leave hardware or a fusion a CT assesses), "debridement" (none); None
    # when a site's entry does not say (taken as a fusion may be, the cautious wording)
    kind: str | None = None


@dataclass(frozen=True)
class ObservationEntry:
    system: str
    code: str
    kind: ObservationKind
    display: str | None
    verified: bool
    source_file: str


def normalize_code(system: str, code: str) -> str:
    """The form a code is compared in: ICD-10-CM without its dot, upper case; others stripped."""
    code = code.strip()
    if canonical_system(system) == ICD10CM:
        return code.replace(".", "").upper()
    return code


@dataclass(frozen=True, eq=False)
class ValueSets:
    """All code lists, indexed. Build once at startup with ``build_value_sets``."""

    imaging: Mapping[tuple[str, str], ImagingEntry]
    condition_exact: Mapping[tuple[str, str], ConditionEntry]
    condition_prefixes: Mapping[
        str, tuple[tuple[str, ConditionEntry], ...]
    ]  # system -> longest first
    observations: Mapping[tuple[str, str], ObservationEntry]
    sources: Mapping[str, str]  # file name -> its "source" text, for audit and cards
    procedures: Mapping[tuple[str, str], ProcedureEntry] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # condition_prefixes by system as (lengths, longest first; prefix -> entry): derived
    _prefix_lookup: Mapping[str, tuple[tuple[int, ...], Mapping[str, ConditionEntry]]] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        lookup = {}
        for system, items in self.condition_prefixes.items():
            by_prefix: dict[str, ConditionEntry] = {}
            for prefix, entry in items:
                by_prefix.setdefault(prefix, entry)
            lengths = tuple(sorted({len(prefix) for prefix in by_prefix}, reverse=True))
            lookup[system] = (lengths, by_prefix)
        object.__setattr__(self, "_prefix_lookup", lookup)

    def procedure_entry(self, system: str, code: str) -> ProcedureEntry | None:
        return self.procedures.get((canonical_system(system), code.strip()))

    def imaging_entry(self, system: str, code: str) -> ImagingEntry | None:
        return self.imaging.get((canonical_system(system), code.strip()))

    def observation_entry(self, system: str, code: str) -> ObservationEntry | None:
        return self.observations.get((canonical_system(system), code))

    def condition_entry(self, system: str, code: str) -> ConditionEntry | None:
        """Exact match first, else the longest matching prefix."""
        system = canonical_system(system)
        key = normalize_code(system, code)
        exact = self.condition_exact.get((system, key))
        if exact is not None:
            return exact
        # The longest prefix that matches is the one of the longest length whose cut of
        # the key is a prefix (one per length): a few lookups, not a scan of them all.
        lookup = self._prefix_lookup.get(system)
        if lookup is None:
            return None
        lengths, by_prefix = lookup
        for length in lengths:
            if length <= len(key):
                entry = by_prefix.get(key[:length])
                if entry is not None:
                    return entry
        return None


PROCEDURE_KINDS = frozenset({"fusion", "debridement"})
# Characters a token search needs escaped (FHIR: , | $ \) or a query string does.
_QUERY_UNSAFE = re.compile(r"[,|$\\&#+%?\s]")
_VALUE_SET_NAMES = ("spine-imaging", "conditions", "observations", "procedures")
_COMMON_KEYS = {"system", "code", "display", "verified", "comment"}
_KEYS = {
    "spine-imaging": _COMMON_KEYS | {"modality", "region", "contrast"},
    "conditions": _COMMON_KEYS | {"match", "category", "name", "region"},
    "observations": _COMMON_KEYS | {"kind"},
    "procedures": _COMMON_KEYS | {"name", "kind"},
}


def build_value_sets(files: Iterable[tuple[str, Mapping[str, Any]]]) -> ValueSets:
    """Validate and index (file name, parsed JSON) pairs; ValueError names the file and entry."""
    imaging: dict[tuple[str, str], ImagingEntry] = {}
    exact: dict[tuple[str, str], ConditionEntry] = {}
    prefixes: dict[tuple[str, str], ConditionEntry] = {}
    observations: dict[tuple[str, str], ObservationEntry] = {}
    procedures: dict[tuple[str, str], ProcedureEntry] = {}
    sources: dict[str, str] = {}

    for name, data in files:
        if not isinstance(data, Mapping):
            raise ValueError(f"{name}: expected a JSON object")
        value_set = data.get("valueSet")
        if value_set not in _VALUE_SET_NAMES:
            raise ValueError(f"{name}: 'valueSet' must be one of {', '.join(_VALUE_SET_NAMES)}")
        source = data.get("source")
        if not isinstance(source, str) or not source.strip():
            raise ValueError(f"{name}: 'source' (where the codes come from) is required")
        entries = data.get("entries")
        if not isinstance(entries, list):
            raise ValueError(f"{name}: 'entries' must be a list")
        sources[name] = source

        for index, raw in enumerate(entries):
            where = f"{name}: entries[{index}]"
            if not isinstance(raw, Mapping):
                raise ValueError(f"{where}: expected an object")
            system, code = _str(raw, "system", where), _str(raw, "code", where)
            system = canonical_system(system)  # a site's file may name a system by its OID
            where = f"{name}: entries[{index}] ({system}|{code})"
            unknown = set(raw) - _KEYS[value_set]
            if unknown:
                raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
            display = _optional_str(raw, "display", where)
            verified = raw.get("verified")
            if not isinstance(verified, bool):
                raise ValueError(f"{where}: 'verified' must be true or false")

            if value_set == "spine-imaging":
                img = ImagingEntry(
                    system=system,
                    code=code,
                    display=display,
                    modality=_enum(Modality, raw.get("modality"), "modality", where),
                    region=_choice(raw.get("region"), REGIONS, "region", where),
                    contrast=None
                    if raw.get("contrast") is None
                    else _choice(raw.get("contrast"), CONTRASTS, "contrast", where),
                    verified=verified,
                    source_file=name,
                )
                _add(imaging, (system, code), img, where)
            elif value_set == "conditions":
                match = _choice(raw.get("match"), {"exact", "prefix"}, "match", where)
                cond = ConditionEntry(
                    system=system,
                    code=code,
                    match=match,
                    category=_enum(ConditionCategory, raw.get("category"), "category", where),
                    display=display,
                    verified=verified,
                    source_file=name,
                    name=None if raw.get("name") is None else _str(raw, "name", where),
                    region=None
                    if raw.get("region") is None
                    else _choice(raw.get("region"), CONDITION_REGIONS, "region", where),
                )
                key = (system, normalize_code(system, code))
                _add(exact if match == "exact" else prefixes, key, cond, where)
            elif value_set == "procedures":
                proc = ProcedureEntry(
                    system=system,
                    code=code,
                    display=display,
                    name=_str(raw, "name", where),
                    verified=verified,
                    source_file=name,
                    kind=None
                    if raw.get("kind") is None
                    else _choice(raw.get("kind"), PROCEDURE_KINDS, "kind", where),
                )
                _add(procedures, (system, code), proc, where)
            else:
                if _QUERY_UNSAFE.search(f"{system}{code}"):
                    # these go into search URLs as they are ("code=system|code,..."): a ","
                    # splits a code, an "&" adds a parameter, a "#" cuts the query (an
                    # attack suite, with a site's file)
                    raise ValueError(
                        f"{where}: system and code must not contain , | $ \\ & # + % ? "
                        "or spaces (they are sent in the searches as they are)"
                    )
                obs = ObservationEntry(
                    system=system,
                    code=code,
                    kind=_enum(ObservationKind, raw.get("kind"), "kind", where),
                    display=display,
                    verified=verified,
                    source_file=name,
                )
                _add(observations, (system, code), obs, where)

    by_system: dict[str, list[tuple[str, ConditionEntry]]] = {}
    for (system, prefix), entry in prefixes.items():
        by_system.setdefault(system, []).append((prefix, entry))
    prefix_index = {
        system: tuple(sorted(items, key=lambda item: (-len(item[0]), item[0])))
        for system, items in by_system.items()
    }
    return ValueSets(
        imaging=MappingProxyType(imaging),
        condition_exact=MappingProxyType(exact),
        condition_prefixes=MappingProxyType(prefix_index),
        observations=MappingProxyType(observations),
        sources=MappingProxyType(sources),
        procedures=MappingProxyType(procedures),
    )


# Condition keys a repeat may leave out: a site file written before condition entries had a
# name and a region still repeats the shipped entry rather than contradicting it.
_OPTIONAL_CONDITION_FIELDS = ("name", "region")


def _same_content(a: object, b: object) -> bool:
    """Entries equal apart from the file they came from (a site may repeat a shipped code)
    and, for conditions, apart from a name or region that one of them leaves out."""
    optional = _OPTIONAL_CONDITION_FIELDS if isinstance(a, ConditionEntry) else ()
    fields_a, fields_b = vars(a), vars(b)
    for key in fields_a.keys() | fields_b.keys():
        value_a, value_b = fields_a.get(key), fields_b.get(key)
        if key == "source_file" or (key in optional and (value_a is None or value_b is None)):
            continue
        if value_a != value_b:
            return False
    return True


def _add(index: dict[tuple[str, str], Any], key: tuple[str, str], entry: Any, where: str) -> None:
    previous = index.get(key)
    if previous is None:
        index[key] = entry
    elif not _same_content(previous, entry):
        raise ValueError(
            f"{where}: conflicts with the entry for the same code in {previous.source_file}"
        )
    elif isinstance(previous, ConditionEntry):
        # The same entry: the first one stays, with the name or region the repeat adds.
        added = {
            field: getattr(entry, field)
            for field in _OPTIONAL_CONDITION_FIELDS
            if getattr(previous, field) is None and getattr(entry, field) is not None
        }
        if added:
            index[key] = replace(previous, **added)


def _str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ValueError(f"{where}: '{key}' must be a non-empty string without surrounding spaces")
    return value


def _optional_str(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: '{key}' must be a string")
    return value


def _choice(value: object, allowed: Iterable[str], key: str, where: str) -> str:
    options = sorted(allowed)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{where}: '{key}' must be one of {', '.join(options)}, not {value!r}")
    return value


def _enum(cls: type[E], value: object, key: str, where: str) -> E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in cls)
        raise ValueError(f"{where}: '{key}' must be one of {allowed}, not {value!r}") from None
