#!/usr/bin/env bash
# Audit the dependencies that ship for known vulnerabilities, and never report success
# when nothing was audited:
#   Python      pip-audit on requirements.lock (every runtime pin, as the image installs
#               them); pip-audit comes with the `audit` extra: pip install -e '.[audit]'
#   JavaScript  npm audit --omit=dev in smart_app/ (the packages built into the trend app)
# spine_cds_dev.dependency_audit reads both reports and checks them against the lock
# files: a package skipped, fewer audited than locked, a tool missing or its advisory
# database not reached is "audit could not run", never "no known vulnerabilities".
#
#   bash scripts/audit-deps.sh            exit 1 on a known vulnerability; when the audit
#                                         could not run, says so and exits 0
#   bash scripts/audit-deps.sh --strict   the same, but exit 2 when it could not run
#                                         (for a release step that must have a result)
#
# The advisory databases are network services (PyPI's JSON API for pip-audit, the npm
# registry's audit endpoint), so this is not part of CI: where they cannot be reached
# the script says so. AUDIT_DEPS_PIP_AUDIT and AUDIT_DEPS_NPM replace the two commands
# (the tests use that to run the script offline).
set -uo pipefail
cd "$(dirname "$0")/.."
strict=()
case "${1:-}" in
    --strict) strict=(--strict) ;;
    "") ;;
    *)
        echo "usage: $0 [--strict]" >&2
        exit 64
        ;;
esac
PYTHON="${PYTHON:-.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

pip_audit=(${AUDIT_DEPS_PIP_AUDIT:-"$PYTHON" -m pip_audit})
npm=(${AUDIT_DEPS_NPM:-npm})

if [ -n "${AUDIT_DEPS_PIP_AUDIT:-}" ] || "$PYTHON" -c 'import pip_audit' 2>/dev/null; then
    "${pip_audit[@]}" -r requirements.lock --no-deps --disable-pip --progress-spinner off \
        -f json -o "$work/pip.json" 2>"$work/pip.err"
    pip_rc=$?
else
    echo "pip-audit is not installed (pip install -e '.[audit]')" >"$work/pip.err"
    pip_rc=127
fi

(cd smart_app && "${npm[@]}" audit --omit=dev --json) >"$work/npm.json" 2>"$work/npm.err"
npm_rc=$?

"$PYTHON" -m spine_cds_dev.dependency_audit "${strict[@]}" \
    --requirements requirements.lock --package-lock smart_app/package-lock.json \
    --pip-json "$work/pip.json" --pip-rc "$pip_rc" --pip-stderr "$work/pip.err" \
    --npm-json "$work/npm.json" --npm-rc "$npm_rc" --npm-stderr "$work/npm.err"
