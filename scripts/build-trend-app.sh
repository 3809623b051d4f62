#!/usr/bin/env bash
# Rebuild the trend app (smart_app/) into the Python package (cds_service/static/trend/).
# The built files are committed, so the service and CI need no Node; run this after
# changing smart_app/src/ or its packages, then commit the sources and the built files.
# Needs Node 18+ and npm.
set -euo pipefail
cd "$(dirname "$0")/../smart_app"
npm ci --no-audit --no-fund
node build.mjs "$@"
