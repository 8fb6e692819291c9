"""Spans of an executor run (see :mod:`promptkit.tracing`).

The tree of one run::

    promptkit.scaffold {spec}
    └── promptkit.step {step id}
        ├── promptkit.generate {template}      (one per model attempt; its re-asks carry feedback turns)
        └── promptkit.verify                   (apply the edits and run the verifiers)
            └── promptkit.verifier {name}      (one per verifier: ok, duration, counts)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import promptkit.tracing as tracing

__all__ = ["report_attributes", "run_attributes", "step_attributes", "trace_verifiers"]


def run_attributes(executor: Any) -> dict[str, Any]:
    return {
        "promptkit.operation": "scaffold",
        "promptkit.scaffold.spec": executor.spec_name,
        "promptkit.scaffold.run_id": executor.run_id,
        "promptkit.scaffold.planner": executor.plan.planner,
        "promptkit.scaffold.steps": len(executor.plan.steps),
        "promptkit.scaffold.concurrency": executor.concurrency,
    }


def report_attributes(report: Any) -> dict[str, Any]:
    totals = report.totals
    return {
        "promptkit.scaffold.ok": report.ok,
        "promptkit.scaffold.model_calls": totals.model_calls,
        "promptkit.escalations": totals.escalations,
        "promptkit.cost_usd": totals.cost_usd,
        "gen_ai.usage.input_tokens": totals.input_tokens,
        "gen_ai.usage.output_tokens": totals.output_tokens,
    }


def step_attributes(step: Any, state: Any) -> dict[str, Any]:
    return {
        "promptkit.step.id": step.id,
        "promptkit.step.kind": step.kind,
        "promptkit.step.status": state.status,
        "promptkit.step.attempts": state.attempts,
        "promptkit.step.run": state.runs,
        "promptkit.tier": state.tier,
        "promptkit.tier_name": state.tier_name,
        "promptkit.model": state.model,
        "promptkit.escalations": state.escalations,
        "promptkit.cache_hits": state.cache_hits or None,
        "promptkit.cost_usd": state.cost_usd,
        "promptkit.verifier_s": state.verifier_s,
        "gen_ai.usage.input_tokens": state.input_tokens,
        "gen_ai.usage.output_tokens": state.output_tokens,
    }


def trace_verifiers(span: tracing.Span, results: Sequence[Any]) -> None:
    """The verdict on ``span`` and a finished child span per verifier (they ran just now, for ``duration_s``)."""
    span.set({"promptkit.verify.ok": all(r.ok for r in results), "promptkit.verify.count": len(results)})
    if not all(r.ok for r in results):
        span.fail("verifier_failed")
    for result in results:
        attributes: dict[str, Any] = {
            "promptkit.verifier.name": result.name,
            "promptkit.verifier.ok": result.ok,
            "promptkit.verifier.duration_s": result.duration_s,
        }
        for key, value in dict(result.counts).items():
            if isinstance(value, (int, float)):
                attributes[f"promptkit.verifier.{key}"] = value
        if tracing.record_content():
            attributes["promptkit.verifier.summary"] = result.summary
        tracing.record_span(
            f"promptkit.verifier {result.name}",
            attributes,
            duration_s=result.duration_s,
            error=None if result.ok else "verifier_failed",
        )
