"""``promptkit eval``: runs a suite, writes the log, gates CI with its exit code, resumes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest, register_backend
from promptkit.cli import main
from promptkit.evals import EvalLog


def _adder(target: str, **options: object) -> FunctionBackend:
    offset = 1 if target == "wrong" else 0

    def answer(request: GenerateRequest) -> str:
        a, b = (int(x) for x in request.messages[-1].content.split("+"))
        return f"The answer is {a + b + offset}"

    return FunctionBackend(answer, name=f"evalcli-{target}")


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    register_backend("evalcli", _adder)
    rows = [{"id": f"i{n}", "q": f"{n} + {n}", "a": str(2 * n)} for n in range(4)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tmp_path


def suite(path: Path, model: str) -> Path:
    text = textwrap.dedent(
        f"""\
        name: cli-suite
        variants:
          - {{name: plain, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: Add.}}}}
        models: ["{model}"]
        dataset: {{path: data.jsonl, id_field: id, inputs: {{input: q}}, expected: a}}
        scorers:
          - {{type: numeric}}
        thresholds: {{pass_rate: 0.75}}
        """
    )
    target = path / f"{model.replace(':', '_')}.yaml"
    target.write_text(text, encoding="utf-8")
    return target


def test_passing_suite_exits_0_and_writes_the_log(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", str(suite(project, "evalcli:right")), "--out", "log.json", "--json", "--no-cache"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["status"] == "complete" and out["failed_gates"] == []
    assert out["summary"][0]["pass_rate"] == 1.0 and out["summary"][0]["results"] == 4
    log = EvalLog.model_validate_json((project / "log.json").read_text())
    assert len(log.results) == 4 and log.run_id == out["run_id"]
    assert (project / f"{log.run_id}.sqlite").is_file()  # the run log sits next to --out


def test_failing_gate_exits_1_and_says_which(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", str(suite(project, "evalcli:wrong")), "--no-progress", "--no-cache"])
    captured = capsys.readouterr()
    assert code == 1
    assert "gate failed: pass_rate of variant 'plain' is 0, needs >= 0.75" in captured.err
    assert "cli-suite" in captured.out


def test_resume_of_a_finished_run_redoes_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = suite(project, "evalcli:right")
    assert main(["eval", str(path), "--run-id", "r1", "--json", "--no-cache"]) == 0
    capsys.readouterr()
    assert main(["eval", str(path), "--resume", "r1", "--json", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_id"] == "r1" and out["summary"][0]["results"] == 4


def test_bad_suite_exits_2_with_file_and_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = suite(project, "evalcli:right")
    path.write_text(path.read_text().replace("repeats", "x").replace("{type: numeric}", "{type: numerc}"))
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7: scorers[0].type" in err and "unknown scorer type 'numerc'" in err


def test_model_and_limit_override_the_suite(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The suite names the wrong model; --model swaps it for the right one, --limit keeps the first 2 items.
    path = suite(project, "evalcli:wrong")
    code = main(["eval", str(path), "--model", "evalcli:right", "--limit", "2", "--out", "o.json", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["summary"][0]["model"] == "evalcli:right" and out["summary"][0]["results"] == 2
    log = EvalLog.model_validate_json((project / "o.json").read_text())
    assert log.models == ["evalcli:right"]
    assert sorted(r.item_id for r in log.results) == ["i0", "i1"]
    # Without the override the same suite fails its gate: the override really replaced the model.
    assert main(["eval", str(path), "--json", "--no-cache"]) == 1


def test_variant_runs_only_the_named_variants(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = suite(project, "evalcli:right")
    text = path.read_text().replace(
        "variants:\n",
        "variants:\n  - {name: terse, template: few_shot, examples: {strategy: first_k, k: 0}, "
        "inputs: {instruction: Sum.}}\n",
    )
    path.write_text(text)
    assert main(["eval", str(path), "--variant", "plain", "--run-id", "v1", "--json", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["variant"] for row in out["summary"]] == ["plain"]
    # A resume keeps the variants the run was started with.
    assert main(["eval", str(path), "--resume", "v1", "--json", "--no-cache"]) == 0
    assert [row["variant"] for row in json.loads(capsys.readouterr().out)["summary"]] == ["plain"]
    assert main(["eval", str(path), "--variant", "plian", "--no-cache"]) == 2
    assert "no variant 'plian' in this suite; its variants: terse, plain" in capsys.readouterr().err
