"""The FHIR test server launcher, for the tests' imports: it lives in the development
harness (``spine_cds_dev.fhir_server``), its one home, shared with the benchmarks and
``spine-cds demo``."""

from spine_cds_dev.fhir_server import FhirServerError, FhirTestServer, ensure_installed

__all__ = ["FhirServerError", "FhirTestServer", "ensure_installed"]
