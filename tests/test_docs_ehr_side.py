"""docs/integration.md's "The EHR's side": what an integrator gives the EHR's team and
asks them for, per EHR. Held to the code: every service hooks.json serves is named, and
every place an answer goes is a real setting or trusted-client field."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cds_service.auth.clients import _CLIENT_FIELDS
from cds_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TEXT = (ROOT / "docs" / "integration.md").read_text(encoding="utf-8")
SECTION = TEXT.split("## The EHR's side", 1)[1].split("\n## ", 1)[0]


def test_the_section_covers_epic_oracle_health_and_the_sandbox() -> None:
    headings = re.findall(r"^### (.+)$", SECTION, re.M)
    assert headings == ["Epic", "Oracle Health", "The CDS Hooks sandbox"]
    # what no source confirms is said to be confirmed with the vendor, per EHR
    for vendor in ("Epic", "Oracle Health"):
        part = SECTION.split(f"### {vendor}\n", 1)[1].split("\n### ", 1)[0]
        assert "to be confirmed with the vendor" in part.lower(), vendor


def test_every_served_endpoint_is_given_to_the_ehr() -> None:
    services = json.loads((ROOT / "hooks.json").read_text(encoding="utf-8"))["services"]
    for service in services:
        assert f"/cds-services/{service['id']}" in SECTION or f".../{service['id']}" in SECTION


def test_every_answer_goes_to_a_real_setting_or_client_field() -> None:
    table = SECTION.split("Ask them for", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    named = {
        word for row in rows[1:] for word in re.findall(r"`([a-z_]+)`", row.rsplit(" | ", 1)[1])
    }
    assert named, "no setting named in the 'where it goes' column"
    unknown = named - set(_CLIENT_FIELDS) - set(Settings.model_fields)
    assert not unknown, f"not a setting or a trusted-client field: {sorted(unknown)}"
