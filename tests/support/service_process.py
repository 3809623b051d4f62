"""The service launcher, for the tests' imports: it lives in the development harness
(``spine_cds_dev.service_process``), its one home, shared with the benchmarks and
``spine-cds demo``."""

from spine_cds_dev.service_process import ServiceProcess, ServiceStartError, free_port

__all__ = ["ServiceProcess", "ServiceStartError", "free_port"]
