"""What `spine-cds observation-codes` prints of a FHIR server's text: escaped and cut as
`spine-cds report` prints a client's. An outside review had a display's ESC sequences,
OSC-8 hyperlink, CR/LF (a forged table row) and U+202E reach the terminal, a system and a
code of any length fill it, and an OperationOutcome's diagnostics printed raw in the
error message."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from click.testing import CliRunner

from cds_service.cli import main
from tests.tools.scripted_fhir import Answer, ScriptedFhir, Seen, observation, outcome, searchset

# What the tool shows of a system and a code at most (its MAX_SYSTEM, MAX_CODE).
MAX_SYSTEM = 120
MAX_CODE = 64

LOINC = "http://loinc.org"
ESC_COLOUR = "\x1b[31mRED\x1b[0m"
OSC8 = "\x1b]8;;http://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
FORGED_ROW = "Glucose\r\n      9  crp       http://loinc.org|1988-5  C reactive protein"
BIDI = "\u202eniatorp evitcaer C"
LONG_SYSTEM = "urn:oid:" + "1." * 3000
LONG_CODE = "C" * 5000


def unsafe(text: str) -> list[str]:
    """Characters that would act on a terminal, or reorder what it shows: controls (a
    line break between lines aside), format characters, line separators."""
    return [
        c
        for c in text
        if c != "\n" and unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp", "Cs", "Co"}
    ]


def run(fhir: ScriptedFhir, *extra: str) -> Any:
    args = ["observation-codes", "--fhir-server", fhir.base_url, "--patient", "p1", *extra]
    return CliRunner().invoke(main, args, env={"FHIR_ACCESS_TOKEN": None})


def hostile(seen: Seen) -> Answer:
    return Answer(
        body=searchset(
            observation("o1", LOINC, "2345-7", ESC_COLOUR),
            observation("o2", LOINC, "2339-0", OSC8),
            observation("o3", LOINC, "15074-8", FORGED_ROW),
            observation("o4", "urn:oid:1.2.3", "x\x1b[2Jy", BIDI),
            observation("o5", LONG_SYSTEM, LONG_CODE, "Long"),
        )
    )


def test_a_servers_text_is_escaped_in_the_table() -> None:
    with ScriptedFhir(hostile) as fhir:
        result = run(fhir)
    assert result.exit_code == 0, result.output
    assert unsafe(result.output) == []
    lines = result.output.splitlines()
    assert len([line for line in lines if "|" in line and "count" not in line]) == 5
    assert not any(line.lstrip().startswith("9  crp") for line in lines), "a forged row"
    assert "\\u001b[31mRED\\u001b[0m" in result.output
    assert "\\u000d\\u000a" in result.output
    assert "\\u202eniatorp" in result.output
    assert "x\\u001b[2Jy" in result.output


def test_a_long_system_and_code_are_cut_with_a_mark() -> None:
    with ScriptedFhir(hostile) as fhir:
        result = run(fhir)
    row = next(line for line in result.output.splitlines() if "urn:oid:1.1.1." in line)
    system, code = row.split()[2].split("|")
    assert len(system) == MAX_SYSTEM and system.endswith("\u2026")
    assert len(code) == MAX_CODE and code.endswith("\u2026")
    assert len(row) < MAX_SYSTEM + MAX_CODE + 40


def test_the_json_is_escaped_and_cut_too() -> None:
    with ScriptedFhir(hostile) as fhir:
        result = run(fhir, "--json")
    assert result.exit_code == 0, result.output
    from cds_service.tools import observation_codes

    assert (observation_codes.MAX_SYSTEM, observation_codes.MAX_CODE) == (MAX_SYSTEM, MAX_CODE)
    assert unsafe(result.output) == []  # U+202E: json.dumps leaves it as it is
    codes = json.loads(result.output)["codes"]
    for entry in codes:
        assert unsafe(entry["system"] + entry["code"] + entry["display"]) == []
        assert len(entry["system"]) <= MAX_SYSTEM and len(entry["code"]) <= MAX_CODE
    assert {c["display"] for c in codes} >= {"\\u202eniatorp evitcaer C"}


def test_an_operation_outcomes_text_is_escaped_in_the_error() -> None:
    said = f"bad search {OSC8}\r\nError: all clear{BIDI}"

    def refuse(seen: Seen) -> Answer:
        return Answer(400, outcome("error", "invalid", said))

    with ScriptedFhir(refuse) as fhir:
        result = run(fhir)
    assert result.exit_code == 3, result.output
    assert unsafe(result.output) == []
    assert "\\u001b]8;;http://evil.example/" in result.output
    assert not any(line.startswith("Error: all clear") for line in result.output.splitlines())
