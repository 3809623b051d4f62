#!/usr/bin/env bash
# The one-command demo, for a fresh machine with Python 3.11, Node and npm:
# set up a virtual environment (once), install the service and the FHIR test server's
# pinned npm packages (once), then run `spine-cds demo`: start the FHIR test server and the
# service on 127.0.0.1, load the synthetic patients, show each patient's story and card,
# and stop everything. Extra arguments go to `spine-cds demo`, e.g.
#   bash scripts/demo.sh --patient e03-plateau
#   bash scripts/demo.sh --keep-running        # leave both servers up until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! command -v npm >/dev/null; then
    echo "The demo needs Node.js with npm (for the FHIR test server); npm is not on PATH." >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet .
if [ ! -x tests/fhir_server/node_modules/.bin/node ] \
    || [ ! -f tests/fhir_server/node_modules/@medplum/fhir-router/package.json ]; then
    (cd tests/fhir_server && npm ci --no-audit --no-fund --loglevel=error)
fi
# `python -m` from the checkout: the demo runs this checkout's code and finds its
# FHIR test server in tests/.
exec .venv/bin/python -m cds_service demo "$@"
