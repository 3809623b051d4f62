#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine and run them:
# a virtual environment with the project and its test tools, the Node FHIR test server's
# pinned npm packages, then lint, type checks and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
(cd tests/fhir_server && npm ci --no-audit --no-fund --loglevel=error)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
