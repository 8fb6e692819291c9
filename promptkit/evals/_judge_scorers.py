"""Model-graded scoring: ``judge`` (a grade on a scale, through ``generate``) and the pairwise judge that
compares two answers in both orders."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from promptkit.errors import EvalError
from promptkit.evals._dataset import Item
from promptkit.evals._eval_log import Score
from promptkit.evals._scorer_base import (
    BuiltinScorer,
    Generation,
    ScorerOptions,
    as_text,
    field_of,
    pick,
    verdict,
)

__all__ = ["Judge", "bounded_judge_template", "PairwiseJudge", "PairwiseVerdict"]

_bounded_judges: dict[tuple[str, int, int], Any] = {}
_bounded_lock = threading.Lock()


def bounded_judge_template(template: Any, lo: int, hi: int) -> Any:
    """``template`` (a judge Template) answering with ``grade`` bounded to ``[lo, hi]`` in its output schema.

    The bounds in the schema are what a grammar-constrained local model cannot leave and what validation
    re-asks a remote one about. Examples graded on another scale are moved onto this one (linearly, from
    the scale their own inputs give). A template whose output has no integer ``grade`` is returned as is.
    """
    from promptkit.errors import ExampleError
    from promptkit.prompts._schema import schema_to_model

    schema = template.output_schema
    if schema is None and template.output_model is not None:
        schema = template.output_model.model_json_schema()
    grade = (schema or {}).get("properties", {}).get("grade")
    if not isinstance(grade, dict) or grade.get("type") != "integer":
        return template
    key = (template.hash, lo, hi)
    with _bounded_lock:
        found = _bounded_judges.get(key)
    if found is not None:
        return found
    bounded = json.loads(json.dumps(schema))
    bounded["properties"]["grade"].update(minimum=lo, maximum=hi)
    model = schema_to_model(bounded, f"{template.name}_grade_{lo}_{hi}".replace("-", "m"))
    try:
        found = template.with_output(model)
    except ExampleError:
        found = _rescaled(template, lo, hi).with_output(model)
    with _bounded_lock:
        return _bounded_judges.setdefault(key, found)


def _rescaled(template: Any, lo: int, hi: int) -> Any:
    """The template re-read from its file with every example's grade moved onto ``[lo, hi]``."""
    from promptkit.prompts import Template, load_yaml

    source = template.source
    where = f"template {template.name!r}"
    if not source or not Path(source).is_file():
        raise EvalError(f"its examples are graded outside the scale [{lo}, {hi}]", location=where)
    data, _ = load_yaml(Path(source).read_text(encoding="utf-8"), source, EvalError)
    for example in data.get("examples") or []:
        inputs, output = example.get("inputs") or {}, example.get("output") or {}
        own_lo, own_hi = inputs.get("scale_min", 1), inputs.get("scale_max", 10)
        if not isinstance(output.get("grade"), int) or own_hi <= own_lo:
            raise EvalError(f"cannot move its examples onto the scale [{lo}, {hi}]", location=where)
        output["grade"] = round(lo + (output["grade"] - own_lo) * (hi - lo) / (own_hi - own_lo))
        inputs.update(scale_min=lo, scale_max=hi)
    return Template.from_dict(data, source)


class Judge(BuiltinScorer):
    """LLM-as-judge: a grade on ``scale`` for the rubric, with a rationale, through ``generate``.

    The judge template's output schema carries the scale (``bounded_judge_template``), so a grade off the
    scale is never accepted: a local model's grammar cannot write one, a remote model is asked again.
    """

    kind = "graded"

    class Options(ScorerOptions):
        rubric: str = Field(min_length=1)
        model: str
        scale: tuple[int, int] = (1, 10)
        threshold: float | None = None
        template: str = "judge_grade"
        field: str | None = None
        reference: bool = True  # show the expected answer to the judge when the item has one
        max_attempts: int = Field(default=2, ge=1)

        @model_validator(mode="after")
        def _scale(self) -> Judge.Options:
            lo, hi = self.scale
            if lo >= hi:
                raise ValueError(f"scale must be [low, high] with low < high, got {list(self.scale)}")
            return self

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        from promptkit.generation import agenerate

        opts = self.options
        lo, hi = opts.scale
        answer = pick(parsed, output.text, opts.field) if opts.field else output.text
        reference = item.expected if opts.reference else None

        def in_scale(out: Any) -> bool | str:
            grade = out["grade"] if isinstance(out, Mapping) else getattr(out, "grade", None)
            return (
                True
                if isinstance(grade, int) and lo <= grade <= hi
                else f"grade must be an integer from {lo} to {hi}"
            )

        from promptkit.generation._defaults import template_for

        result = await agenerate(
            bounded_judge_template(template_for(opts.template), lo, hi),
            {
                "rubric": opts.rubric,
                "task": as_text(item.inputs),
                "answer": as_text(answer),
                "reference": None if reference is None else as_text(reference),
                "scale_min": lo,
                "scale_max": hi,
            },
            model=self.env.model(opts.model),
            accept=in_scale,
            cache=self.env.cache,
            ledger=self.env.ledger,
            run_id=self.env.run_id,
            max_attempts=opts.max_attempts,
            temperature=0.0,
        )
        grade = float(field_of(result.output, "grade"))
        return self.score(
            grade,
            verdict(grade, opts.threshold),
            str(field_of(result.output, "rationale")),
            judge=result.model,
            judge_cost_usd=result.cost_usd,
        )


class PairwiseVerdict(BaseModel):
    """Both orders of one pairwise comparison: ``winner`` is ``a``/``b`` only when the two orders agree."""

    winner: Literal["a", "b", "tie"]
    agree: bool
    order_ab: Literal["a", "b", "tie"]  # the verdict with A shown first
    order_ba: Literal["a", "b", "tie"]  # the verdict with B shown first
    rationale_ab: str = ""
    rationale_ba: str = ""
    cost_usd: float = 0.0
    judge: str = ""  # the model that answered; "x / y" when a router sent the two orders to different ones


class PairwiseJudge:
    """Compare two answers to one task, asking twice with the order swapped to cancel position bias.

    The verdict is the agreed winner; when the orders disagree (a position-biased judge) it is a tie.
    ``agreement_rate(verdicts)`` reports how often the two orders agreed.
    """

    def __init__(
        self,
        model: Any,
        rubric: str,
        *,
        template: str = "judge_pairwise",
        cache: Any = True,
        ledger: Any = True,
        run_id: str | None = None,
        max_attempts: int = 2,
    ) -> None:
        self.model = model
        self.rubric = rubric
        self.template = template
        self.cache = cache
        self.ledger = ledger
        self.run_id = run_id
        self.max_attempts = max_attempts

    async def _ask(
        self, task: str, first: str, second: str, reference: str | None, limit: asyncio.Semaphore | None
    ) -> tuple[str, str, float, str]:
        from promptkit.generation import agenerate

        async with limit or contextlib.nullcontext():
            result = await agenerate(
                self.template,
                {
                    "rubric": self.rubric,
                    "task": task,
                    "first": first,
                    "second": second,
                    "reference": reference,
                },
                model=self.model,
                cache=self.cache,
                ledger=self.ledger,
                run_id=self.run_id,
                max_attempts=self.max_attempts,
                temperature=0.0,
            )
        return (
            str(field_of(result.output, "winner")),
            str(field_of(result.output, "rationale")),
            result.cost_usd,
            result.model,
        )

    async def compare(
        self,
        inputs: Any,
        answer_a: str,
        answer_b: str,
        *,
        reference: Any = None,
        limit: asyncio.Semaphore | None = None,
    ) -> PairwiseVerdict:
        """Ask with A first and with B first (concurrently); ``limit`` bounds the calls in flight."""
        task = as_text(inputs)
        ref = None if reference is None else as_text(reference)
        (w1, r1, c1, m1), (w2, r2, c2, m2) = await asyncio.gather(
            self._ask(task, answer_a, answer_b, ref, limit), self._ask(task, answer_b, answer_a, ref, limit)
        )
        ab = {"first": "a", "second": "b", "tie": "tie"}[w1]
        ba = {"first": "b", "second": "a", "tie": "tie"}[w2]
        agree = ab == ba
        return PairwiseVerdict(
            winner=ab if agree else "tie",  # type: ignore[arg-type]
            agree=agree,
            order_ab=ab,  # type: ignore[arg-type]
            order_ba=ba,  # type: ignore[arg-type]
            rationale_ab=r1,
            rationale_ba=r2,
            cost_usd=c1 + c2,
            judge=m1 if m1 == m2 else f"{m1} / {m2}",
        )

    @staticmethod
    def agreement_rate(verdicts: list[PairwiseVerdict]) -> float:
        if not verdicts:
            raise EvalError("no pairwise verdicts to summarise", location="PairwiseJudge.agreement_rate")
        return sum(v.agree for v in verdicts) / len(verdicts)
