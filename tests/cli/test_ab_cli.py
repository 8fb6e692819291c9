"""``promptkit ab``: tables, JSON, report files, suites run first, and exit codes for CI gates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import promptkit.evals
from promptkit.cli import main
from promptkit.evals._ab import ABReport
from tests.evals.test_ab_logs import build_log, discordant, from_pairs


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTKIT_HOME", raising=False)
    monkeypatch.setenv("COLUMNS", "250")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_log(path: Path, thresholds: dict[str, float] | None = None, b01: int = 14, b10: int = 2) -> Path:
    a, b = discordant(40, b01=b01, b10=b10, both_pass=16)  # A: 45%, B: 75% by default
    path.write_text(build_log(from_pairs(a, b), thresholds=thresholds).model_dump_json(), encoding="utf-8")
    return path


def test_table_output_and_exit_zero(tmp_path: Path, capsys):
    log = write_log(tmp_path / "log.json", thresholds={"pass_rate": 0.4})
    code, out, err = run(capsys, "ab", str(log))
    assert code == 0, err
    assert "45.0%" in out and "75.0%" in out and "McNemar" in out
    assert "verdict: B beats A by +30.0 pts" in out


def test_json_output_is_the_versioned_report(tmp_path: Path, capsys):
    log = write_log(tmp_path / "log.json")
    code, out, _ = run(capsys, "ab", str(log), "--json", "--baseline", "B", "--alpha", "0.01")
    assert code == 0
    data = json.loads(out)
    report = ABReport.model_validate(data)
    assert data["schema_version"] == 1 and report.baseline == "B" and report.alpha == 0.01
    assert (report.comparisons[0].a, report.comparisons[0].b) == ("B", "A")
    assert report.winner == "B"


def test_failing_gate_exits_non_zero_and_says_which(tmp_path: Path, capsys):
    log = write_log(tmp_path / "log.json", thresholds={"pass_rate": 0.6})
    code, out, err = run(capsys, "ab", str(log), "--json")
    assert code == 1
    assert json.loads(out)["thresholds"][0]["passed"] is False
    assert "gate failed: pass_rate for A: 0.45, needs >= 0.6" in err
    assert "for B" not in err


def test_writes_html_and_markdown(tmp_path: Path, capsys):
    log = write_log(tmp_path / "log.json")
    code, out, _ = run(
        capsys,
        "ab",
        str(log),
        "--html",
        str(tmp_path / "out" / "r.html"),
        "--markdown",
        str(tmp_path / "r.md"),
    )
    assert code == 0
    assert "<title>A/B report: synthetic</title>" in (tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    assert (tmp_path / "r.md").read_text(encoding="utf-8").startswith("# A/B report: synthetic")
    assert f"wrote HTML report to {tmp_path / 'out' / 'r.html'}" in out


def test_metric_and_unknown_metric(tmp_path: Path, capsys):
    log = write_log(tmp_path / "log.json")
    code, out, _ = run(capsys, "ab", str(log), "--json", "--metric", "exact")
    assert code == 0 and json.loads(out)["metric"] == "exact"
    code, _, err = run(capsys, "ab", str(log), "--metric", "bleu")
    assert code == 2 and "metric 'bleu' is not a scorer" in err


def test_a_file_that_is_not_a_log_is_an_error_naming_it(tmp_path: Path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    code, _, err = run(capsys, "ab", str(bad))
    assert code == 2 and str(bad) in err and "not valid JSON" in err

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"suite": "x"}), encoding="utf-8")
    code, _, err = run(capsys, "ab", str(wrong))
    assert code == 2 and f"{wrong}: " in err and "not an eval log" in err


def test_a_suite_is_run_first(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\n", encoding="utf-8")
    a, b = discordant(40, b01=14, b10=2, both_pass=16)
    calls: list[tuple[Path, bool]] = []

    def fake_run_suite(path, *, progress=True, **_):
        calls.append((Path(path), progress))
        return build_log(from_pairs(a, b), thresholds={"pass_rate": 0.9})

    monkeypatch.setattr(promptkit.evals, "run_suite", fake_run_suite, raising=False)
    code, out, err = run(capsys, "ab", str(suite), "--json")
    assert calls == [(suite, False)]
    assert code == 1 and json.loads(out)["winner"] == "B"
    assert "gate failed: pass_rate for A" in err and "gate failed: pass_rate for B" in err


def test_registered_in_the_command_list(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "ab" in out and "Compare prompt variants on the same items" in out


# ------------------------------------------------------------------------------------------------ --judge


def _judge_backend(seen: list[str]):
    """A judge preferring the output that says B (the better variant in ``write_log``'s outputs)."""
    from promptkit.backends import FunctionBackend

    def answer(request) -> dict[str, str]:
        text = request.messages[-1].content
        seen.append(text)
        first = text.split("First answer:")[1].split("Second answer:")[0]
        return {"rationale": "B says it better", "winner": "first" if "B says" in first else "second"}

    return FunctionBackend(answer, name="judge:fake")


@pytest.fixture
def judge_prompts(monkeypatch: pytest.MonkeyPatch):
    from promptkit.backends import register_backend
    from promptkit.generation import reset_defaults

    seen: list[str] = []
    reset_defaults()
    register_backend("pairjudge", lambda target, **options: _judge_backend(seen))
    yield seen
    reset_defaults()


def test_judge_adds_the_pairwise_comparison(tmp_path: Path, capsys, judge_prompts):
    log = write_log(tmp_path / "log.json")
    (tmp_path / "rubric.txt").write_text("Prefer the answer from B.\n", encoding="utf-8")
    code, out, err = run(capsys, "ab", str(log), "--judge", "pairjudge:v1", "--rubric", "@rubric.txt")
    assert code == 0, err
    assert "judging the outputs with pairjudge:v1" in err
    flat = " ".join(out.split())
    assert "judge (pairwise, both orders)" in flat
    assert (
        "judge verdict: Judge prefers B over A in 40 of 40 items (A in 0, 0 ties; sign test p<0.0001; orders agreed 100%)."
        in flat
    )
    assert len(judge_prompts) == 80 and all("Prefer the answer from B." in p for p in judge_prompts)

    code, out, _ = run(
        capsys, "ab", str(log), "--json", "--judge", "pairjudge:v1", "--rubric", "Inline rubric."
    )
    data = json.loads(out)
    report = ABReport.model_validate(data)
    assert code == 0 and data["schema_version"] == 1
    assert report.pairwise is not None and report.pairwise.winner == "B"
    assert report.pairwise.comparisons[0].agreement_rate == 1.0 and len(report.pairwise.judgements) == 40
    assert "Inline rubric." in judge_prompts[-1]


def test_judge_results_go_into_html_and_markdown(tmp_path: Path, capsys, judge_prompts):
    log = write_log(tmp_path / "log.json")
    html_path, md_path = tmp_path / "r.html", tmp_path / "r.md"
    code, _, err = run(
        capsys,
        "ab",
        str(log),
        "--judge",
        "pairjudge:v1",
        "--html",
        str(html_path),
        "--markdown",
        str(md_path),
    )
    assert code == 0, err
    page = html_path.read_text(encoding="utf-8")
    assert '<table id="pairwise">' in page and page.count('<td class="judge">') == 40
    assert "## Judge (pairwise, both orders)" in md_path.read_text(encoding="utf-8")


def test_judge_options_are_checked(tmp_path: Path, capsys, judge_prompts):
    log = write_log(tmp_path / "log.json")
    code, _, err = run(capsys, "ab", str(log), "--rubric", "x")
    assert code == 2 and "--rubric needs --judge MODEL" in err
    code, _, err = run(capsys, "ab", str(log), "--judge", "pairjudge:v1", "--rubric", "@missing.txt")
    assert code == 2 and "missing.txt" in err and "cannot read the rubric" in err
    code, _, err = run(capsys, "ab", str(log), "--judge", "pairjudge:v1", "--metric", "bleu")
    assert code == 2 and "metric 'bleu' is not a scorer" in err
    assert judge_prompts == []  # nothing was judged before the bad metric was caught


def test_model_option_runs_a_suite_on_that_model(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    # -m means what it means for `promptkit eval`: the suite names a model that is always wrong by one.
    from promptkit.backends import FunctionBackend, register_backend

    def adder(target: str, **options: object) -> FunctionBackend:
        def answer(request) -> str:
            a, b = (int(x) for x in request.messages[-1].content.split("+"))
            return str(a + b + (1 if target == "wrong" else 0))

        return FunctionBackend(answer, name=f"abcli-{target}")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    register_backend("abcli", adder)
    rows = [{"id": f"i{n}", "q": f"{n} + {n}", "a": str(2 * n)} for n in range(6)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    variant = "{{name: {0}, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: {0}}}}}"
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: ab-model\nvariants:\n"
        f"  - {variant.format('Add')}\n  - {variant.format('Sum')}\n"
        'models: ["abcli:wrong"]\n'
        "dataset: {path: data.jsonl, id_field: id, inputs: {input: q}, expected: a}\n"
        "scorers:\n  - {type: numeric}\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "ab", str(suite), "-m", "abcli:right", "--json", "--markdown", "r.md")
    assert code == 0, err
    report = (tmp_path / "r.md").read_text()
    assert "abcli:right" in report and "abcli:wrong" not in report
    assert json.loads(out)["comparisons"]
    code, out, err = run(capsys, "ab", str(suite), "--json", "--markdown", "w.md")
    assert "abcli:wrong" in (tmp_path / "w.md").read_text()
