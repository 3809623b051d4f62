#!/usr/bin/env bash
# Set up this checkout, doing only what is missing or out of date, and saying so:
#   - a virtual environment in .venv with the project installed in editable mode (code
#     changes need no reinstall), plus the extras asked for;
#   - with --fhir, the FHIR test server's pinned npm packages (tests/fhir_server).
# The install is redone only when pyproject.toml or package-lock.json changed since the
# last one (a stamp in .venv and in node_modules records their hashes and the extras).
#
#   bash scripts/setup.sh                   # the service only
#   bash scripts/setup.sh --test            # + test tools (pytest, ruff, mypy, Playwright ...)
#   bash scripts/setup.sh --report          # + matplotlib for `spine-cds report --png`
#   bash scripts/setup.sh --replay          # + Dask, pyarrow, tqdm for `spine-cds replay`
#   bash scripts/setup.sh --fhir            # + the FHIR test server (needs npm)
# serve.sh, demo.sh, fhir-test-server.sh and test.sh call it; run it yourself to set up
# without starting anything. PYTHON picks the interpreter for a new .venv [python3].
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
EXTRAS=()
FHIR=false
for arg in "$@"; do
    case "$arg" in
        --test) EXTRAS+=(test) ;;
        --report) EXTRAS+=(report) ;;
        --bench) EXTRAS+=(bench) ;;
        --replay) EXTRAS+=(replay) ;;
        --fhir) FHIR=true ;;
        -h | --help)
            sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "setup.sh: unknown option $arg (see --help)" >&2
            exit 2
            ;;
    esac
done

hash_of() { sha256sum "$1" | cut -d' ' -f1; }
now() { date +%s; }

STAMP=.venv/.spine-cds-install
if [ ! -x .venv/bin/python ]; then
    echo "Creating the virtual environment in .venv ..."
    "$PYTHON" -m venv .venv
fi
# What is installed: the pyproject.toml hash, then the extras, one a line.
wanted_hash=$(hash_of pyproject.toml)
installed_hash=""
installed_extras=()
if [ -f "$STAMP" ]; then
    installed_hash=$(head -n 1 "$STAMP")
    mapfile -t installed_extras < <(tail -n +2 "$STAMP")
fi
# Extras installed before stay (serve.sh after test.sh keeps the test tools).
all_extras=("${installed_extras[@]}")
missing=()
for extra in "${EXTRAS[@]}"; do
    if [[ " ${all_extras[*]} " != *" $extra "* ]]; then
        missing+=("$extra")
        all_extras+=("$extra")
    fi
done
if [ "$installed_hash" != "$wanted_hash" ] || [ "${#missing[@]}" -gt 0 ]; then
    if [ -z "$installed_hash" ]; then
        why="first install"
    elif [ "$installed_hash" != "$wanted_hash" ]; then
        why="pyproject.toml changed"
    else
        why="adding ${missing[*]}"
    fi
    spec="."
    if [ "${#all_extras[@]}" -gt 0 ]; then
        spec=".[$(
            IFS=,
            echo "${all_extras[*]}"
        )]"
    fi
    echo "Installing spine-cds with its dependencies into .venv ($why: $spec; about a minute the first time) ..."
    started=$(now)
    rm -f "$STAMP"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e "$spec"
    printf '%s\n' "$wanted_hash" "${all_extras[@]}" >"$STAMP"
    echo "  installed in $(($(now) - started)) s."
else
    echo "spine-cds is installed in .venv and up to date (pyproject.toml unchanged)."
fi

if [ "$FHIR" = true ]; then
    SERVER_DIR=tests/fhir_server
    NPM_STAMP=$SERVER_DIR/node_modules/.spine-cds-install
    lock_hash=$(hash_of "$SERVER_DIR/package-lock.json")
    if [ -x "$SERVER_DIR/node_modules/.bin/node" ] \
        && [ -f "$SERVER_DIR/node_modules/@medplum/fhir-router/package.json" ] \
        && { [ ! -f "$NPM_STAMP" ] || [ "$(cat "$NPM_STAMP")" = "$lock_hash" ]; }; then
        echo "The FHIR test server's npm packages are installed and up to date."
        [ -f "$NPM_STAMP" ] || echo "$lock_hash" >"$NPM_STAMP"
    else
        if ! command -v npm >/dev/null; then
            echo "The FHIR test server needs Node.js with npm (any version: it installs its own Node 22); npm is not on PATH." >&2
            exit 2
        fi
        echo "Installing the FHIR test server's pinned npm packages (npm ci in $SERVER_DIR; about 10 s, 300 MB) ..."
        started=$(now)
        (cd "$SERVER_DIR" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$lock_hash" >"$NPM_STAMP"
        echo "  installed in $(($(now) - started)) s."
    fi
fi
