#!/usr/bin/env bash
# Every figure of docs/techniques.md, rerun on this machine: the few-shot banks (HumanEval's reference
# solutions and the 1.5B's own verified answers, both from the development items only), the technique suite
# on both models (report items only), the bug suite (22 real bugs) on both models, and the A/B tables with
# paired statistics.
# Resumable: a killed run picks up where it stopped when the script runs again.
#   bash scripts/techniques.sh            # both models: about 4.5 hours on 2 cores (the 1.5B alone ~2.5 h)
#   MODELS=small bash scripts/techniques.sh
set -euo pipefail
cd "$(dirname "$0")/../evals/techniques"
PK="${PROMPTKIT:-../../.venv/bin/promptkit}"
OUT=../../build/techniques
mkdir -p "$OUT"
"$PK" distill humaneval.yaml --variant plain --reference canonical_solution --out "$OUT/bank-reference.jsonl"
"$PK" distill humaneval.yaml --variant plain -m large --out "$OUT/bank-large.jsonl"
for model in ${MODELS:-small large}; do
  for suite in humaneval debug; do
    name="$suite-$model"
    log="$OUT/$name.json"
    if [ ! -s "$log" ]; then
      run_id="techniques-$name"
      if ls "$OUT/$run_id.sqlite" >/dev/null 2>&1; then
        "$PK" eval "$suite.yaml" --resume "$run_id" || true
      else
        "$PK" eval "$suite.yaml" -m "$model" --run-id "$run_id" --out "$log" || true
      fi
    fi
    # exit 1 only means a CI gate failed; the tables are still written.
    "$PK" ab "$log" --baseline plain --markdown "$OUT/ab-$name.md" --html "$OUT/ab-$name.html" || true
  done
done
