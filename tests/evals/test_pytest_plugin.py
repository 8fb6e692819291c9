"""The pytest plugin turns eval suites into tests, one per CI gate; the suite runs once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CONFTEST = """
from promptkit.backends import FunctionBackend, register_backend

CALLS = []

def _adder(target, **options):
    offset = 1 if target == "wrong" else 0

    def answer(request):
        CALLS.append(1)
        a, b = (int(x) for x in request.messages[-1].content.split("+"))
        return f"The answer is {a + b + offset}"

    return FunctionBackend(answer, name="plug-" + target)

register_backend("plug", _adder)

def pytest_sessionfinish(session):
    print(f"\\nbackend calls: {len(CALLS)}")
"""


def make_project(root: Path, model: str) -> None:
    (root / "evals").mkdir()
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    rows = [{"id": f"i{n}", "q": f"{n} + {n}", "a": str(2 * n)} for n in range(3)]
    (root / "evals" / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "evals" / "adding.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: adding
            variants:
              - {{name: plain, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: Add.}}}}
            models: ["{model}"]
            dataset: {{path: data.jsonl, id_field: id, inputs: {{input: q}}, expected: a}}
            scorers:
              - {{type: numeric}}
            cache: false
            thresholds: {{pass_rate: 0.9, numeric: 0.5}}
            """
        ),
        encoding="utf-8",
    )


def pytest_run(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTKIT_HOME": str(root / "state")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "promptkit.evals.pytest_plugin",
            "-q",
            "-p",
            "no:cacheprovider",
            *extra,
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_each_gate_is_a_test_and_the_suite_runs_once(tmp_path: Path) -> None:
    make_project(tmp_path, "plug:right")
    done = pytest_run(tmp_path, "--promptkit-evals", "-s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert "backend calls: 3" in done.stdout  # one run of 3 items serves both gates


def test_a_failing_gate_fails_its_test_with_the_numbers(tmp_path: Path) -> None:
    make_project(tmp_path, "plug:wrong")
    done = pytest_run(tmp_path, "--promptkit-evals")
    assert done.returncode == 1
    assert "2 failed" in done.stdout
    assert "pass_rate of variant 'plain' is 0, needs >= 0.9" in done.stdout


def test_suites_are_not_collected_unless_enabled(tmp_path: Path) -> None:
    make_project(tmp_path, "plug:right")
    done = pytest_run(tmp_path)
    assert done.returncode == 5  # no tests collected
