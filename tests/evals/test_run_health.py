"""Issue 16, item 8: errored items are not a clean run, and no A/B verdict rests on errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest, register_backend
from promptkit.cli import main
from promptkit.errors import BackendUnavailable
from promptkit.evals._ab import compare_variants
from promptkit.evals._eval_log import EvalLog
from tests.evals.test_ab_logs import build_log

FAST = {"n_resamples": 500}


def errored(log: EvalLog, variants: set[str], items: set[int] | None = None) -> EvalLog:
    """``log`` with the results of ``variants`` (on ``items``, default all) turned into errors."""
    results = []
    for r in log.results:
        if r.variant in variants and (items is None or int(r.item_id[-3:]) in items):
            r = r.model_copy(
                update={"error": "RateLimited: 429 from the provider", "passed": False, "scores": []}
            )
        results.append(r)
    return log.model_copy(update={"results": results})


def base_log() -> EvalLog:
    return build_log({"A": [[1]] * 10 + [[0]] * 10, "B": [[1]] * 10 + [[0]] * 10})


def test_all_errors_get_no_verdict_instead_of_no_difference() -> None:
    log = errored(base_log(), {"A", "B"})
    report = compare_variants(log, **FAST)
    assert report.winner is None
    assert report.verdict.startswith("No verdict: A and B have no successful result (40 errored")
    assert (
        "would not settle" not in report.verdict and "would not settle" not in report.comparisons[0].verdict
    )
    assert [v.errors for v in report.variants] == [20, 20] and [v.failures for v in report.variants] == [0, 0]


def test_a_variant_without_a_success_gets_no_verdict() -> None:
    log = errored(build_log({"A": [[0]] * 20, "B": [[1]] * 20}), {"A"})
    report = compare_variants(log, **FAST)
    assert report.winner is None and report.comparisons[0].winner is None
    assert report.verdict.startswith("No verdict: A has no successful result (20 errored")
    assert "RateLimited" in report.verdict


def test_errors_are_counted_apart_from_failures() -> None:
    log = errored(base_log(), {"A"}, items={0, 1, 2})
    report = compare_variants(log, **FAST)
    a, b = report.variant("A"), report.variant("B")
    assert (a.errors, a.failures) == (3, 10) and (b.errors, b.failures) == (0, 10)


def test_equal_errors_are_not_called_no_difference() -> None:
    log = errored(base_log(), {"A", "B"}, items={0, 1, 2, 3})
    report = compare_variants(log, **FAST)
    assert "would not settle" not in report.verdict
    assert "8 of their results errored and count as fails" in report.verdict


def test_run_problems() -> None:
    from promptkit.evals._ab import run_problems

    assert run_problems(base_log()) == []
    assert run_problems(errored(base_log(), {"A"}, items=set(range(5)))) == []
    problems = run_problems(errored(base_log(), {"A", "B"}, items=set(range(12))))
    assert problems[0] == "24 of 40 results errored, more than succeeded"
    problems = run_problems(errored(base_log(), {"B"}))
    assert problems[0] == "variant 'B' has no successful result (all 20 of its results errored)"
    assert problems[-1].startswith("first error: RateLimited: 429")


def test_ab_cli_exits_non_zero_for_an_errored_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    path = tmp_path / "log.json"
    path.write_text(errored(base_log(), {"A", "B"}).model_dump_json(), encoding="utf-8")
    code = main(["ab", str(path)])
    captured = capsys.readouterr()
    assert code == 3
    assert "run not clean: 40 of 40 results errored" in captured.err
    assert "no difference was observed" not in captured.out


# --- promptkit eval --------------------------------------------------------------------------------------


def _down(target: str, **options: object) -> FunctionBackend:
    def answer(request: GenerateRequest) -> str:
        if target == "down" or "3 +" in request.messages[-1].content:
            raise BackendUnavailable("the provider is down")
        a, b = (int(x) for x in request.messages[-1].content.split("+"))
        return f"The answer is {a + b}"

    return FunctionBackend(answer, name=f"health-{target}")


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    register_backend("health", _down)
    rows = [{"id": f"i{n}", "q": f"{n} + {n}", "a": str(2 * n)} for n in range(4)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tmp_path


def suite(path: Path, model: str) -> Path:
    text = textwrap.dedent(
        f"""\
        name: health-suite
        variants:
          - {{name: plain, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: Add.}}}}
        models: ["{model}"]
        dataset: {{path: data.jsonl, id_field: id, inputs: {{input: q}}, expected: a}}
        scorers:
          - {{type: numeric}}
        max_attempts: 1
        """
    )
    target = path / f"{model.replace(':', '_')}.yaml"
    target.write_text(text, encoding="utf-8")
    return target


def test_eval_of_all_errors_exits_non_zero_with_a_summary(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["eval", str(suite(project, "health:down")), "--no-progress", "--no-cache", "--json"])
    captured = capsys.readouterr()
    assert code == 3, captured.err
    assert "run not clean: 4 of 4 results errored, more than succeeded" in captured.err
    assert "variant 'plain' has no successful result" in captured.err
    assert json.loads(captured.out)["run_problems"][0].startswith("4 of 4 results errored")


def test_eval_with_a_few_errors_is_still_clean(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", str(suite(project, "health:flaky")), "--no-progress", "--no-cache", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["run_problems"] == []
