#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine and run them:
# a virtual environment with the project and its test tools, the Node FHIR test server's
# pinned npm packages, then lint, type checks and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# Real PostgreSQL and Redis servers for the multi-instance tests (Debian packages; the
# tests start their own throwaway servers on 127.0.0.1 and stop them).
if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        postgresql redis-server >/dev/null
fi
# Debian's nginx for the slow-client tests of the shipped proxy config (deploy/nginx/).
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        nginx >/dev/null
fi
# Debian's chromium for the browser tests (Playwright drives it; it cannot download its own).
if [ ! -x /usr/bin/chromium ]; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    echo "Installing Debian's chromium for the browser tests ..."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# The virtual environment with the test and report extras, and the FHIR test server's
# npm packages: installed only when missing or when pyproject.toml/package-lock.json changed.
bash scripts/setup.sh --test --report --fhir
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
