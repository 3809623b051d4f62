"""Every reason a refused token can be logged with is explained in docs/integration.md.

An outside review compared the reasons in ``cds_service/auth/`` with the docs and found
ten in the log that the docs never named (``jku-required``, ``bad-typ``,
``replay-cache-unavailable``, ...): an integrator reading one at 3 a.m. had the code to
read. The reasons are taken from the code, every ``AuthError(...)`` the package raises, so
a new one fails here until ``errors.REASONS`` and the table of "When a call is refused"
name it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from cds_service.auth import verifier
from cds_service.auth.errors import REASONS

ROOT = Path(__file__).resolve().parents[2]
AUTH = ROOT / "cds_service" / "auth"
DOC = ROOT / "docs" / "integration.md"


def _calls(name: str) -> list[tuple[Path, ast.Call]]:
    found = []
    for path in sorted(AUTH.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name:
                found.append((path, node))
    return found


def _number_claims() -> set[str]:
    """The claims ``_number_claim`` is asked to read, each refused as invalid-claim:NAME."""
    return {
        node.args[1].value
        for _, node in _calls("_number_claim")
        if isinstance(node.args[1], ast.Constant)
    }


# The reasons made by formatting a claim's name in, with the names each can take.
_FORMATTED = {
    "missing-claim:": lambda: set(verifier._REQUIRED_CLAIMS),
    "invalid-claim:": _number_claims,
}


def reasons_in_the_code() -> set[str]:
    reasons: set[str] = set()
    for path, call in _calls("AuthError"):
        (first, *_) = call.args
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            reasons.add(first.value)
            continue
        assert isinstance(first, ast.JoinedStr), f"{where}: a reason this test cannot read"
        prefix = "".join(p.value for p in first.values if isinstance(p, ast.Constant))
        assert prefix in _FORMATTED, f"{where}: a formatted reason this test cannot enumerate"
        reasons |= {prefix + name for name in _FORMATTED[prefix]()}
    return reasons


def documented_reasons() -> set[str]:
    """The codes in the first column of the reasons table under "When a call is refused"."""
    section = DOC.read_text(encoding="utf-8").split("### When a call is refused", 1)[1]
    rows = section.split("\n| reason |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert rows, "the reasons table of 'When a call is refused' was not found"
    return {code for row in rows for code in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_every_reason_the_code_gives_is_in_the_reasons_set() -> None:
    found = reasons_in_the_code()
    assert len(found) > 20  # the scan reads the package
    assert found <= REASONS, sorted(found - REASONS)


def test_every_reason_is_explained_in_the_integration_guide_and_no_other() -> None:
    documented = documented_reasons()
    assert REASONS - documented == set(), "not in docs/integration.md's reasons table"
    assert documented - REASONS == set(), "in the docs, but no refusal gives it"
    assert REASONS == reasons_in_the_code(), "a reason in the set that no code gives"
