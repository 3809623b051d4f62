"""Synthetic example patients as FHIR R4 transaction Bundles.

The stored patients (the worked examples of the clinical rules, placed on any order
date) are read in ``stored``; the large benchmark patient is built in ``benchmark``.
This module only names what the package offers.
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
    load_examples_as_of,
    not_after,
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
    "load_examples_as_of",
    "not_after",
    "shift_dates",
    "split_transaction",
]
