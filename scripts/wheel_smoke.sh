#!/usr/bin/env bash
# Builds the wheel, installs it with the scaffold extra into a fresh virtualenv and uses it from an unrelated
# folder, as a new user would: the built-in templates, playbooks and verifier tools must come with the
# install, not with the checkout. No model is called or downloaded.
#   bash scripts/wheel_smoke.sh [PYTHON]     # PYTHON builds the wheel and the virtualenv (default: python3)
# tests/test_wheel.py runs it as part of the test suite.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { printf '== %s\n' "$*"; }

# Build from a copy of what the wheel is made of, so the checkout gets no build/ or egg-info/ folders.
step "build the wheel"
mkdir -p "$work/src" "$work/dist" "$work/elsewhere"
cp "$repo/pyproject.toml" "$repo/README.md" "$repo/LICENSE" "$work/src/"
tar -C "$repo" --exclude=__pycache__ --exclude='*.pyc' -cf - promptkit | tar -C "$work/src" -xf -
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src"
wheel="$(ls "$work"/dist/promptkit-*.whl)"

step "install it into a fresh virtualenv"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel[scaffold]"

# Nothing from the checkout or the caller's settings may leak in.
cd "$work/elsewhere"
unset PYTHONPATH PROMPTKIT_TEMPLATE_PATH PROMPTKIT_PLAYBOOK_PATH PROMPTKIT_CATALOG_PATH
export PROMPTKIT_HOME="$work/home"
pk="$work/venv/bin/promptkit"
py="$work/venv/bin/python"

step "promptkit templates list"
"$pk" templates list --json >templates.json
"$py" - "$work/venv" <<'PY'
import json, sys
templates = {t["name"]: t["path"] for t in json.load(open("templates.json"))}
missing = {"debug", "fix_step", "implement_step", "write_tests"} - set(templates)
assert not missing, f"built-in templates missing from the installed package: {sorted(missing)}"
outside = [p for p in templates.values() if not p.startswith(sys.argv[1])]
assert not outside, f"templates read from outside the virtualenv: {outside}"
print(f"{len(templates)} templates, all from the installed package")
PY

step "built-in backend schemes, without entry points of their own"
"$py" - <<'PY'
from importlib.metadata import entry_points
from promptkit.backends._registry import BACKENDS
assert not list(entry_points(group="promptkit.backends")), "built-ins are registered in code, not as entry points"
assert {"local", "litellm", "openai"} <= set(BACKENDS.names()), BACKENDS.names()
print("backend schemes:", ", ".join(BACKENDS.names()))
PY

step "promptkit render debug"
"$pk" render debug --json -i language=python -i 'code=print(1/0)' -i 'error=ZeroDivisionError' \
  -i expected=1 -i actual=error >render.json
"$py" -c "import json; d = json.load(open('render.json')); assert d['template'] == 'debug' and d['messages'], d"

step "promptkit plan examples/todo_api.yaml"
"$pk" plan "$repo/examples/todo_api.yaml" >plan.txt
grep -q "playbook fastapi_sqlite_crud" plan.txt || { cat plan.txt; exit 1; }

step "promptkit scaffold examples/textstats_library.yaml (no model: the deterministic steps)"
"$pk" scaffold "$repo/examples/textstats_library.yaml" -o app --json >scaffold.json
"$py" <<'PY'
import json
report = json.load(open("scaffold.json"))
passed = [s["id"] for s in report["steps"] if s["status"] == "passed"]
verifiers = {v["name"] for s in report["steps"] for v in s["verifiers"]}
assert report["ok"] and report["no_model"] and passed, report
assert {"ruff", "pytest"} <= verifiers, f"the verifier tools did not run: {verifiers}"
assert report["app_tests"] and report["app_tests"]["ok"], report["app_tests"]
print(f"scaffold: {len(passed)} deterministic steps passed, {report['app_tests']['summary']}")
PY
step "wheel smoke test passed"
