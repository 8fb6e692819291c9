"""Issue 16, item 9: the judge's output schema carries its scale, so no grade off the scale is accepted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from promptkit.backends import ScriptedBackend
from promptkit.evals import Generation, Item, ScorerEnv, build_scorer
from promptkit.generation import agenerate, template_for

HUGE = 4666666666666666


def judge_run(spec: dict[str, Any], answers: list[dict[str, Any]]) -> tuple[Any, ScriptedBackend]:
    backend = ScriptedBackend(answers, name="judge")
    env = ScorerEnv(backends={"strong": backend}, cache=False, ledger=False)
    item = Item(id="x", inputs={"q": "question"}, expected="ref", row={}, location="data.jsonl:1")
    scorer = build_scorer({"type": "judge", "model": "strong", "rubric": "Correct.", **spec}, env)
    return asyncio.run(scorer(item, Generation(text="my answer"), "my answer")), backend


@pytest.mark.parametrize("scale", [(1, 10), (0, 100), (1, 5)])
def test_the_request_schema_carries_the_scale(scale: tuple[int, int]) -> None:
    lo, hi = scale
    score, backend = judge_run({"scale": list(scale)}, [{"rationale": "fine", "grade": hi}])
    assert score.value == hi
    grade = backend.history[0].output_schema()["properties"]["grade"]  # what a grammar is built from
    assert (grade["minimum"], grade["maximum"]) == (lo, hi)
    assert f'"maximum": {hi}' in backend.history[0].messages[0].content  # and what the model is shown


def test_a_grade_off_the_scale_fails_validation_and_is_re_asked() -> None:
    from promptkit.evals._judge_scorers import bounded_judge_template

    template = bounded_judge_template(template_for("judge_grade"), 1, 10)
    with pytest.raises(ValidationError):
        template.output_model.model_validate({"rationale": "x", "grade": HUGE})
    backend = ScriptedBackend([{"rationale": "x", "grade": HUGE}, {"rationale": "ok", "grade": 6}])
    inputs = {"rubric": "r", "task": "t", "answer": "a", "scale_min": 1, "scale_max": 10}
    result = asyncio.run(
        agenerate(template, inputs, model=backend, cache=False, ledger=False, max_attempts=2)
    )
    assert result.output.grade == 6 and backend.calls == 2


def test_examples_are_moved_onto_a_smaller_scale() -> None:
    from promptkit.evals._judge_scorers import bounded_judge_template

    template = bounded_judge_template(template_for("judge_grade"), 1, 5)
    outputs = [example.output for example in template.examples]
    grades = [o["grade"] if isinstance(o, dict) else o.grade for o in outputs]
    assert grades == [2, 5]  # 3 and 10 on 1-10
    assert all(example.inputs["scale_max"] == 5 for example in template.examples)
    assert bounded_judge_template(template_for("judge_grade"), 1, 5) is template  # built once
