"""The audit says to whom the service answered: the trusted client of each invocation.

An integration review: the audit's rows had no client (only the table of cards shown
did), so a site with Epic and Oracle Health could not tell their calls apart. The client
goes in the row's detail (no column to migrate) and the report counts calls by client.
"""

from __future__ import annotations

from cds_service.tools.report import build_report
from cds_service.tools.report_text import format_report
from tests.conftest import Opener
from tests.stores.test_audit import audit_store, record

EPIC = "https://fhir.epic.example.org/interconnect"
ORACLE = "https://cds-hooks.oracle.example.org"


def test_each_row_keeps_its_client_and_the_report_counts_by_client(open_db: Opener) -> None:
    store = audit_store(open_db())
    store.record_many(
        [
            record(hook_instance="h1", client=EPIC),
            record(hook_instance="h2", client=EPIC),
            record(hook_instance="h3", client=ORACLE),
            record(hook_instance="h4"),  # development mode: no client
        ]
    )
    read = {r.hook_instance: r.client for r in store.records(None, None)}
    assert read == {"h1": EPIC, "h2": EPIC, "h3": ORACLE, "h4": None}
    report = build_report(store.records(None, None), [])
    assert report.by_client == {EPIC: 2, ORACLE: 1}
    assert report.to_dict()["byClient"] == {EPIC: 2, ORACLE: 1}


def test_long_issuers_are_counted_apart_and_shown_quoted(open_db: Opener) -> None:
    # an attack suite: two issuers alike in their first 120 characters were counted as one
    stem = "https://ehr.example.org/" + "t" * 120
    first, second = stem + "/one", stem + "/two"
    store = audit_store(open_db())
    store.record_many(
        [
            record(hook_instance="h1", client=first),
            record(hook_instance="h2", client=second),
            record(hook_instance="h3", client=second),
            record(hook_instance="h4", client=EPIC),
            record(hook_instance="h5", client='https://x.example.org/"a\u202e'),
        ]
    )
    report = build_report(store.records(None, None), [])
    assert report.by_client == {second: 2, first: 1, EPIC: 1, 'https://x.example.org/"a\u202e': 1}
    assert report.to_dict()["byClient"][first] == 1
    assert report.to_dict()["byClient"]['https://x.example.org/"a\\u202e'] == 1
    line = next(x for x in format_report(report).splitlines() if x.startswith("By client: "))
    assert f'"{EPIC}" 1' in line
    assert '"https://x.example.org/\\"a\\u202e" 1' in line
    assert "\u202e" not in line
    assert line.count(" 2") == 1 and line.count("\u2026") == 2  # each long one cut on show
