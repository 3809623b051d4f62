"""The code of the integrator commands a hospital uses (``cds_service.cli``): ``try``,
``load-examples``, ``review-examples``, ``report`` and ``audit-purge``.

They play the EHR's part (build CDS Hooks requests, run prefetch queries, load test
patients into a FHIR server), show the service's answers in a terminal and read the
audit. They are the shell: they may read the clock, the network and files; the pure
pieces they share (building requests, evaluating prefetch templates over local
resources, rendering cards) live in ``cds_service.ehr_requests`` (which the worker
warm-up uses too, so it sits beside the server, not under the tools) and ``render``,
and do no I/O.
The development harness (``demo``, ``fhir-test-server``, the process launchers) is not
here: it is ``spine_cds_dev``, in the checkout only.
"""
