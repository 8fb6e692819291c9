from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptkit.cli import main
from promptkit.config import TEMPLATE_PATH_ENV
from promptkit.prompts import Template, count_tokens

FIXTURES = Path(__file__).parents[1] / "prompts" / "fixtures"
GOOD = FIXTURES / "good"


@pytest.fixture(autouse=True)
def search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(TEMPLATE_PATH_ENV, str(GOOD))


def render_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["render", *args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_render_json_shape_and_coercion(capsys: pytest.CaptureFixture[str]) -> None:
    data = render_json(capsys, "review", "-i", "language=python", "-i", "code=x = 1", "-i", "max_findings=4")
    assert {"template", "version", "hash", "messages", "token_count", "trimmed"} <= set(data)
    template = Template.from_file(GOOD / "review.yaml")
    assert (data["template"], data["version"], data["hash"]) == ("review", "2.1.0", template.hash)
    expected = template.render(language="python", code="x = 1", max_findings=4)
    assert data["messages"] == [{"role": m.role, "content": m.content} for m in expected.messages]
    assert "Report at most 4 findings" in data["messages"][0]["content"]
    assert data["token_count"] == count_tokens(expected.messages)
    assert data["trimmed"] == []


def test_text_output_has_role_headers_and_token_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "summarize", "--input", "text=Hello world.", "--examples", "first_k:1"]) == 0
    out = capsys.readouterr().out
    assert "──── system ────" in out and "──── user ────" in out and "Hello world." in out
    assert "Stock markets" not in out  # first_k:1 kept only the first example
    assert out.strip().splitlines()[-1].startswith("summarize@1.0.0 (") and "tokens" in out


def test_file_values_and_inputs_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = tmp_path / "app.py"
    code.write_text("print('{{ 7*7 }}')\n")
    inputs = tmp_path / "in.yaml"
    inputs.write_text("language: python\nmax_findings: 2\n")
    data = render_json(capsys, "review", "--inputs", str(inputs), "-i", f"code=@{code}")
    assert data["messages"][-1]["content"] == "Code:\nprint('{{ 7*7 }}')"
    as_json = tmp_path / "in.json"
    as_json.write_text(json.dumps({"language": "javascript", "code": "f()"}))
    assert "javascript" in render_json(capsys, "review", "--inputs", str(as_json))["messages"][0]["content"]


def test_budget_trims_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    code = "\n".join(f"value_{i} = {i}" for i in range(400))
    data = render_json(capsys, "review", "-i", "language=python", "-i", f"code={code}", "--budget", "400")
    assert data["token_count"] <= 400
    assert any(t.startswith("input 'code': cut") for t in data["trimmed"])
    assert "tokens trimmed to fit the context budget" in data["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("args", "fragment", "code"),
    [
        (["review", "-i", "language=python"], "input 'code': missing", 2),
        (["review", "-i", "language=python", "-i", "code=x", "-i", "max_findings=lots"], "not an integer", 2),
        (["review", "-i", "language=rust", "-i", "code=x"], "input 'language'", 2),
        (["review", "-i", "language=python", "-i", "code=@/nonexistent/file.py"], "cannot read", 2),
        (
            ["review", "-i", "language=python", "-i", "code=x", "--examples", "best_k"],
            "unknown example strategy",
            2,
        ),
        (
            ["review", "-i", "language=python", "-i", "code=" + "y " * 3000, "--budget", "5"],
            "over the budget",
            2,
        ),
        (["nosuch"], "no template named 'nosuch'", 2),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(
    capsys: pytest.CaptureFixture[str], args: list[str], fragment: str, code: int
) -> None:
    assert main(["render", *args]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], captured.err


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "review", "-i", "novalue"]) == 2
    assert "expected key=value" in capsys.readouterr().err
    assert main(["render", "review", "--inputs", "/nonexistent.json"]) == 2


def test_boolean_and_number_coercion(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "typed.yaml").write_text(
        "name: typed\nversion: 1.0.0\ninputs:\n  enabled: {type: boolean}\n  t: {type: number}\n"
        "messages:\n  - role: user\n    content: '{{ enabled }} {{ t }}'\n"
    )
    monkeypatch.setenv(TEMPLATE_PATH_ENV, str(lib))
    data = render_json(capsys, "typed", "-i", "enabled=yes", "-i", "t=0.5")
    assert data["messages"][0]["content"] == "True 0.5"
    assert main(["render", "typed", "-i", "enabled=perhaps", "-i", "t=1"]) == 2
    assert "not a boolean" in capsys.readouterr().err
