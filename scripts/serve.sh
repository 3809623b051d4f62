#!/usr/bin/env bash
# Set up (only what is missing or changed: see scripts/setup.sh) and run the service on
# its defaults, 127.0.0.1:8080. Extra arguments go to `spine-cds serve`, e.g.
# `bash scripts/serve.sh --port 9000`.
# Without --dev the service requires client JWTs (see docs/settings.md); the sandbox and
# local trials need development mode, so this script turns it on unless told otherwise
# (SPINE_CDS_DEV_MODE=false).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "Starting the service (gunicorn; Ctrl-C stops it) ..."
if [ "${SPINE_CDS_DEV_MODE:-true}" = "true" ]; then
    exec .venv/bin/spine-cds serve --dev "$@"
fi
exec .venv/bin/spine-cds serve "$@"
