"""``promptkit plan``: the tree, JSON, and one-line errors with file:line:field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptkit.cli import main
from promptkit.planning import Plan, PlaybookPlanner, load_spec

REPO = Path(__file__).resolve().parents[2]
TODO = REPO / "examples" / "todo_api.yaml"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tree(capsys: pytest.CaptureFixture[str]):
    code, out, err = run(capsys, "plan", str(TODO))
    assert code == 0, err
    assert "todo-api — 11 steps, planner playbook, playbook fastapi_sqlite_crud" in out
    for line in (
        "layout render Project layout and packaging",
        "feature-overdue generate-code Implement overdue",
    ):
        assert line in out
    # Tests first (rendered from the spec's examples), then the routes to complete, then the model's code.
    assert "depends on: feature-overdue-tests, feature-overdue-skeleton" in out
    assert "files: tests/test_feature_overdue.py\n" in out
    assert '{"pytest": {"tests": ["tests/test_todos_api.py"]}}' in out


def test_json_is_the_plan(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "plan", str(TODO), "--json")
    assert code == 0
    assert out == PlaybookPlanner().plan(load_spec(TODO)).to_json()
    assert Plan.from_json(out).steps[0].id == "layout"
    assert json.loads(out)["planner"] == "playbook"


def test_spec_error_is_one_line_with_file_line_and_field(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(TODO.read_text().replace("        type: bool", "        type: boolean"))
    line = spec.read_text().splitlines().index("        type: boolean") + 1
    code, out, err = run(capsys, "plan", str(spec))
    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: {spec}:{line}: entities[0].fields[1].type: must be one of "
        "'str', 'int', 'float', 'bool', 'datetime', 'date', 'text'"
    )
    assert len(err.strip().splitlines()) == 1


def test_missing_file(capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, "plan", "nope.yaml")
    assert code == 2 and err.startswith("error: nope.yaml: cannot read the spec")


def test_model_planners_need_a_model(capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, "plan", str(TODO), "--planner", "llm")
    assert code == 2 and "--planner llm needs --model" in err
    code, _, err = run(capsys, "plan", str(TODO), "--model", "x")
    assert code == 2 and "--model only applies" in err


def test_playbook_option(capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, "plan", str(TODO), "--playbook", "cli_tool")
    assert code == 2
    assert "playbook 'cli_tool' applies to stack 'python-cli'" in err


def test_plan_is_listed_in_help(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "Turn an app spec into a typed plan of verified steps." in out


def test_without_the_builtin_playbooks_plan_fails_naming_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from types import SimpleNamespace

    from promptkit import _package_data

    monkeypatch.setattr(_package_data, "resources", SimpleNamespace(files=lambda package: tmp_path))
    code, out, err = run(capsys, "plan", str(TODO))
    assert code == 2 and out == ""  # PlanError's exit status
    assert err.startswith("error: ") and "built-in playbooks are missing" in err
    assert str(tmp_path / "playbooks") in err and "no playbook applies" not in err
