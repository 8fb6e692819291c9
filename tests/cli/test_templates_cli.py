from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptkit.cli import main
from promptkit.config import TEMPLATE_PATH_ENV

FIXTURES = Path(__file__).parents[1] / "prompts" / "fixtures"
GOOD, BROKEN, SHADOW = FIXTURES / "good", FIXTURES / "broken", FIXTURES / "shadow"
ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(TEMPLATE_PATH_ENV, os.pathsep.join([str(SHADOW), str(GOOD)]))


def test_list_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {t["name"]: t for t in data}
    assert {"classify", "review", "summarize"} <= set(by_name)
    review = by_name["review"]
    assert set(review) == {"name", "version", "hash", "tags", "inputs", "description", "path"}
    assert review["version"] == "9.0.0" and review["path"] == str(SHADOW / "review.yaml")  # shadowing
    summarize = by_name["summarize"]
    assert summarize["tags"] == {"technique": ["few-shot"], "task": ["general"]}
    assert summarize["inputs"][0] == {
        "name": "text",
        "type": "string",
        "required": True,
        "description": "What to summarise.",
    }
    assert summarize["inputs"][1]["required"] is False
    assert len(summarize["hash"]) == 64


def test_list_filters_by_tag_and_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "list", "--tag", "few-shot", "--json"]) == 0
    # the built-in library is on the search path too: look at the fixtures only
    ours = [t["name"] for t in json.loads(capsys.readouterr().out) if t["path"].startswith(str(FIXTURES))]
    assert ours == ["summarize"]
    assert main(["templates", "list"]) == 0
    out = capsys.readouterr().out
    assert "classify" in out and "summarize" in out and "templates" in out.splitlines()[-1]


def test_list_without_the_builtin_library_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from types import SimpleNamespace

    from promptkit import _package_data

    monkeypatch.setattr(_package_data, "resources", SimpleNamespace(files=lambda package: tmp_path))
    assert main(["templates", "list"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: promptkit's built-in templates are missing")
    assert str(tmp_path / "templates") in captured.err and "templates" not in captured.out


def test_show_json_has_everything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "show", "summarize", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "summarize@1.0.0"
    assert data["messages"][1] == {"role": "user", "content": "{{ text }}"}
    assert data["examples"][0]["output"] == "A cat rested on a mat."
    assert data["inputs"][1]["default"] == 50
    assert data["output_schema"] is None


def test_show_text_includes_message_source(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ[TEMPLATE_PATH_ENV] = str(GOOD)
    assert main(["templates", "show", "review"]) == 0
    out = capsys.readouterr().out
    assert "review@2.1.0" in out and "{{ example.inputs.code }}" in out and "examples block" in out
    assert '"findings"' in out  # the output schema


def test_show_unknown_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "show", "sumarize"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'summarize'" in lines[0] and "Traceback" not in captured.err


def test_lint_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "lint", str(GOOD)]) == 0
    assert capsys.readouterr().out.strip() == "3 templates OK"


def test_lint_broken_exits_1_with_file_line_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "lint", str(BROKEN)]) == 1
    out = capsys.readouterr().out
    assert f"{BROKEN / 'bad_yaml.yaml'}:7: invalid YAML" in out
    assert f"{BROKEN / 'undefined_var.yaml'}:11: message 1 uses undefined variable 'audience'" in out
    assert f"{BROKEN / 'dup_two.yaml'}:3: duplicate template name 'twin'" in out
    assert f"{BROKEN / 'undefined_var.yaml'}:5: warning: input 'unused'" in out


def test_lint_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "lint", "--json", str(BROKEN / "bad_schema.yaml")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["templates"] == 1
    (problem,) = data["problems"]
    assert problem["line"] == 10 and problem["severity"] == "error"


def test_lint_defaults_to_the_search_path(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv(TEMPLATE_PATH_ENV, str(GOOD))
    # the built-in library is on the search path too; its own lint result is not this test's business
    from promptkit.prompts import TemplateRegistry

    expected = TemplateRegistry().lint_count()
    code = main(["templates", "lint"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    if code == 0:
        assert out.strip().splitlines()[-1].startswith(f"{expected} templates OK")


def test_real_subprocess() -> None:
    env = {**os.environ, TEMPLATE_PATH_ENV: str(GOOD), "PYTHONPATH": str(ROOT)}
    ok = subprocess.run(
        [sys.executable, "-m", "promptkit.cli", "templates", "list", "--json", "--tag", "task:review"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    names = [t["name"] for t in json.loads(ok.stdout) if t["path"].startswith(str(FIXTURES))]
    assert names == ["review"]
    bad = subprocess.run(
        [sys.executable, "-m", "promptkit.cli", "templates", "lint", str(BROKEN / "bad_jinja.yaml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stdout.startswith(f"{BROKEN / 'bad_jinja.yaml'}:12: ")
    assert "Traceback" not in bad.stderr
