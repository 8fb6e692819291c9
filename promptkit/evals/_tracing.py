"""Spans of an eval run (see :mod:`promptkit.tracing`): ``promptkit.eval {suite}`` → ``promptkit.eval.item`` →
the item's ``promptkit.generate`` (and a judge's), with each scorer's verdict as a ``gen_ai.evaluation.result``
event on the item span."""

from __future__ import annotations

from typing import Any

import promptkit.tracing as tracing
from promptkit.ledger import scrub_secrets

__all__ = ["run_attributes", "trace_item"]


def run_attributes(suite: Any, run_id: str, total: int, done: int) -> dict[str, Any]:
    spec = suite.spec
    return {
        "promptkit.operation": "eval",
        "promptkit.eval.suite": suite.name,
        "promptkit.eval.run_id": run_id,
        "promptkit.eval.units": total,
        "promptkit.eval.resumed_units": done or None,
        "promptkit.eval.variants": [v.name for v in spec.variants],
        "promptkit.eval.models": suite.model_names(),
        "promptkit.eval.repeats": spec.repeats,
        "promptkit.eval.concurrency": spec.concurrency,
        "promptkit.eval.seed": spec.seed,
    }


def trace_item(span: tracing.Span, result: Any) -> None:
    """The item's identity, verdict and spend on its span, and one evaluation event per scorer."""
    span.set(
        {
            "promptkit.eval.item_id": result.item_id,
            "promptkit.eval.variant": result.variant,
            "promptkit.eval.model": result.model,
            "promptkit.eval.repeat": result.repeat,
            "promptkit.eval.passed": result.passed,
            "promptkit.cached": result.cached,
            "promptkit.attempts": len(result.attempts) or None,
            "promptkit.cost_usd": result.cost_usd,
            "promptkit.latency_s": result.latency_s,
            "gen_ai.usage.input_tokens": result.input_tokens,
            "gen_ai.usage.output_tokens": result.output_tokens,
        }
    )
    content = tracing.record_content()
    if result.error:
        head = result.error.partition(":")[0]
        span.fail(head if head.isidentifier() else "error", result.error if content else None)
    for score in result.scores:
        label = None if score.passed is None else ("pass" if score.passed else "fail")
        span.event(
            "gen_ai.evaluation.result",
            {
                "gen_ai.evaluation.name": score.scorer,
                "gen_ai.evaluation.score.value": score.value,
                "gen_ai.evaluation.score.label": label,
                "gen_ai.evaluation.explanation": (
                    scrub_secrets(score.rationale)[:2000] if content and score.rationale else None
                ),
            },
        )
