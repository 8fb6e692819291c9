#!/usr/bin/env bash
# The main job, offline: list the template library, render `debug` with a real error, and run one
# grammar-constrained call on a tiny random-weight local model (random text, valid structure).
set -euo pipefail
cd "$(dirname "$0")/.."
PK=.venv/bin/promptkit
export PROMPTKIT_HOME="${PROMPTKIT_HOME:-.promptkit}"

echo "== promptkit templates list"
$PK templates list

echo; echo "== promptkit render debug"
$PK render debug \
  --input language=python \
  --input 'code=def mean(xs): return sum(xs) / len(xs)' \
  --input 'error=ZeroDivisionError: division by zero' \
  --input 'expected=mean([]) returns 0.0' \
  --input 'actual=it raises ZeroDivisionError'

echo; echo "== promptkit models make-tiny + generate (a random-weight model: the text is noise, the JSON is valid)"
$PK models make-tiny "$PROMPTKIT_HOME/tiny.gguf"
$PK generate debug --model "local:$PROMPTKIT_HOME/tiny.gguf" --max-tokens 96 \
  --input language=python \
  --input 'code=def mean(xs): return sum(xs) / len(xs)' \
  --input 'error=ZeroDivisionError: division by zero' \
  --input 'expected=mean([]) returns 0.0' \
  --input 'actual=it raises ZeroDivisionError'
$PK ledger show latest
