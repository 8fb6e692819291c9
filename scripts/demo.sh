#!/usr/bin/env bash
# The main job, offline and without model weights:
#  1. the template library, and `debug` rendered for a real bug;
#  2. `promptkit scaffold` of the todo-API example: the deterministic steps are generated and verified
#     (compile, ruff, the generated app's own tests, in the sandbox); the model steps report how to add a model;
#  3. one grammar-constrained call on a tiny random-weight local model: the text is noise, the JSON is valid.
set -euo pipefail
cd "$(dirname "$0")/.."
PK=.venv/bin/promptkit
export PROMPTKIT_HOME="${PROMPTKIT_HOME:-.promptkit}"
OUT="$PROMPTKIT_HOME/demo"
rm -rf "$OUT" && mkdir -p "$OUT"

echo "== promptkit templates list"
$PK templates list

echo; echo "== promptkit render debug"
$PK render debug --examples first_k:1 \
  --input language=python \
  --input 'code=def mean(xs): return sum(xs) / len(xs)' \
  --input 'error=ZeroDivisionError: division by zero' \
  --input 'expected=mean([]) returns 0.0' \
  --input 'actual=it raises ZeroDivisionError'

echo; echo "== promptkit scaffold examples/todo_api.yaml (no model configured)"
$PK scaffold examples/todo_api.yaml -o "$OUT/todo_api"

echo; echo "== a local GGUF call: promptkit models make-tiny + promptkit generate judge_grade"
$PK models make-tiny "$OUT/tiny.gguf"
$PK generate judge_grade --model "local:$OUT/tiny.gguf" --examples first_k:0 --max-tokens 1500 \
  --input 'rubric=Correct and complete.' --input 'task=Add 2 and 2.' --input 'answer=4'
$PK ledger show latest
