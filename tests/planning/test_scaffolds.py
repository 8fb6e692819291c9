"""Acceptance: every example's deterministic scaffold passes its own generated tests on a fresh machine.

The render steps are written to an empty folder and ``python -m pytest`` runs there in a subprocess, with
nothing but this interpreter's packages (stdlib, pydantic, fastapi, httpx, pytest).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from promptkit.planning import AppSpec, Plan, PlaybookPlanner, load_spec, parse_spec

from .conftest import EXAMPLE_SPECS

# Every field type and constraint the generators handle, on each stack.
KITCHEN_SINK = {
    "name": "kitchen-sink",
    "summary": 'Every field type; a "quoted" summary with a backslash \\ in it.',
    "entities": [
        {
            "name": "Gadget",
            "description": "A gadget with every kind of field.",
            "fields": [
                {"name": "label", "type": "str", "max_length": 1, "unique": True},
                {"name": "notes", "type": "text", "required": False},
                {"name": "count", "type": "int", "min": -2, "max": 7, "unique": True},
                {"name": "weight", "type": "float", "min": 0.25, "max": 0.75},
                {"name": "active", "type": "bool"},
                {"name": "made", "type": "date", "default": "2020-02-02"},
                {"name": "seen_at", "type": "datetime", "required": False},
            ],
        },
        {"name": "Category", "fields": [{"name": "title", "type": "str", "description": 'Its "name".'}]},
    ],
    "features": [{"id": "export", "description": "Export everything."}],
}


def materialize(plan: Plan, root: Path) -> list[str]:
    written = []
    for step in plan.topological_order():
        for path, content in step.render_files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            written.append(path)
    return written


def red_first(plan: Plan) -> list[str]:
    """Rendered test files that must fail until a model writes their feature."""
    return [
        path
        for step in plan.steps
        for spec in step.verifiers
        if isinstance(spec, dict) and spec.get("pytest", {}).get("expect") == "fail"
        for path in spec["pytest"]["tests"]
        if path in step.render_files
    ]


def run_generated_tests(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
            *args,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
    )


def passed(result: subprocess.CompletedProcess[str]) -> int:
    found = re.search(r"(\d+) passed", result.stdout)
    return int(found.group(1)) if found else 0


def check_scaffold(spec: AppSpec, root: Path) -> None:
    plan = PlaybookPlanner().plan(spec)
    written = materialize(plan, root)
    assert written and all((root / p).is_file() for p in written)
    red = red_first(plan)
    for path in red:  # tests rendered from the spec's examples fail, as tests, until the feature exists
        failing = run_generated_tests(root, path)
        assert failing.returncode == 1 and " passed" not in failing.stdout, failing.stdout[-2000:]
    result = run_generated_tests(root, *[f"--ignore={path}" for path in red])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # Each render test step's tests ran, and not trivially.
    assert passed(result) >= 3 * len(spec.entities), result.stdout[-2000:]
    assert "failed" not in result.stdout and "error" not in result.stdout.lower().split("passed")[-1]
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff:
        lint = subprocess.run([ruff, "check", "--no-cache", "."], cwd=root, capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize("spec_path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_example_scaffold_passes_its_own_tests(spec_path: Path, tmp_path: Path):
    spec = load_spec(spec_path)
    assert isinstance(spec, AppSpec)
    check_scaffold(spec, tmp_path / "workspace")


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["python-fastapi-sqlite", "python-cli", "python-library"])
def test_every_field_type_scaffolds_and_passes(stack: str, tmp_path: Path):
    spec = parse_spec({**KITCHEN_SINK, "stack": stack})
    assert isinstance(spec, AppSpec)
    check_scaffold(spec, tmp_path / "workspace")


@pytest.mark.slow
def test_generated_tests_catch_a_broken_scaffold(tmp_path: Path):
    """The generated tests are real: break the storage layer and they fail."""
    spec = load_spec(next(p for p in EXAMPLE_SPECS if p.stem == "url_shortener"))
    assert isinstance(spec, AppSpec)
    root = tmp_path / "workspace"
    materialize(PlaybookPlanner().plan(spec), root)
    store = root / spec.package / "store.py"
    store.write_text(store.read_text().replace('data["next_ids"][collection] = item_id + 1', "pass"))
    result = run_generated_tests(root)
    assert result.returncode == 1
    assert "failed" in result.stdout
