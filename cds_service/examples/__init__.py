"""Synthetic example patients as FHIR R4 transaction Bundles.

The worked examples of the clinical rules (E1..E10 of the design's example scenarios,
plus seven more that exercise other rules and the 2026-11-28 revision) are stored as
JSON under ``patients/``, with day 0 (the episode onset, T0) on a fixed base date.
Nothing here reads the clock: the caller says on which date each order is placed, and
every date in the data is moved by the same number of days, so the same patients serve
tests, the demo and a FHIR server loaded on any day.

Every entry is a ``PUT`` with a fixed id, so loading a bundle twice leaves one copy.
The stored patients are read in ``stored``, the benchmark patient is built in
``benchmark``; this module only names what the package offers.
"""

from __future__ import annotations

from cds_service.examples.benchmark import (
    BENCHMARK_EXPECTED,
    BENCHMARK_ORDER_DAY,
    benchmark_bundle,
    split_transaction,
)
from cds_service.examples.stored import (
    BASE_DATE,
    EXPECTED_VALUES,
    Example,
    example_keys,
    load_example,
    load_examples,
    shift_dates,
)

__all__ = [
    "BASE_DATE",
    "BENCHMARK_EXPECTED",
    "BENCHMARK_ORDER_DAY",
    "EXPECTED_VALUES",
    "Example",
    "benchmark_bundle",
    "example_keys",
    "load_example",
    "load_examples",
    "shift_dates",
    "split_transaction",
]
