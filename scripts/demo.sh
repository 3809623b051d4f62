#!/usr/bin/env bash
# The one-command demo, for a fresh machine with Python 3.11, Node and npm:
# set up (only what is missing or changed: the virtual environment and the FHIR test
# server's pinned npm packages, see scripts/setup.sh), then run `spine-cds demo`: start
# the FHIR test server and the service on 127.0.0.1, load the synthetic patients, show
# each patient's story and card, and stop everything. Extra arguments go to
# `spine-cds demo`, e.g.
#   bash scripts/demo.sh --patient e03-plateau
#   bash scripts/demo.sh --keep-running        # leave both servers up until Ctrl-C
set -euo pipefail
export CDS_TOOL_CALLER_CWD="${CDS_TOOL_CALLER_CWD:-$PWD}"
cd "$(dirname "$0")/.."
bash scripts/setup.sh --fhir
# `python -m` from the checkout: the demo runs this checkout's code, with its
# development harness (spine_cds_dev) and the FHIR test server in tests/fhir_server.
exec .venv/bin/python -m cds_service demo "$@"
