"""MedicationRequest resources -> the starts of systemic antibiotic orders, for T0.

clinical-rules.md ("T0, the treatment start", "Antibiotic orders"): T0 is the start of the
first antibiotic order for the episode. This module only finds the orders and their
starts; which one is T0 (the window around the episode date) is the engine's choice.

The antibiotics value set is data (cds_service/valuesets/antibiotics.json, extendable by a
site's files of the same shape); ``build_antibiotics`` checks its shape and indexes it.
Loading files is the caller's job (no I/O here).

An order counts when all of these hold:
- its medication is a systemic antibacterial: a coding is an RxNorm code of the value
  set, or any coding's display or the concept text names one of its words (whole words,
  any case), or an ATC coding is under one of its ATC prefixes or equals one of its ATC
  codes. The medication is ``medicationCodeableConcept`` or ``medicationReference`` to a
  contained Medication ("#id") or to a Medication in the same list ("Medication/id", as a
  search with ``_include`` returns it); a Medication is read by its ``code`` and its
  ingredients' concepts;
- nothing names a form or route that is not systemic treatment (eye drops, skin, bone
  cement; vancomycin by mouth);
- status active, completed or stopped; intent order, plan or original-order; not
  ``doNotPerform``;
- it has a start: ``dosageInstruction[0].timing.repeat.boundsPeriod.start``, else
  ``authoredOn``.

Medications that are not antibacterials are not this module's data: they are skipped
without a word. An antibacterial order that fails a condition is skipped with a DataIssue
that says why in plain words. Nothing raises on odd JSON: a value of the wrong type reads
as absent and is reported when it mattered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fhir_mappers.model import AntibioticStart, DataIssue, When
from fhir_mappers.rawjson import reference
from fhir_mappers.timeutil import parse_fhir_time

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
ANTIBIOTICS_VALUE_SET = "antibiotics"  # the "valueSet" of the files this module reads

USED_STATUSES = frozenset({"active", "completed", "stopped"})
USED_INTENTS = frozenset({"order", "plan", "original-order"})
RXNORM_TTYS = frozenset({"IN", "PIN", "MIN"})

BOUNDS_START = "boundsPeriod.start"
AUTHORED_ON = "authoredOn"
KIND = "antibiotic"  # DataIssue.kind for the orders this module reports


# ---------------------------------------------------------------------------------------
# The value set


@dataclass(frozen=True)
class Ingredient:
    """One antibacterial of the value set: its clinical name, codes and words."""

    name: str
    rxnorm: tuple[str, ...]  # RxNorm codes; empty when none was confirmed
    words: tuple[str, ...]  # lower case, single spaces
    not_systemic_when: tuple[str, ...]  # routes/forms not systemic for this drug alone
    position: int  # order in the value set: the first wins a tie
    source_file: str


@dataclass(frozen=True, eq=False)
class Antibiotics:
    """The antibiotics value set, indexed. Build once at startup with ``build_antibiotics``."""

    ingredients: tuple[Ingredient, ...]
    by_rxnorm: Mapping[str, Ingredient]
    by_word: Mapping[str, Ingredient]
    atc_system: str
    atc_prefixes: tuple[str, ...]
    atc_codes: frozenset[str]
    non_systemic_words: tuple[str, ...]
    sources: Mapping[str, str]  # file name -> its "source" text, for audit
    words_pattern: re.Pattern[str]
    non_systemic_pattern: re.Pattern[str] | None

    def by_code(self, code: str) -> Ingredient | None:
        return self.by_rxnorm.get(code.strip())

    def is_atc_antibacterial(self, code: str) -> bool:
        code = code.strip().upper()
        return code in self.atc_codes or code.startswith(self.atc_prefixes)

    def named_in(self, texts: Iterable[str]) -> dict[Ingredient, set[str]]:
        """The ingredients whose words occur in ``texts``, with the words found."""
        found: dict[Ingredient, set[str]] = {}
        for text in texts:
            for match in self.words_pattern.finditer(_normal(text)):
                word = match.group(0)
                found.setdefault(self.by_word[word], set()).add(word)
        return found


_FILE_KEYS = {"valueSet", "source", "note", "atc", "nonSystemicWords", "entries"}
_ENTRY_KEYS = {"name", "rxnorm", "words", "notSystemicWhen", "note", "comment"}
_CODE_KEYS = {"code", "display", "tty"}
_ATC_KEYS = {"system", "prefixes", "codes"}


def build_antibiotics(files: Iterable[tuple[str, Mapping[str, Any]]]) -> Antibiotics:
    """Validate and index (file name, parsed JSON) pairs: the shipped file first, then a
    site's. ValueError names the file and the entry.

    A site file has the shipped file's shape; its entries add ingredients, and an entry
    with the name of an earlier one adds words and codes to it. A code or word that
    would name two different ingredients is an error, as is an ATC system that differs.
    """
    names: dict[str, dict[str, Any]] = {}  # lower-case name -> collected fields
    code_owner: dict[str, str] = {}
    word_owner: dict[str, str] = {}
    atc_system: str | None = None
    atc_prefixes: list[str] = []
    atc_codes: set[str] = set()
    non_systemic: list[str] = []
    sources: dict[str, str] = {}

    for file_name, data in files:
        if not isinstance(data, Mapping):
            raise ValueError(f"{file_name}: expected a JSON object")
        if data.get("valueSet") != ANTIBIOTICS_VALUE_SET:
            raise ValueError(f"{file_name}: 'valueSet' must be {ANTIBIOTICS_VALUE_SET!r}")
        unknown = set(data) - _FILE_KEYS
        if unknown:
            raise ValueError(f"{file_name}: unknown keys {sorted(unknown)}")
        source = data.get("source")
        if not isinstance(source, str) or not source.strip():
            raise ValueError(f"{file_name}: 'source' (where the codes come from) is required")
        if data.get("note") is not None and not isinstance(data.get("note"), str):
            raise ValueError(f"{file_name}: 'note' must be a string")
        sources[file_name] = source

        if data.get("atc") is not None:
            system, prefixes, codes = _atc(file_name, data["atc"])
            if atc_system is not None and system != atc_system:
                raise ValueError(
                    f"{file_name}: atc.system {system!r} differs from {atc_system!r} given before"
                )
            atc_system = system
            atc_prefixes += [p for p in prefixes if p not in atc_prefixes]
            atc_codes.update(codes)
        for word in _word_list(data.get("nonSystemicWords"), f"{file_name}: nonSystemicWords"):
            if word not in non_systemic:
                non_systemic.append(word)

        entries = data.get("entries")
        if not isinstance(entries, list):
            raise ValueError(f"{file_name}: 'entries' must be a list")
        for index, raw in enumerate(entries):
            where = f"{file_name}: entries[{index}]"
            if not isinstance(raw, Mapping):
                raise ValueError(f"{where}: expected an object")
            name = _text(raw.get("name"), f"{where}: 'name'")
            where = f"{file_name}: entries[{index}] ({name})"
            unknown = set(raw) - _ENTRY_KEYS
            if unknown:
                raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
            for key in ("note", "comment"):
                if raw.get(key) is not None and not isinstance(raw.get(key), str):
                    raise ValueError(f"{where}: '{key}' must be a string")
            codes = _rxnorm(raw.get("rxnorm"), where)
            words = _word_list(raw.get("words"), f"{where}: 'words'")
            if not words:
                raise ValueError(f"{where}: 'words' must name the ingredient at least once")
            routes = _word_list(raw.get("notSystemicWhen"), f"{where}: 'notSystemicWhen'")

            key = name.casefold()
            entry = names.setdefault(
                key,
                {
                    "name": name,
                    "rxnorm": [],
                    "words": [],
                    "routes": [],
                    "position": len(names),
                    "file": file_name,
                },
            )
            for code in codes:
                _claim(code_owner, code, key, f"{where}: RxNorm code {code}")
                if code not in entry["rxnorm"]:
                    entry["rxnorm"].append(code)
            for word in words:
                _claim(word_owner, word, key, f"{where}: word {word!r}")
                if word not in entry["words"]:
                    entry["words"].append(word)
            entry["routes"] += [r for r in routes if r not in entry["routes"]]

    if not names:
        raise ValueError("the antibiotics value set has no entries")
    if atc_system is None:
        raise ValueError("the antibiotics value set has no 'atc' block")

    ingredients = tuple(
        Ingredient(
            name=fields["name"],
            rxnorm=tuple(fields["rxnorm"]),
            words=tuple(fields["words"]),
            not_systemic_when=tuple(fields["routes"]),
            position=fields["position"],
            source_file=fields["file"],
        )
        for fields in names.values()
    )
    by_key = {ingredient.name.casefold(): ingredient for ingredient in ingredients}
    return Antibiotics(
        ingredients=ingredients,
        by_rxnorm=MappingProxyType({code: by_key[key] for code, key in code_owner.items()}),
        by_word=MappingProxyType({word: by_key[key] for word, key in word_owner.items()}),
        atc_system=atc_system,
        atc_prefixes=tuple(atc_prefixes),
        atc_codes=frozenset(atc_codes),
        non_systemic_words=tuple(non_systemic),
        sources=MappingProxyType(sources),
        words_pattern=_pattern(word_owner),
        non_systemic_pattern=_pattern(non_systemic) if non_systemic else None,
    )


def _atc(file_name: str, raw: object) -> tuple[str, list[str], list[str]]:
    where = f"{file_name}: atc"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object")
    unknown = set(raw) - _ATC_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    system = _text(raw.get("system"), f"{where}.system")
    prefixes = [p.upper() for p in _codes(raw.get("prefixes"), f"{where}.prefixes")]
    codes = [c.upper() for c in _codes(raw.get("codes"), f"{where}.codes")]
    return system, prefixes, codes


def _codes(raw: object, where: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{where}: must be a list of strings")
    return [_text(item, f"{where}[{i}]") for i, item in enumerate(raw)]


def _rxnorm(raw: object, where: str) -> list[str]:
    """The codes of an entry's "rxnorm" list; null means none confirmed."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: 'rxnorm' must be null or a non-empty list")
    codes = []
    for i, item in enumerate(raw):
        at = f"{where}: rxnorm[{i}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{at}: expected an object")
        unknown = set(item) - _CODE_KEYS
        if unknown:
            raise ValueError(f"{at}: unknown keys {sorted(unknown)}")
        code = _text(item.get("code"), f"{at}.code")
        if not code.isdigit():
            raise ValueError(f"{at}.code: an RxCUI is digits only, not {code!r}")
        _text(item.get("display"), f"{at}.display")
        tty = item.get("tty")
        if tty not in RXNORM_TTYS:
            raise ValueError(f"{at}.tty: must be one of {', '.join(sorted(RXNORM_TTYS))}")
        codes.append(code)
    return codes


def _word_list(raw: object, where: str) -> list[str]:
    """Words as compared: lower case, single spaces."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{where}: must be a list of strings")
    words = []
    for i, item in enumerate(raw):
        word = _normal(_text(item, f"{where}[{i}]"))
        if not re.search(r"[0-9a-z]", word):
            raise ValueError(f"{where}[{i}]: {item!r} has no letter or digit to match")
        words.append(word)
    return words


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ValueError(f"{where} must be a non-empty string without surrounding spaces")
    return value


def _claim(owners: dict[str, str], item: str, key: str, where: str) -> None:
    owner = owners.setdefault(item, key)
    if owner != key:
        raise ValueError(f"{where} already names {owner!r}")


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def _pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole words: not inside a longer run of letters and digits ("penicillin g" is not
    in "penicillin gk"; a hyphen or a slash ends a word)."""
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))
    return re.compile(rf"(?<![0-9a-z])(?:{alternatives})(?![0-9a-z])")


# ---------------------------------------------------------------------------------------
# The orders


class _Skip(Exception):
    """An antibacterial order that does not count; the message is the audit reason."""

    def __init__(self, reason: str, plain: str) -> None:
        super().__init__(reason)
        self.plain = plain


@dataclass(frozen=True)
class _Medication:
    """What an order says its medication is: codings and texts, from wherever they came."""

    codings: tuple[tuple[str | None, str | None, str | None], ...]  # (system, code, display)
    texts: tuple[str, ...]  # concept texts, coding displays, the reference's display


def map_antibiotic_orders(
    resources: Iterable[Any], antibiotics: Antibiotics
) -> tuple[tuple[AntibioticStart, ...], tuple[DataIssue, ...]]:
    """The starts of the systemic antibiotic orders, earliest first, and the antibacterial
    orders that were skipped. ``resources`` are MedicationRequest dicts (Bundle entries
    already unwrapped) and the Medications an ``_include`` brought with them."""
    starts: list[AntibioticStart] = []
    issues: list[DataIssue] = []
    items = _items(resources, issues)
    medications = _medications(items)
    for index, resource in enumerate(items):
        if not isinstance(resource, dict):
            issues.append(DataIssue(f"#{index}", "not a JSON object: skipped"))
            continue
        kind = resource.get("resourceType")
        if kind == "Medication":
            continue  # read through the orders that refer to it
        ref = reference(resource, index)
        if kind != "MedicationRequest":
            issues.append(DataIssue(ref, "not a MedicationRequest or Medication: skipped"))
            continue
        try:
            start = _order(ref, resource, medications, antibiotics, issues)
        except _Skip as skip:
            issues.append(DataIssue(ref, str(skip), kind=KIND, plain=skip.plain))
            continue
        if start is not None:
            starts.append(start)
    starts.sort(key=lambda s: (s.when.instant, s.reference))
    return tuple(starts), tuple(issues)


def _items(resources: object, issues: list[DataIssue]) -> list[Any]:
    """The resources as a list; anything that is not a list of them is reported."""
    if resources is None:
        return []
    if isinstance(resources, Mapping):
        return [resources]  # one resource where a list belongs: read it as the list's only one
    if isinstance(resources, (str, bytes)) or not isinstance(resources, Iterable):
        issues.append(DataIssue("MedicationRequest", "not a list of resources: none read"))
        return []
    return list(resources)


def _medications(items: list[Any]) -> dict[str, dict[str, Any]]:
    """The Medications of the list by id (the first one wins a repeated id)."""
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, dict) and item.get("resourceType") == "Medication":
            ident = item.get("id")
            if isinstance(ident, str) and ident:
                found.setdefault(ident, item)
    return found


def _order(
    ref: str,
    resource: dict[str, Any],
    medications: Mapping[str, dict[str, Any]],
    antibiotics: Antibiotics,
    issues: list[DataIssue],
) -> AntibioticStart | None:
    """The order's start, or None when it is not an antibacterial; _Skip when it is one
    that does not count."""
    medication, problem = _medication(resource, medications)
    if medication is None:
        # Unknown medication: report it only for an order that would otherwise count.
        if problem is not None and _countable(resource):
            issues.append(
                DataIssue(
                    ref,
                    f"{problem}: whether it is an antibiotic is unknown",
                    kind=None,
                    plain="medication order whose drug could not be read",
                )
            )
        return None
    ingredient = _classify(medication, antibiotics)
    if ingredient is None:
        return None  # not an antibacterial: not this module's data
    name = ingredient if isinstance(ingredient, str) else ingredient.name

    route_texts = _route_texts(resource)
    _check_systemic(name, ingredient, medication.texts, route_texts, antibiotics)
    _check_order(resource, name)
    when, source = _start(ref, resource, name, issues)
    return AntibioticStart(reference=ref, when=when, name=name, source=source)


def _countable(resource: dict[str, Any]) -> bool:
    return (
        _one_of(resource.get("status"), USED_STATUSES)
        and _one_of(resource.get("intent"), USED_INTENTS)
        and resource.get("doNotPerform") is not True
    )


def _one_of(value: object, allowed: frozenset[str]) -> bool:
    """``value in allowed`` for any JSON value (a list or an object is not hashable)."""
    return isinstance(value, str) and value in allowed


def _medication(
    resource: dict[str, Any], medications: Mapping[str, dict[str, Any]]
) -> tuple[_Medication | None, str | None]:
    """The medication's codings and texts, or None and why it could not be read."""
    if "medicationCodeableConcept" in resource:
        concept = resource["medicationCodeableConcept"]
        if not isinstance(concept, dict):
            return None, "medicationCodeableConcept is not an object"
        return _read([concept], ()), None
    if "medicationReference" not in resource:
        return None, "no medicationCodeableConcept or medicationReference"
    link = resource["medicationReference"]
    if not isinstance(link, dict):
        return None, "medicationReference is not an object"
    display = link.get("display")
    extra = (display,) if isinstance(display, str) else ()
    target = link.get("reference")
    found = _resolve(target, resource, medications) if isinstance(target, str) else None
    if found is None:
        if extra:  # the reference's display is all there is to read
            return _read([], extra), None
        if not isinstance(target, str):
            return None, "medicationReference has no reference"
        return None, f"medication {target!r} is not in the order or the results"
    concepts = [found.get("code")]
    ingredients = found.get("ingredient")
    if isinstance(ingredients, list):
        for item in ingredients:
            if isinstance(item, dict):
                concepts.append(item.get("itemCodeableConcept"))  # R4
                inner = item.get("item")
                if isinstance(inner, dict):
                    concepts.append(inner.get("concept"))  # R5
    return _read(concepts, extra), None


def _resolve(
    target: str, resource: dict[str, Any], medications: Mapping[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """A contained Medication ("#id") or one of the list ("Medication/id", also as a full
    URL or with a /_history/ version)."""
    target = target.strip()
    if target.startswith("#"):
        contained = resource.get("contained")
        if not isinstance(contained, list):
            return None
        for item in contained:
            if (
                isinstance(item, dict)
                and item.get("resourceType") == "Medication"
                and item.get("id") == target[1:]
            ):
                return item
        return None
    parts = target.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Medication":
        return medications.get(parts[-1])
    return None


def _read(concepts: Iterable[object], extra: tuple[str, ...]) -> _Medication:
    codings: list[tuple[str | None, str | None, str | None]] = []
    texts: list[str] = []
    for concept in concepts:
        if not isinstance(concept, dict):
            continue
        text = concept.get("text")
        if isinstance(text, str):
            texts.append(text)
        raw = concept.get("coding")
        if not isinstance(raw, list):
            continue
        for item in raw:
            if not isinstance(item, dict):
                continue
            system, code, display = (
                _str_or_none(item.get(k)) for k in ("system", "code", "display")
            )
            codings.append((system, code, display))
            if display is not None:
                texts.append(display)
    texts.extend(extra)
    return _Medication(codings=tuple(codings), texts=tuple(texts))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _classify(medication: _Medication, antibiotics: Antibiotics) -> Ingredient | str | None:
    """The ingredient the medication is, or for an antibacterial known only by its ATC
    code a name from its codings; None when it is not an antibacterial of the set.

    Codes and words count together; the ingredient matched most often wins, then the one
    first in the value set (so "amoxicillin / clavulanate" reads as the combination)."""
    score: dict[Ingredient, int] = {}
    for system, code, _ in medication.codings:
        if system == RXNORM and code is not None:
            ingredient = antibiotics.by_code(code)
            if ingredient is not None:
                score[ingredient] = score.get(ingredient, 0) + 1
    for ingredient, words in antibiotics.named_in(medication.texts).items():
        score[ingredient] = score.get(ingredient, 0) + len(words)
    if score:
        return max(score, key=lambda i: (score[i], -i.position))
    for system, code, display in medication.codings:
        if system == antibiotics.atc_system and code and antibiotics.is_atc_antibacterial(code):
            return display.strip() if display else f"an antibacterial (ATC {code.strip()})"
    return None


def _route_texts(resource: dict[str, Any]) -> tuple[str, ...]:
    """The route's text and coding displays of every dosage instruction (not the dosage's
    free text, which may mention anything: "watch the skin for a rash")."""
    texts: list[str] = []
    dosage = resource.get("dosageInstruction")
    if not isinstance(dosage, list):
        return ()
    for item in dosage:
        route = item.get("route") if isinstance(item, dict) else None
        if not isinstance(route, dict):
            continue
        texts.extend(_read([route], ()).texts)
    return tuple(texts)


def _check_systemic(
    name: str,
    ingredient: Ingredient | str,
    medication_texts: tuple[str, ...],
    route_texts: tuple[str, ...],
    antibiotics: Antibiotics,
) -> None:
    texts = [_normal(t) for t in (*medication_texts, *route_texts)]
    pattern = antibiotics.non_systemic_pattern
    if pattern is not None:
        for text in texts:
            found = pattern.search(text)
            if found:
                raise _Skip(
                    f"{name} as {found.group(0)!r}: not systemic treatment, not counted",
                    f"{name} not given systemically ({found.group(0)}): not counted as treatment",
                )
    if isinstance(ingredient, Ingredient) and ingredient.not_systemic_when:
        routes = _pattern(ingredient.not_systemic_when)
        for text in texts:
            found = routes.search(text)
            if found:
                raise _Skip(
                    f"{name} {found.group(0)!r}: not systemic treatment, not counted",
                    f"{name} by a route that does not reach the infection "
                    f"({found.group(0)}): not counted as treatment",
                )


def _check_order(resource: dict[str, Any], name: str) -> None:
    status = resource.get("status")
    if not _one_of(status, USED_STATUSES):
        if isinstance(status, str) and status:
            raise _Skip(
                f"status {status!r} is not active, completed or stopped",
                f"{name} order marked {status}",
            )
        raise _Skip(f"no readable status ({status!r})", f"{name} order without a status")
    intent = resource.get("intent")
    if not _one_of(intent, USED_INTENTS):
        if isinstance(intent, str) and intent:
            raise _Skip(
                f"intent {intent!r} is not order, plan or original-order",
                f"{name} {intent}, not an order",
            )
        raise _Skip(f"no readable intent ({intent!r})", f"{name} order without an intent")
    do_not = resource.get("doNotPerform")
    if do_not is True:
        raise _Skip("doNotPerform: an order not to give it", f"order not to give {name}")
    if do_not is not None and not isinstance(do_not, bool):
        raise _Skip(
            f"doNotPerform is not true or false ({do_not!r})",
            f"{name} order that may be an order not to give it",
        )


_MISSING = object()
_BAD_SHAPE = object()


def _walk(value: object, *path: str | int) -> object:
    """The value at ``path``; _MISSING when an element is absent, _BAD_SHAPE when one is
    of the wrong type (a list where an object belongs, ...)."""
    for step in path:
        if value is None:
            return _MISSING
        if isinstance(step, int):
            if not isinstance(value, list):
                return _BAD_SHAPE
            if len(value) <= step:
                return _MISSING
            value = value[step]
        else:
            if not isinstance(value, dict):
                return _BAD_SHAPE
            value = value.get(step)
    return _MISSING if value is None else value


def _start(
    ref: str, resource: dict[str, Any], name: str, issues: list[DataIssue]
) -> tuple[When, str]:
    """boundsPeriod.start of the first dosage instruction, else authoredOn."""
    element = "dosageInstruction[0].timing.repeat.boundsPeriod.start"
    bounds = _walk(resource, "dosageInstruction", 0, "timing", "repeat", "boundsPeriod", "start")
    problem = None
    if bounds is _BAD_SHAPE:
        problem = f"{element} not read: an element on the way has the wrong type"
    elif bounds is not _MISSING:
        try:
            return parse_fhir_time(bounds), BOUNDS_START
        except ValueError as exc:
            problem = f"{element} not read: {exc}"
    authored = resource.get("authoredOn")
    try:
        when = None if authored is None else parse_fhir_time(authored)
    except ValueError as exc:
        reason = f"authoredOn not read: {exc}"
        raise _Skip(
            reason if problem is None else f"{problem}; {reason}",
            f"{name} order with an unreadable start date",
        ) from None
    if when is None:
        raise _Skip(
            f"no {element} and no authoredOn" if problem is None else f"{problem}; no authoredOn",
            f"{name} order without a start date"
            if problem is None
            else f"{name} order with an unreadable start date",
        )
    if problem is not None:
        issues.append(
            DataIssue(
                ref,
                f"{problem}; authoredOn used",
                kind=KIND,
                plain=f"{name} order start date unreadable; the order date was used",
            )
        )
    return when, AUTHORED_ON
