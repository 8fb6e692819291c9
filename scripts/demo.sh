#!/usr/bin/env bash
# The main job, offline, with two real local models (Qwen2.5-Coder 0.5B and 1.5B, pulled by setup.sh):
#  1. the model catalog, and `debug` rendered for a real bug;
#  2. `promptkit init`: a promptkit.toml whose router tiers are the two local models;
#  3. `promptkit scaffold` of the todo-API example: the deterministic steps, then each feature's tests
#     (rendered from the spec's examples, refused unless they fail before the feature exists) and its code (by
#     the 0.5B, escalated to the 1.5B when the tests still fail), every step verified in the sandbox;
#     then the generated app's whole test suite runs, sandboxed.
set -euo pipefail
cd "$(dirname "$0")/.."
PK=.venv/bin/promptkit
export PROMPTKIT_HOME="${PROMPTKIT_HOME:-.promptkit}"
OUT="$PROMPTKIT_HOME/demo"
rm -rf "$OUT" && mkdir -p "$OUT"

echo "== promptkit models list"
$PK models list

echo; echo "== promptkit render debug"
$PK render debug --examples first_k:1 \
  --input language=python \
  --input 'code=def mean(xs): return sum(xs) / len(xs)' \
  --input 'error=ZeroDivisionError: division by zero' \
  --input 'expected=mean([]) returns 0.0' \
  --input 'actual=it raises ZeroDivisionError'

echo; echo "== promptkit init (local models as router tiers)"
$PK init --dir "$OUT"

echo; echo "== promptkit scaffold examples/todo_api.yaml with the local models (a few minutes on 2 cores)"
started=$(date +%s)
# A step the models could not pass is reported (and kept under runs/<id>/failed/), not fatal to the demo.
$PK scaffold examples/todo_api.yaml -o "$OUT/todo_api" --router "$OUT/promptkit.toml" \
  || echo "some steps failed (see the report above); their answers are in $OUT/todo_api/.promptkit/runs/*/answers/"
echo "scaffold took $(( $(date +%s) - started )) s"
$PK ledger show latest
