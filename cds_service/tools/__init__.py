"""Command-line tools for integration engineers and clinical reviewers.

They play the EHR's part (build CDS Hooks requests, run prefetch queries, load test
patients into a FHIR server) and show the service's answers in a terminal. They are the
shell: they may read the clock, the network and files; the pure pieces they share
(building requests, evaluating prefetch templates over local resources, rendering cards)
live in ``ehr`` and ``render`` and do no I/O.
"""
