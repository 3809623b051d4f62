"""The prefetch keys the engine reads by name: the data sources (``datasources.py``)
whose reading, or failure to read, changes the decision.

The engine imports nothing outside its package, so it cannot read the data-source table;
these names are its one copy of the keys it needs, and ``tests/shell/test_datasources.py``
holds each of them to a row of that table.
"""

from __future__ import annotations

CONDITIONS = "conditions"
CRP = "crp"
PAIN = "pain"
ANTIBIOTICS = "antibiotics"
PATIENT = "patient"  # the birth date: the advice is for adults only
PROCEDURES = "procedures"  # spine surgery: a CT after it is never advised against
IMAGING_STUDIES = "imaging_studies"
IMAGING_REPORTS = "imaging_reports"

# The sources of prior spine imaging: with either not read, no study on record says nothing.
IMAGING = frozenset({IMAGING_STUDIES, IMAGING_REPORTS})

KEYS = frozenset({CONDITIONS, CRP, PAIN, ANTIBIOTICS, PATIENT, PROCEDURES, *IMAGING})
