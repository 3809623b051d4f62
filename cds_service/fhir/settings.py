"""The slice of the service's settings the FHIR client and the prefetch check read.

It lives here, beside its readers, so that ``cds_service.settings`` (which makes it from
its ``fhir_*`` settings, their one home) may import the FHIR package, whose URL checks
it uses, without the FHIR package importing the settings back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FhirSettings:
    """The FHIR client's timeouts and bounds: they need no more of the settings."""

    connect_timeout_seconds: float
    read_timeout_seconds: float
    budget_seconds: float  # all FHIR traffic of one call ends by then
    max_pages: int
    max_concurrency: int
