"""The antibiotics value set: which medications are systemic antibacterials.

clinical-rules.md ("T0, the treatment start"): RxNorm ingredients of the usual NVO
regimens, words that name them in a drug's display or text, and ATC J01 / J04AB02. The
data is cds_service/valuesets/antibiotics.json, extendable by a site's files of the same
shape; ``build_antibiotics`` checks the shape and indexes it (no I/O: the caller reads
the files). ``fhir_mappers.medications`` reads MedicationRequests with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fhir_mappers.codesystems import RXNORM, canonical_system

ANTIBIOTICS_VALUE_SET = "antibiotics"  # the "valueSet" of the files this module reads
RXNORM_TTYS = frozenset({"IN", "PIN", "MIN"})


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
            for match in self.words_pattern.finditer(normal_text(text)):
                word = match.group(0)
                found.setdefault(self.by_word[word], set()).add(word)
        return found

    def classify(
        self,
        codings: Iterable[tuple[str | None, str | None, str | None]],
        texts: Iterable[str],
    ) -> Ingredient | str | None:
        """The ingredient a medication is (from its (system, code, display) codings and its
        texts), or for an antibacterial known only by its ATC code a name from its
        codings; None when it is not an antibacterial of the set.

        Codes and words count together; the ingredient matched most often wins, then the
        one first in the value set (so "amoxicillin / clavulanate" reads as the
        combination)."""
        score: dict[Ingredient, int] = {}
        codings = tuple(
            (None if system is None else canonical_system(system), code, display)
            for system, code, display in codings
        )
        for system, code, _ in codings:
            if system == RXNORM and code is not None:
                ingredient = self.by_code(code)
                if ingredient is not None:
                    score[ingredient] = score.get(ingredient, 0) + 1
        for ingredient, words in self.named_in(texts).items():
            score[ingredient] = score.get(ingredient, 0) + len(words)
        if score:
            return max(score, key=lambda i: (score[i], -i.position))
        for system, code, display in codings:
            if system == self.atc_system and code and self.is_atc_antibacterial(code):
                return display.strip() if display else f"an antibacterial (ATC {code.strip()})"
        return None


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
        words_pattern=word_pattern(word_owner),
        non_systemic_pattern=word_pattern(non_systemic) if non_systemic else None,
    )


def _atc(file_name: str, raw: object) -> tuple[str, list[str], list[str]]:
    where = f"{file_name}: atc"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object")
    unknown = set(raw) - _ATC_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    system = canonical_system(_text(raw.get("system"), f"{where}.system"))
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
        word = normal_text(_text(item, f"{where}[{i}]"))
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


def normal_text(text: str) -> str:
    return " ".join(text.casefold().split())


def word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole words: not inside a longer run of letters and digits ("penicillin g" is not
    in "penicillin gk"; a hyphen or a slash ends a word)."""
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))
    return re.compile(rf"(?<![0-9a-z])(?:{alternatives})(?![0-9a-z])")
