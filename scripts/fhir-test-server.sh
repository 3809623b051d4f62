#!/usr/bin/env bash
# Run the project's FHIR R4 test server on its own (Medplum's in-memory engine behind a
# small Node front, on 127.0.0.1, CORS open for browser clients such as the CDS Hooks
# sandbox) until Ctrl-C. Sets up first (only what is missing or changed: see
# scripts/setup.sh). Arguments go to `spine-cds fhir-test-server`:
#   bash scripts/fhir-test-server.sh --port 8090 --load-examples
#   bash scripts/fhir-test-server.sh --port 8090 --load-examples --service-url http://127.0.0.1:8080
# With --load-examples it prints a CDS Hooks sandbox link per example patient.
set -euo pipefail
export CDS_TOOL_CALLER_CWD="${CDS_TOOL_CALLER_CWD:-$PWD}"
cd "$(dirname "$0")/.."
bash scripts/setup.sh --fhir
exec .venv/bin/python -m cds_service fhir-test-server "$@"
