#!/usr/bin/env bash
# Mutation testing of the decision core (cds_service/engine/ and fhir_mappers/).
#
#   bash scripts/mutation-test.sh            # full run, then the summary
#   MUTATION_JOBS=2 bash scripts/mutation-test.sh
#   bash scripts/mutation-test.sh --summary-only   # re-judge the last run's survivors
#
# mutmut (the `mutation` extra) mutates the engine and the mappers and runs the fast,
# in-process engine and mapper tests listed under [tool.mutmut] in pyproject.toml against
# each mutant. It works in mutants/ (a copy of the code, git-ignored) and writes nothing
# else. bench/mutation.py then runs every survivor through the decision oracle and writes
# bench/results/mutation.json and .md: generated / killed / survived per module and each
# survivor classed as text-only, equivalent (bench/mutation-judgements.toml says why) or
# decision-changing. The script exits non-zero when a survivor changes a decision or is
# not judged.
#
# It takes about 20-40 minutes on 2 CPUs (one mutmut worker by default), so it is not part
# of .ci/run.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=.venv/bin/python
JOBS="${MUTATION_JOBS:-1}"
LABEL="${MUTATION_LABEL:-current code}"
OUT="${MUTATION_OUT:-bench/results/mutation}"

if [ ! -x "$PY" ]; then
    echo "no .venv: run scripts/setup.sh first" >&2
    exit 2
fi
if ! "$PY" -c "import mutmut" 2>/dev/null; then
    echo "installing the mutation extra (mutmut)"
    .venv/bin/pip install --quiet -e ".[mutation]"
fi

if [ "${1:-}" != "--summary-only" ]; then
    # A fresh copy every time: results cached from older code would be judged again
    # against code they no longer match.
    rm -rf mutants
    started=$(date +%s)
    .venv/bin/mutmut run --max-children "$JOBS"
    echo "mutmut run took $(( $(date +%s) - started )) s with $JOBS worker(s)"
fi

"$PY" -m bench.mutation summary --out "$OUT" --label "$LABEL"
