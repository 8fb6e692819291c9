"""The runner with fake backends: determinism, repeats, per-model scheduling, errors, cache, pass@k, resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest
from promptkit.cache import ExactCache
from promptkit.errors import ConfigError, EvalError, ModelRequestError
from promptkit.evals import (
    EvalLog,
    arun_suite,
    assert_suite,
    derive_seed,
    load_suite,
    pass_at_k_array,
    run_suite,
)

HUMANEVAL = Path(__file__).parents[2] / "../shared/data/humaneval/HumanEval.jsonl.gz"
N_ITEMS = 6


def suite_text(models: str = "[m1]", repeats: int = 2, concurrency: int = 4, extra: str = "") -> str:
    return (
        textwrap.dedent(
            f"""\
        name: arithmetic
        variants:
          - {{name: plain, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: Compute.}}}}
          - {{name: shots, template: few_shot, inputs: {{instruction: Compute.}}}}
        models: {models}
        dataset: {{path: data.jsonl, id_field: id, inputs: {{input: q}}, expected: a}}
        scorers:
          - {{type: numeric}}
        repeats: {repeats}
        concurrency: {concurrency}
        seed: 7
        """
        )
        + extra
    )


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    rows = [{"id": f"i{n}", "q": f"{n} + {n}", "a": str(2 * n)} for n in range(N_ITEMS)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "suite.yaml").write_text(suite_text(), encoding="utf-8")
    return tmp_path


def adder(name: str = "m1", log: list[Any] | None = None, wrong: bool = False) -> FunctionBackend:
    """Answers "a + b" questions (wrongly when asked to), recording (name, item question, seed)."""

    def answer(request: GenerateRequest) -> str:
        question = request.messages[-1].content
        if log is not None:
            log.append((name, question, request.seed))
        a, b = (int(x) for x in question.split("+"))
        return f"The answer is {a + b + (1 if wrong else 0)}"

    return FunctionBackend(answer, name=name)


def test_runs_every_item_variant_repeat_and_scores(project: Path) -> None:
    calls: list[Any] = []
    log = run_suite(
        "suite.yaml", out="log.json", backends={"m1": adder(log=calls)}, progress=False, cache=False
    )
    assert log.status == "complete" and log.finished_at is not None
    keys = Counter((r.variant, r.model, r.item_id, r.repeat) for r in log.results)
    assert len(keys) == N_ITEMS * 2 * 2 and set(keys.values()) == {1}
    assert all(r.passed is True and r.scores[0].value == 1.0 for r in log.results)
    assert [v.name for v in log.variants] == ["plain", "shots"]
    assert log.variants[0].options == {
        "examples": {"strategy": "first_k", "k": 0},
        "inputs": {"instruction": "Compute."},
    }
    # The plain variant sends no examples; the few-shot one sends the template's three.
    by_variant = {r.variant: r for r in log.results if r.item_id == "i1" and r.repeat == 0}
    assert by_variant["plain"].input_tokens < by_variant["shots"].input_tokens
    assert EvalLog.model_validate_json((project / "log.json").read_text()) == log


def test_seeds_are_derived_from_item_and_repeat_and_runs_are_deterministic(project: Path) -> None:
    first: list[Any] = []
    second: list[Any] = []
    log1 = run_suite("suite.yaml", backends={"m1": adder(log=first)}, progress=False, cache=False)
    log2 = run_suite("suite.yaml", backends={"m1": adder(log=second)}, progress=False, cache=False)
    assert sorted(first) == sorted(second)
    seeds = {(q, s) for _, q, s in first}
    expected = {(f"{n} + {n}", derive_seed(7, f"i{n}", r)) for n in range(N_ITEMS) for r in range(2)}
    assert seeds == expected  # one seed per (item, repeat), shared by both variants
    assert len({s for _, s in seeds}) == N_ITEMS * 2
    strip = lambda log: [(r.variant, r.item_id, r.repeat, r.output, r.passed) for r in log.results]  # noqa: E731
    assert sorted(strip(log1)) == sorted(strip(log2))
    assert derive_seed(7, "i1", 0) != derive_seed(8, "i1", 0)


def test_all_of_one_models_calls_finish_before_the_next_model(project: Path) -> None:
    (project / "suite.yaml").write_text(suite_text(models="[m1, m2]", concurrency=8), encoding="utf-8")
    order: list[Any] = []

    async def slow_answer(name: str, request: GenerateRequest) -> str:
        order.append(("start", name))
        await asyncio.sleep(0.01)
        order.append(("end", name))
        return "The answer is 0"

    backends = {
        name: FunctionBackend(lambda req, name=name: slow_answer(name, req), name=name)
        for name in ("m1", "m2")
    }
    log = run_suite("suite.yaml", backends=backends, progress=False, cache=False)
    names = [name for _, name in order]
    assert names.count("m1") == names.count("m2") == 2 * N_ITEMS * 2 * 2
    last_m1 = max(i for i, (_, n) in enumerate(order) if n == "m1")
    first_m2 = min(i for i, (_, n) in enumerate(order) if n == "m2")
    assert last_m1 < first_m2
    assert log.models == ["m1", "m2"]


def test_concurrency_is_bounded_and_used(project: Path) -> None:
    (project / "suite.yaml").write_text(suite_text(concurrency=3), encoding="utf-8")
    state = {"now": 0, "peak": 0}

    async def answer(request: GenerateRequest) -> str:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return "The answer is 0"

    run_suite("suite.yaml", backends={"m1": FunctionBackend(answer, name="m1")}, progress=False, cache=False)
    assert state["peak"] == 3


def test_generation_errors_are_results_not_crashes(project: Path) -> None:
    def flaky(request: GenerateRequest) -> str:
        if "3 + 3" in request.messages[-1].content:
            raise ModelRequestError("the provider refused: api_key=sk-abcdefghijklmnopqrstuvwxyz123456")
        return "The answer is " + str(sum(int(x) for x in request.messages[-1].content.split("+")))

    log = run_suite(
        "suite.yaml", backends={"m1": FunctionBackend(flaky, name="m1")}, progress=False, cache=False
    )
    failed = [r for r in log.results if r.error is not None]
    assert {r.item_id for r in failed} == {"i3"} and len(failed) == 4
    assert all(r.passed is False and r.scores == [] for r in failed)
    assert all("sk-abcdefghijklmnop" not in (r.error or "") for r in failed)
    assert all(r.passed for r in log.results if r.item_id != "i3")


def test_the_cache_serves_a_second_run(project: Path) -> None:
    cache = ExactCache(project / "cache.sqlite")
    calls: list[Any] = []
    run_suite("suite.yaml", backends={"m1": adder(log=calls)}, progress=False, cache=cache)
    assert len(calls) == N_ITEMS * 2 * 2
    again = run_suite("suite.yaml", backends={"m1": adder(log=calls)}, progress=False, cache=cache)
    assert len(calls) == N_ITEMS * 2 * 2  # no new calls
    assert all(r.cached for r in again.results)
    cache.close()


def test_ci_gates(project: Path) -> None:
    (project / "suite.yaml").write_text(suite_text(extra="thresholds: {pass_rate: 0.9}\n"), encoding="utf-8")
    log = assert_suite("suite.yaml", backends={"m1": adder()}, cache=False)
    assert log.thresholds == {"pass_rate": 0.9}
    with pytest.raises(AssertionError, match=r"pass_rate of variant 'plain' is 0, needs >= 0.9"):
        assert_suite("suite.yaml", backends={"m1": adder(wrong=True)}, cache=False)


def test_inputs_that_do_not_fit_the_template_stop_the_run_before_any_call(project: Path) -> None:
    (project / "suite.yaml").write_text(
        suite_text().replace("inputs: {input: q}", "inputs: {question: q}"), encoding="utf-8"
    )
    calls: list[Any] = []
    with pytest.raises(EvalError, match=r"data.jsonl:1: item 'i0' does not fit variant 'plain'"):
        run_suite("suite.yaml", backends={"m1": adder(log=calls)}, progress=False, cache=False)
    assert calls == []


@pytest.mark.skipif(not HUMANEVAL.is_file(), reason="shared/data is not beside the repository")
def test_pass_at_k_aggregates_from_the_run(project: Path) -> None:
    (project / "he.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: humaneval-mini
            variants:
              - {{name: complete, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: Complete the function.}}}}
            models: [coder]
            dataset: {{path: {HUMANEVAL.resolve()}, id_field: task_id, inputs: {{input: prompt}}, limit: 4}}
            scorers:
              - {{type: code_exec, prompt_field: prompt, k: [1, 2, 3]}}
            repeats: 3
            """
        ),
        encoding="utf-8",
    )
    suite = load_suite(project / "he.yaml")
    items = suite.items()
    # Problem i gets the canonical solution on its first i repeats and a broken body after.
    plan = {
        (it.row["prompt"].strip(), derive_seed(0, it.id, r)): (
            it.row["canonical_solution"] if r < i else "    pass\n"
        )
        for i, it in enumerate(items)
        for r in range(3)
    }

    def coder(request: GenerateRequest) -> str:
        return plan[(request.messages[-1].content.strip(), request.seed)]

    log = run_suite(
        suite, backends={"coder": FunctionBackend(coder, name="coder")}, progress=False, cache=False
    )
    correct = Counter(r.item_id for r in log.results if r.passed)
    cs = [correct.get(it.id, 0) for it in items]
    assert cs == [0, 1, 2, 3]
    found = {a.metric: a for a in log.aggregates}
    assert set(found) == {"pass@1", "pass@2", "pass@3"}
    for k in (1, 2, 3):
        assert found[f"pass@{k}"].value == pytest.approx(pass_at_k_array(3, cs, k))
        assert (found[f"pass@{k}"].n_items, found[f"pass@{k}"].n_samples) == (4, 3)


KILL_SCRIPT = """
import asyncio, sys
from promptkit.backends import FunctionBackend
from promptkit.evals import run_suite

async def answer(request):
    await asyncio.sleep(0.05)
    a, b = (int(x) for x in request.messages[-1].content.split("+"))
    return f"The answer is {a + b}"

run_suite("suite.yaml", out="out/log.json", run_id="killed", progress=False, cache=False, ledger=False,
          backends={"m1": FunctionBackend(answer, name="m1")})
print("finished", flush=True)
"""


def test_resume_after_sigkill_gives_every_result_exactly_once(project: Path) -> None:
    (project / "suite.yaml").write_text(suite_text(repeats=3, concurrency=2), encoding="utf-8")
    (project / "run.py").write_text(KILL_SCRIPT, encoding="utf-8")
    total = N_ITEMS * 2 * 3
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "run.py"], cwd=project, env=env, stdout=subprocess.PIPE)
    db = project / "out" / "killed.sqlite"
    committed = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if db.exists():
                try:
                    with sqlite3.connect(db) as conn:
                        committed = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:
                    committed = 0  # the schema is not there yet
                if committed >= 8:
                    break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 8 <= committed < total, committed
    with sqlite3.connect(db) as conn:
        before = dict(
            ((v, m, i, r), d)
            for v, m, i, r, d in conn.execute("SELECT variant, model, item_id, repeat, data FROM results")
        )
    # Scored but not yet committed when the kill came: in the journal, one JSON line each.
    journal = db.with_name(db.name + ".pending")
    lines = journal.read_bytes().splitlines() if journal.exists() else []
    for line in lines:
        v, m, i, r, d = json.loads(line)
        before.setdefault((v, m, i, r), d)
    assert len(before) < total

    calls: list[Any] = []
    log = asyncio.run(
        arun_suite(
            "suite.yaml",
            out="out/log.json",
            resume="killed",
            progress=False,
            cache=False,
            ledger=False,
            backends={"m1": adder(log=calls)},
        )
    )
    keys = Counter((r.variant, r.model, r.item_id, r.repeat) for r in log.results)
    assert len(keys) == total and set(keys.values()) == {1}
    assert len(calls) == total - len(before)  # nothing finished was redone
    for result in log.results:
        key = (result.variant, result.model, result.item_id, result.repeat)
        if key in before:
            assert result.model_dump_json() == before[key]  # nothing finished was lost or rewritten
    assert log.status == "complete" and log.run_id == "killed"
    assert all(r.passed for r in log.results)
    assert EvalLog.model_validate_json((project / "out" / "log.json").read_text()).run_id == "killed"


def test_resume_refuses_a_changed_suite_and_unknown_runs(project: Path) -> None:
    run_suite("suite.yaml", run_id="r1", backends={"m1": adder()}, progress=False, cache=False)
    with pytest.raises(EvalError, match="already exists"):
        run_suite("suite.yaml", run_id="r1", backends={"m1": adder()}, progress=False, cache=False)
    (project / "suite.yaml").write_text(suite_text(repeats=3), encoding="utf-8")
    with pytest.raises(EvalError, match="changed since run 'r1'"):
        run_suite("suite.yaml", resume="r1", backends={"m1": adder()}, progress=False, cache=False)
    with pytest.raises(EvalError, match="no run log for run 'nope'"):
        run_suite("suite.yaml", resume="nope", backends={"m1": adder()}, progress=False, cache=False)


def test_a_setup_error_stops_the_run_at_once(project: Path) -> None:
    """A missing API key fails every item alike: one error, not an item error per item."""
    calls: list[int] = []

    def no_key(request: GenerateRequest) -> str:
        calls.append(1)
        raise ConfigError("no API key: OPENAI_API_KEY is not set", location="tier 'm1'")

    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        run_suite(
            "suite.yaml", backends={"m1": FunctionBackend(no_key, name="m1")}, progress=False, cache=False
        )
    assert len(calls) < N_ITEMS * 2 * 2  # stopped before answering every item, variant and repeat
