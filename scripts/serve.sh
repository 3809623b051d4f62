#!/usr/bin/env bash
# Set up a virtual environment (once) and run the service on its defaults.
# Extra arguments go to `spine-cds serve`, e.g. `bash scripts/serve.sh --port 9000`.
# Without --dev the service requires client JWTs (see docs/settings.md); the sandbox and
# local trials need development mode, so this script turns it on unless told otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet .
if [ "${SPINE_CDS_DEV_MODE:-true}" = "true" ]; then
    exec .venv/bin/spine-cds serve --dev "$@"
fi
exec .venv/bin/spine-cds serve "$@"
