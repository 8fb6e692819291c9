"""``promptkit eval --resume RUN_ID`` as the README writes it: the run log is found where ``--out`` put it, and
the run's ``--model``/``--limit`` and ``--out`` are reused, so only the unfinished results are run."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest, register_backend
from promptkit.cli import main
from promptkit.evals import EvalLog

CALLS: list[str] = []


def _adder(target: str, **options: object) -> FunctionBackend:
    def answer(request: GenerateRequest) -> str:
        question = request.messages[-1].content
        CALLS.append(question)
        a, b = (int(x) for x in question.split("+"))
        return f"The answer is {a + b + (0 if target == 'right' else 1)}"

    return FunctionBackend(answer, name=f"resumecli-{target}")


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    register_backend("resumecli", _adder)
    CALLS.clear()
    rows = [{"id": f"i{n}", "q": f"{n} + {n}", "a": str(2 * n)} for n in range(5)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "suite.yaml").write_text(
        textwrap.dedent(
            """\
            name: resume-suite
            variants:
              - {name: plain, template: few_shot, examples: {strategy: first_k, k: 0}, inputs: {instruction: Add.}}
            models: ["resumecli:wrong"]
            dataset: {path: data.jsonl, id_field: id, inputs: {input: q}, expected: a}
            scorers:
              - {type: numeric}
            thresholds: {pass_rate: 0.75}
            """
        ),
        encoding="utf-8",
    )
    return tmp_path


def start(project: Path) -> None:
    """The README's first command: a model override and --out in another folder; then 2 results are lost."""
    args = ["eval", "suite.yaml", "--model", "resumecli:right", "--limit", "4", "--out", "build/log.json"]
    assert main([*args, "--run-id", "r1", "--json", "--no-cache"]) == 0
    assert not (project / "state" / "evals" / "r1.sqlite").exists()  # the run log is next to --out
    with sqlite3.connect(project / "build" / "r1.sqlite") as db:
        db.execute("DELETE FROM results WHERE item_id IN ('i1', 'i3')")  # as if killed before they finished
    (project / "build" / "log.json").unlink()
    CALLS.clear()


def test_resume_by_run_id_alone_finds_the_log_and_reuses_the_runs_options(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start(project)
    capsys.readouterr()
    assert main(["eval", "suite.yaml", "--resume", "r1", "--json", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(CALLS) == ["1 + 1", "3 + 3"]  # only what was missing; on the run's model, not the suite's
    assert out["run_id"] == "r1" and out["status"] == "complete"
    assert out["summary"][0]["model"] == "resumecli:right" and out["summary"][0]["results"] == 4
    assert out["out"] == str(project / "build" / "log.json")
    log = EvalLog.model_validate_json((project / "build" / "log.json").read_text())  # written again
    assert sorted(r.item_id for r in log.results) == ["i0", "i1", "i2", "i3"]


def test_resume_with_other_overrides_names_what_the_run_was_started_with(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start(project)
    capsys.readouterr()
    assert main(["eval", "suite.yaml", "--resume", "r1", "--limit", "5", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "changed since run 'r1'" in err and "limit=4" in err and "resumecli:right" in err
    assert CALLS == []


def test_resume_of_an_unknown_run_says_where_it_looked(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "suite.yaml", "--resume", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no run log for run 'nope'" in err and str(project / "state" / "evals" / "nope.sqlite") in err
