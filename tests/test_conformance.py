"""docs/conformance.md: each test it names exists, and the 3.0 items it claims hold.

The page is the service's one statement of CDS Hooks conformance; a renamed or deleted
test would leave a rule there with nothing proving it, silently.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.builders import EMPTY_PREFETCH, SIGN_ID, hook_request, service_request

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "conformance.md"
NAMED = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def named_tests() -> list[tuple[str, str | None]]:
    return sorted(set(NAMED.findall(PAGE.read_text(encoding="utf-8"))))


def test_the_page_names_tests_in_every_table() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert len(named_tests()) > 40
    for table in text.split("\n## ")[1:]:
        assert NAMED.search(table), table.splitlines()[0]
    # every row of a rule table has a status and names a test (or says why not: "—")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    for row in rows:
        if row.startswith(("| rule ", "| item ")):
            continue
        assert NAMED.search(row) or row.rstrip().endswith("| — |"), row


@pytest.mark.parametrize(("path", "name"), named_tests())
def test_every_named_test_exists(path: str, name: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"{path} does not exist"
    if not name:
        return
    tree = ast.parse(file.read_text(encoding="utf-8"))
    functions = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assert name in functions, f"{path} has no test {name}"


def test_smart_v2_scopes_are_accepted(client: FlaskClient) -> None:
    """CDS Hooks 3.0 (ballot) moves fhirAuthorization.scope to SMART v2 syntax; the service
    does not read the scope (the FHIR server enforces it), so a v2 scope is accepted."""
    body = hook_request(
        "order-sign",
        [service_request("o1")],
        prefetch=EMPTY_PREFETCH,
        fhir_server="http://127.0.0.1:9/fhir",
        access_token="synthetic-token",
    )
    body["fhirAuthorization"]["scope"] = (
        "patient/Condition.rs patient/Observation.rs patient/MedicationRequest.rs"
    )
    response = client.post(f"/cds-services/{SIGN_ID}", json=body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"cards": []}  # no data: nothing to advise on
