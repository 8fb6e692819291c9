"""``promptkit scaffold``: plan, run, report; no-model skips, failures, --json, --resume, --confirm, usage."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promptkit.backends import FunctionBackend, GenerateRequest, register_backend
from promptkit.cli import cli, main
from promptkit.execution import NO_MODEL_HINT, RunState
from promptkit.generation import reset_defaults

SPEC = """\
name: minilib
summary: A one-feature library.
stack: python-library
entities:
  - name: Pair
    description: Two numbers.
    fields:
      - {name: left, type: int}
      - {name: right, type: int}
features:
  - id: total
    description: total(pair) returns left + right.
    acceptance:
      - total(Pair(left=1, right=2)) == 3
"""

MODULE = 'def total(left: int, right: int) -> int:\n    """The sum."""\n    return left + right\n'
TEST = "from minilib.total import total\n\n\ndef test_total() -> None:\n    assert total(1, 2) == 3\n"
CALLS: list[str] = []


def _coder(request: GenerateRequest, *, broken: bool = False) -> dict[str, Any]:
    # A repair continues the conversation: the step's own prompt is the last message that names its paths
    # (write_tests lists them; complete_file names the file it completes).
    text = next(
        m.content
        for m in reversed(request.messages)
        if "Allowed paths: " in m.content or "\nComplete " in m.content
    )
    if "Allowed paths: " in text:
        paths = text.split("Allowed paths: ", 1)[1].split("\n", 1)[0].split(", ")
    else:
        paths = [text.split("\nComplete ", 1)[1].split(":", 1)[0]]
    CALLS.append(paths[0])
    if paths[0].startswith("tests/"):
        return {"files": [{"path": paths[0], "content": TEST}], "notes": ""}
    return {"files": [{"path": paths[0], "content": "def total(\n" if broken else MODULE}], "notes": ""}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One no-model scaffold of SPEC, shared: tests continue copies of it rather than re-running it."""
    folder = tmp_path_factory.mktemp("base")
    (folder / "minilib.yaml").write_text(SPEC)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["scaffold", str(folder / "minilib.yaml"), "-o", str(folder / "out"), "--json"]
    )
    assert result.exit_code == 0, result.output
    return folder / "out", json.loads(result.stdout)


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    reset_defaults()
    CALLS.clear()
    register_backend("coder", lambda target, **o: FunctionBackend(_coder, name=f"coder:{target}"))
    register_backend(
        "broken", lambda target, **o: FunctionBackend(lambda r: _coder(r, broken=True), name="broken")
    )
    (tmp_path / "minilib.yaml").write_text(SPEC)
    yield tmp_path
    reset_defaults()


def _copy(base_run: tuple[Path, dict[str, Any]]) -> tuple[str, str]:
    shutil.copytree(base_run[0], "out")
    return "out", base_run[1]["run_id"]


def test_red_feature_tests_of_skipped_steps_do_not_fail_a_no_model_run(
    base_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # What a red-first playbook leaves when its implement steps are skipped: a feature test that fails.
    out, _ = _copy(base_run)
    Path(out, "tests").mkdir(exist_ok=True)
    Path(out, "tests", "test_feature_red.py").write_text("def test_red() -> None:\n    assert False\n")
    code = main(["scaffold", "--resume", "latest", "-o", out])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "1 failed" in err and "expected: the skipped feature steps have not been written yet" in err


def test_without_a_model_render_steps_pass_and_model_steps_are_skipped(
    base_run: tuple[Path, dict[str, Any]],
) -> None:
    out, data = base_run
    assert data["ok"] is True and data["no_model"] is True
    statuses = {s["id"]: s["status"] for s in data["steps"]}
    assert statuses["layout"] == "passed" and statuses["feature-total"] == "skipped"
    assert statuses["feature-total-tests"] == "skipped"
    assert all(v["ok"] for s in data["steps"] if s["status"] == "passed" for v in s["verifiers"])
    assert data["hint"] == NO_MODEL_HINT
    assert (out / ".promptkit/runs" / data["run_id"] / "report.json").is_file()
    # The feature's function is declared (a rendered skeleton); its body is the skipped model step's.
    assert (out / "pyproject.toml").is_file() and "    ...\n" in (out / "minilib/total.py").read_text()


def test_table_output_says_skipped_is_not_failed(
    base_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, run_id = _copy(base_run)
    code = main(["scaffold", "--resume", "latest", "-o", out])
    captured = capsys.readouterr()
    assert code == 0
    assert "layout" in captured.out and "passed" in captured.out and "skipped" in captured.out
    assert "skipped, not failed" in captured.err and "--model local:/path/model.gguf" in captured.err
    assert f"promptkit scaffold --resume {run_id}" in captured.err
    assert CALLS == []


def test_resume_with_a_model_completes_the_run(
    base_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, run_id = _copy(base_run)
    code = main(["scaffold", "--resume", run_id, "-o", out, "--model", "coder:v1", "--json", "--no-cache"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0, data
    assert data["run_id"] == run_id and all(s["status"] == "passed" for s in data["steps"])
    assert CALLS == ["tests/test_feature_total.py", "minilib/total.py"]  # tests first
    assert Path("out/minilib/total.py").read_text() == MODULE
    assert next(s for s in data["steps"] if s["id"] == "layout")["runs"] == 1  # not redone
    feature = next(s for s in data["steps"] if s["id"] == "feature-total-tests")
    assert feature["model"] == "coder:v1" and "pytest" in {v["name"] for v in feature["verifiers"]}
    assert data["ledger"]["calls"] == 2  # the model calls are in the ledger under the run's id
    with RunState.for_workspace(out) as state:
        events = [e["event"] for e in state.events(run_id)]
    assert events.count("run_started") == 1 and events.count("run_resumed") == 1


def test_failed_step_exits_nonzero_with_the_errors(
    base_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, run_id = _copy(base_run)
    code = main(["scaffold", "--resume", run_id, "-o", out, "--model", "broken:v1", "--json", "--no-cache"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["ok"] is False
    feature = next(s for s in data["steps"] if s["id"] == "feature-total")
    assert feature["status"] == "failed" and feature["attempts"] == 3
    assert "SyntaxError" in feature["errors"][-1]
    # The tests were written first (and failed before the code, as they must); the code never passed them.
    assert next(s for s in data["steps"] if s["id"] == "feature-total-tests")["status"] == "passed"


def test_confirm_shows_the_plan_then_the_diff_and_a_no_skips_the_step() -> None:
    # Yes to running the first step, no to applying its changes.
    result = CliRunner().invoke(
        cli, ["scaffold", "minilib.yaml", "-o", "out", "--confirm", "--json"], input="y\nn\n"
    )
    data = json.loads(result.stdout[result.stdout.index("{") :])
    reasons = {s["id"]: s["reason"] for s in data["steps"]}
    assert reasons["layout"] == "declined at --confirm"
    assert "Run step layout?" in result.output and "Apply these changes for layout?" in result.output
    assert "+++ b/pyproject.toml" in result.output
    assert not Path("out/pyproject.toml").exists()
    assert all(s["status"] == "skipped" for s in data["steps"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scaffold", "-o", "out"], "give SPEC to start a run, or --resume RUN_ID"),
        (
            ["scaffold", "minilib.yaml", "-o", "out", "--resume", "x"],
            "give SPEC to start a run, or --resume RUN_ID",
        ),
        (
            ["scaffold", "minilib.yaml", "-o", "out", "--planner", "llm"],
            "--planner llm needs --model or --router",
        ),
        (["scaffold", "minilib.yaml", "-o", "out", "--model", "a", "--router", "minilib.yaml"], "not both"),
    ],
)
def test_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_bad_spec_is_one_line_naming_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    Path("bad.yaml").write_text("name: x\nsummary: s\nstack: cobol\n")
    code = main(["scaffold", "bad.yaml", "-o", "out"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: bad.yaml:3") and len(err.strip().splitlines()) == 1


def test_unknown_resume_id_is_an_error(
    base_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, run_id = _copy(base_run)
    assert main(["scaffold", "--resume", "nope", "-o", out]) == 1
    assert f"no run 'nope'; recent runs: {run_id}" in capsys.readouterr().err


def test_missing_verifier_tools_stop_the_run_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptkit.execution import Pytest, Ruff

    monkeypatch.setattr(Ruff, "_command", staticmethod(lambda: None))
    monkeypatch.setattr(Pytest, "installed", staticmethod(lambda: False))
    assert main(["scaffold", "minilib.yaml", "-o", "out"]) == 2
    err = capsys.readouterr().err
    assert "scaffold verifies with ruff and pytest, not installed here" in err
    assert "pip install 'promptkit[scaffold]'" in err
    assert not Path("out").exists()
