"""``spine-cds load-examples``: put the synthetic patients into any FHIR server.

Each example is a transaction Bundle of PUTs with fixed ids, so loading twice leaves one
copy; big Bundles go in parts small enough for servers that cap a transaction's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import click

from cds_service.examples import Example, split_transaction
from cds_service.tools.fhir_http import FhirEndpoint

MAX_ENTRIES = 50  # entries per transaction: the project's test server allows 50 updates


@dataclass(frozen=True)
class Loaded:
    example: Example
    resources: int
    transactions: int


def load_into(
    endpoint: FhirEndpoint, examples: Iterable[Example], max_entries: int = MAX_ENTRIES
) -> Iterator[Loaded]:
    """Load each example as placed (``load_examples``, ``load_examples_as_of``), yielding
    as each is stored; raises FhirServerError (with the server's OperationOutcome text)
    on the first refusal."""
    for example in examples:
        parts = split_transaction(example.bundle, max_entries)
        for part in parts:
            endpoint.post_transaction(part)
        yield Loaded(example, len(example.bundle.get("entry", [])), len(parts))


def describe(loaded: Loaded) -> str:
    """Terminal lines for one loaded patient: id, what it demonstrates, its order."""
    ex = loaded.example
    coding = ex.draft_order["code"]["coding"][0]
    return "\n".join(
        [
            click.style(f"{ex.patient_id:<16}", bold=True)
            + f"{ex.title}  (expected: {ex.expected}; {loaded.resources} resources)",
            f"{'':<16}{ex.why}",
            f"{'':<16}order: {coding['system']}|{coding['code']} on day {ex.order_day} "
            f"({ex.draft_order['authoredOn'][:10]})",
        ]
    )
