"""The documentation names every setting, so it cannot silently fall behind the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from cds_service.engine.thresholds import RuleSettings
from cds_service.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    names = [name for name in Settings.model_fields if name != "rules"]
    names += [f.name for f in dataclasses.fields(RuleSettings)]
    missing = [name for name in names if f"| `{name}` |" not in text]
    assert not missing, f"settings missing from docs/settings.md: {missing}"


def test_documented_defaults_match_the_code() -> None:
    text = (DOCS / "settings.md").read_text()
    settings = [name for name in Settings.model_fields if name != "rules"]
    rules = [f.name for f in dataclasses.fields(RuleSettings)]
    for instance, names in ((Settings(), settings), (RuleSettings(), rules)):
        for name in names:
            value = getattr(instance, name)
            if value in ("", ()):
                expected = "empty"
            elif isinstance(value, bool):
                expected = f"`{str(value).lower()}`"
            else:
                expected = f"`{value}`"
            assert f"| `{name}` | {expected} |" in text, name


def test_the_documented_scopes_reach_every_data_source() -> None:
    """A token with the scopes integration.md gives reads every search the service
    sends; with fewer, the optional checks quietly never apply."""
    from cds_service.datasources import SOURCES

    text = (DOCS / "integration.md").read_text()
    needed = {s.resource_type for s in SOURCES} | {"Medication"}  # the _include
    for scopes in re.findall(r'"scope": "([^"]+)"', text):
        granted = {scope.split("/")[1].split(".")[0] for scope in scopes.split()}
        assert needed <= granted, f"scopes missing: {sorted(needed - granted)}"
    assert re.findall(r'"scope": "', text)
    in_words = {9: "nine"}.get(len(SOURCES), str(len(SOURCES)))
    assert f"same {in_words} prefetch templates" in text


def test_prefetch_md_describes_every_data_source() -> None:
    from cds_service.datasources import SOURCES

    text = (DOCS / "prefetch.md").read_text()
    in_words = {9: "nine"}.get(len(SOURCES), str(len(SOURCES)))
    assert f"the same {in_words} keys" in text
    for source in SOURCES:
        assert f"`{source.key}`" in text, source.key


# --- counts of the example patients ------------------------------------------------------

_UNITS = "one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = {word: i + 1 for i, word in enumerate(_UNITS)}
NUMBER_WORDS |= {word: i + 10 for i, word in enumerate(_TEENS)}
for _t, _tens in enumerate(_TENS):
    NUMBER_WORDS[_tens] = 20 + 10 * _t
    NUMBER_WORDS |= {f"{_tens}-{u}": 20 + 10 * _t + i + 1 for i, u in enumerate(_UNITS)}
# "forty synthetic example patients", "the 40 example patients", "thirty worked examples"
COUNTED = re.compile(
    r"\b(?P<n>\d+|[a-z]+(?:-[a-z]+)?)\s+(?:(?:synthetic|example|worked|stored)\s+)+"
    r"(?:patients|examples)\b",
    re.I,
)
# "ids `spine-cds-e1` … `spine-cds-e40`"
ID_RANGE = re.compile(r"spine-cds-e1`?\s*(?:…|\.\.\.|to|-)\s*`?spine-cds-e(?P<n>\d+)\b")


def example_patient_counts(text: str) -> list[tuple[str, int]]:
    """Every count of the example patients a text gives: (the words, the number)."""
    found = []
    for match in COUNTED.finditer(" ".join(text.split())):
        word = match["n"].lower()
        number = int(word) if word.isdigit() else NUMBER_WORDS.get(word)
        if number is not None:
            found.append((match[0], number))
    found += [(m[0], int(m["n"])) for m in ID_RANGE.finditer(text)]
    return found


def test_every_count_of_the_example_patients_is_the_number_stored() -> None:
    from cds_service.examples import example_keys

    stored = len(example_keys())
    documents = [DOCS.parent / "README.md", *sorted(DOCS.rglob("*.md"))]
    counts = {
        str(path.relative_to(DOCS.parent)): example_patient_counts(path.read_text("utf-8"))
        for path in documents
    }
    wrong = {name: [c for c in found if c[1] != stored] for name, found in counts.items()}
    assert not any(wrong.values()), f"{stored} example patients are stored: {wrong}"
    # the places that give a count are found (the check above is not vacuous)
    assert counts["docs/README.md"] and counts["docs/sandbox.md"], counts


def test_the_example_count_check_reads_words_digits_and_id_ranges() -> None:
    text = (
        "loads the thirty synthetic example patients; Forty synthetic\npatients; "
        "each one of the 33 example patients; ids `spine-cds-e1` … `spine-cds-e30`; "
        "29 cured patients; the example patients; twenty-one worked examples"
    )
    assert [n for _, n in example_patient_counts(text)] == [30, 40, 33, 21, 30]
