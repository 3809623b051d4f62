"""The PAMA ratings a CDS Hooks response's ``systemActions`` set on the draft orders, as
the tests read them (one reader, not a copy in each test module)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def rating_of(resource: Mapping[str, Any]) -> str:
    """The rating code of a rated ServiceRequest: "appropriate", "not-appropriate", ..."""
    return str(
        next(
            e["valueCodeableConcept"]["coding"][0]["code"]
            for e in resource["extension"]
            if e["url"].endswith("pama-rating")
        )
    )


def ratings_by_id(response: Mapping[str, Any]) -> dict[str, str]:
    """Draft id -> its rating, for every draft the response rates."""
    return {
        act["resource"]["id"]: rating_of(act["resource"])
        for act in response.get("systemActions", [])
    }
