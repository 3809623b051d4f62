#!/usr/bin/env bash
# Mutation testing of the decision core (cds_service/engine/ and fhir_mappers/).
#
#   bash scripts/mutation-test.sh                  # full run on the committed HEAD
#   MUTATION_JOBS=2 bash scripts/mutation-test.sh  # two mutmut workers
#   bash scripts/mutation-test.sh --summary-only   # judge the last run's survivors again
#
# mutmut (the `mutation` extra) mutates the engine and the mappers and runs the fast,
# in-process engine and mapper tests listed under [tool.mutmut] in pyproject.toml against
# each mutant. It works on a snapshot of the committed HEAD in mutants-work/ (git-ignored;
# mutmut's own copy is mutants-work/mutants/), so edits in the work tree during a run
# cannot mix into it, and it writes nothing else. bench/mutation.py then runs every
# survivor through the decision oracle and writes bench/results/mutation.json and .md:
# generated / killed / survived per module, each survivor classed as text-only,
# equivalent (bench/mutation-judgements.toml says why) or decision-changing. The script
# exits 1 when a survivor changes a decision or is not judged.
#
# It takes about 25 minutes on 2 CPUs with MUTATION_JOBS=2 (17 of mutmut, 4-8 of oracle;
# one worker: about 40), so it is not part of .ci/run.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="$ROOT/.venv/bin/python"
JOBS="${MUTATION_JOBS:-1}"
LABEL="${MUTATION_LABEL:-$(git rev-parse --short HEAD)}"
WORK="$ROOT/mutants-work"

if [ ! -x "$PY" ]; then
    echo "no .venv: run scripts/setup.sh first" >&2
    exit 2
fi
if ! "$PY" -c "import mutmut" 2>/dev/null; then
    echo "installing the mutation extra (mutmut)"
    "$ROOT/.venv/bin/pip" install --quiet "mutmut>=3.8.1,<4"
fi

if [ "${1:-}" != "--summary-only" ]; then
    rm -rf "$WORK"
    mkdir -p "$WORK"
    git archive HEAD | tar -x -C "$WORK"
    ln -s "$ROOT/.venv" "$WORK/.venv"
    started=$(date +%s)
    (cd "$WORK" && .venv/bin/mutmut run --max-children "$JOBS")
    echo "mutmut run took $(( $(date +%s) - started )) s with $JOBS worker(s)"
fi

(cd "$WORK" && MUTATION_JUDGEMENTS="$ROOT/bench/mutation-judgements.toml" \
    "$PY" -m bench.mutation summary --out "$WORK/mutation" --label "$LABEL") \
    && status=0 || status=$?
mkdir -p "$ROOT/bench/results"
cp "$WORK/mutation.json" "$WORK/mutation.md" "$ROOT/bench/results/"
echo "wrote bench/results/mutation.json and bench/results/mutation.md"
exit "$status"
