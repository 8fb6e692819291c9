"""Model steps: the step's prompt on each tier of the cascade, checked by applying the answer's edits and
running the step's verifiers.

The cascade is :func:`promptkit.generation.run_cascade`, the one ``generate()`` runs too. Here an attempt is
one ``generate()`` call on one tier: the step's prompt, continued after a failure with the failed answer and
its errors (or, with ``repair="template"``, a fresh ``fix_step`` prompt); the check parses the answer into
file edits, applies them inside the step's allow-list and runs the verifiers. It runs as that generate() call's
acceptance check, so the ledger records each answer as the verifiers judged it. A schema error, a refused
path, a diff that does not apply and a failing verifier are all the same to the cascade: an error fed back
to the next attempt. When a tier's attempts are spent (its own ``max_attempts``, else the step's), the next
tier starts afresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptkit.errors import (
    AttemptsExhausted,
    ContextBudgetError,
    OutputValidationError,
    RoutingError,
    TransportError,
    WorkspaceError,
)
from promptkit.execution._apply import apply_and_verify, verifier_text, verify
from promptkit.execution._edits import parse_edits
from promptkit.execution._run_context import RunContext, StepRun
from promptkit.execution._step_prompt import step_inputs
from promptkit.execution._verifiers import pytest_frames
from promptkit.generation import (
    Failed,
    Feedback,
    GenerateResult,
    TierEnded,
    Try,
    agenerate,
    route_features,
    run_cascade,
    template_for,
)
from promptkit.planning import Step
from promptkit.routing import Route, Router

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from promptkit.execution._runstate import StepState
    from promptkit.routing._attempts import Reason

__all__ = ["REPAIR_TEMPLATE", "run_model_step", "step_routes"]

REPAIR_TEMPLATE = "fix_step"


@dataclass
class _Outcome:
    """One attempt's answer, or why there was none (a schema failure is fed back like a verifier's)."""

    result: GenerateResult | None = None
    error: str | None = None
    raw: str = ""
    usage: Any = None

    @property
    def text(self) -> str:
        return self.result.text if self.result is not None else self.raw


def step_routes(router: Router, step: Step, template: Any) -> list[Route]:
    """The tiers a step may use, in order: the router's choice for the step's features, started at the plan's
    tier hint (``strongest``: the last tier only)."""
    # Routes are chosen before the prompt is rendered: the step's own words stand in for its text.
    text = "\n".join([step.title, step.description or "", *step.acceptance])
    # Routing rules can match `tag = "difficulty:hard"`.
    extra = [f"difficulty:{step.route.difficulty}"] if step.route.difficulty else []
    routes = router.route(route_features(template, kind=step.kind, text=text, extra_tags=extra))
    if step.route.tier == "strongest":
        return routes[-1:]
    if step.route.tier is not None:
        # The plan's tier hint is where the cascade starts; escalation still goes up from there.
        hinted = [r for r in routes if r.index is not None and r.index >= step.route.tier]
        return hinted or routes[-1:]
    return routes


class _Verification:
    """Times one attempt's acceptance check (verifier time is not model time) and keeps its rejection."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.error: str | None = None

    async def __call__(self, check: Awaitable[None]) -> None:
        started = time.perf_counter()
        try:
            await check
        except OutputValidationError as exc:
            self.error = exc.message
            raise
        finally:
            self.seconds += time.perf_counter() - started


def _account(state: StepState, attempts: Sequence[Any]) -> None:
    for item in attempts:
        usage = getattr(item, "usage", None)
        if usage is not None:
            state.input_tokens += usage.input_tokens
            state.output_tokens += usage.output_tokens
        state.cost_usd += float(getattr(item, "cost_usd", 0.0) or 0.0)
        if getattr(item, "outcome", None) == "cache_hit":
            state.cache_hits += 1


class _ModelStep:
    """The cascade's steps for one model step (see the module docstring)."""

    # A tier that cannot serve (transport faults, a prompt too long for it even trimmed) hands over.
    ends: tuple[type[Exception], ...] = (TransportError, RoutingError, ContextBudgetError)

    def __init__(self, ex: RunContext, run: StepRun, template: Any, initial_errors: str | None) -> None:
        self.ex = ex
        self.run = run
        self.template = template
        self.initial_errors = initial_errors
        self.location = f"step {run.step.id!r}"
        self.first_inputs: dict[str, Any] = {}  # this tier's first prompt, which its repairs continue

    def attempts(self, route: Route) -> int:
        # A tier's own attempts win (`attempts = 1` on a cheap tier: no repairs there); else the plan's.
        return route.tier.max_attempts or self.run.step.max_attempts

    async def enter(self, route: Route, reason: Reason | None) -> None:
        step, state = self.run.step, self.run.state
        if reason is not None:  # not the first tier
            state.escalations += 1
            self.ex.log("step_escalated", step.id, to_tier=route.tier.name)
        self.run.last_files = {}
        self.first_inputs = {}
        return None

    def _prompt(self, feedback: Sequence[Feedback]) -> tuple[Any, dict[str, Any], Sequence[Feedback]]:
        """The template, inputs and repair turns of the next attempt."""
        if feedback and self.ex.repair == "template":
            template = template_for(REPAIR_TEMPLATE)
            inputs = step_inputs(
                self.ex, self.run, template, errors=feedback[-1].error, attempt=len(feedback)
            )
            return template, inputs, ()
        # A repair continues the conversation: the same prompt, then each failed answer and its errors. A
        # local model reuses the prompt's cached state instead of reading it again.
        if not self.first_inputs:
            self.first_inputs.update(
                step_inputs(self.ex, self.run, self.template, errors=self.initial_errors, attempt=1)
            )
        answers = [f.raw_output.strip() for f in feedback]
        if len(answers) != len(set(answers)):
            # The model copied its failed answer: shown it again, a small model copies it again. Ask afresh
            # instead (sampled, below): an independent try, told what failed where the template takes it.
            fresh = dict(self.first_inputs)
            if "earlier_errors" in (getattr(self.template, "inputs", {}) or {}):
                fresh["earlier_errors"] = feedback[-1].error
            return self.template, fresh, ()
        return self.template, self.first_inputs, feedback

    async def call(self, attempt: Try) -> _Outcome:
        ex, step, state = self.ex, self.run.step, self.run.state
        tier_name = attempt.route.tier.name
        state.attempts += 1
        state.tier_name = tier_name
        ex.state.save_step(ex.run_id, state)
        ex.notify(step, state)
        feedback = attempt.feedback
        template, inputs, turns = self._prompt(feedback)
        ex.log("attempt", step.id, attempt=state.attempts, template=template.name, tier=tier_name)
        checked = _Verification()
        clock = time.perf_counter()
        try:
            # Each attempt is its own generate() call on this tier (its own ledger call), fitted to the
            # tier's context window; budget_tokens is the user's own cap.
            result = await agenerate(
                template,
                inputs,
                router=ex.router,
                routes=[attempt.route],
                max_attempts=1,
                kind=step.kind,
                run_id=ex.run_id,
                cache=ex.cache,
                ledger=ex.ledger if ex.ledger is not None else False,
                budget_tokens=ex.budget_tokens,
                # A repair at temperature 0 often repeats the failed answer word for word: sample, with a seed
                # per attempt so a rerun gives the same answers.
                temperature=ex.repair_temperature if feedback else ex.temperature,
                max_tokens=ex.max_tokens,
                feedback=turns,
                reason=attempt.reason,
                # The step's check is generate()'s acceptance check, so the ledger records each answer as
                # the verifiers judged it: what a router trained on the ledger learns from.
                accept=lambda output: checked(self._apply_and_verify(output)),
                **({"seed": state.attempts} if feedback else {}),
            )
        except AttemptsExhausted as exc:
            last = exc.attempts[-1] if exc.attempts else None
            _account(state, exc.attempts)
            raw = getattr(last, "raw_output", "") or ""
            ex.keep_answer(step.id, state.attempts, tier_name, raw)
            # The verifiers' own text (the ledger's copy is scrubbed of anything that looks like a secret).
            error = checked.error or getattr(last, "error", None) or exc.message
            return _Outcome(error=error, raw=raw)
        finally:
            ex.timings["model_s"] += time.perf_counter() - clock - checked.seconds
        _account(state, result.attempts)
        ex.keep_answer(step.id, state.attempts, tier_name, result.text)
        return _Outcome(result=result)

    async def _apply_and_verify(self, output: Any) -> None:
        """Apply the answer's edits inside the step's allow-list and run the verifiers; rejects with why."""
        step, state = self.run.step, self.run.state
        try:
            edits = parse_edits(output, allowed=step.files)
        except WorkspaceError as exc:
            raise OutputValidationError(str(exc)) from None
        error = await apply_and_verify(self.ex, self.run, edits, attempt=state.attempts)
        if error is not None:
            raise OutputValidationError(error)

    async def check(self, attempt: Try, outcome: _Outcome) -> GenerateResult:
        # The answer was applied and verified inside generate() (its acceptance check, above).
        if outcome.result is None:
            raise OutputValidationError(outcome.error or "no answer", raw_output=outcome.raw)
        return outcome.result

    def ended(self, end: TierEnded) -> None:
        step_id, tier = self.run.step.id, end.route.tier.name
        if isinstance(end.error, AttemptsExhausted):
            self.ex.log("tier_exhausted", step_id, tier=tier, attempts=len(end.error.attempts))
        elif isinstance(end.error, ContextBudgetError):
            # The prompt fits this tier's context window under no trimming: a larger window may take it.
            self.ex.log("tier_too_small", step_id, tier=tier, error=str(end.error))
        else:
            self.ex.log("tier_unavailable", step_id, tier=tier, error=str(end.error))


async def run_model_step(ex: RunContext, run: StepRun) -> None:
    """Carry out a model step through the cascade; sets the step's status, tier and errors."""
    step, state = run.step, run.state
    assert ex.router is not None and step.template is not None
    template = template_for(step.template)
    initial_errors: str | None = None
    if "errors" in (getattr(template, "inputs", {}) or {}):
        # A repair-shaped step (e.g. fix a failing test) starts from the verifiers' current complaints.
        async with ex.verify_lock:
            results = await verify(ex, run)
        if all(r.ok for r in results):
            state.status = "passed"
            state.reason = "the verifiers already pass; nothing to fix"
            return
        initial_errors = verifier_text(results)

    outcome = await run_cascade(
        _ModelStep(ex, run, template, initial_errors), step_routes(ex.router, step, template)
    )
    if isinstance(outcome, Failed):
        errors = outcome.last.errors if outcome.last is not None else []
        state.status = "failed"
        state.errors.extend(errors[-2:] or ["no tier could carry out the step"])
        state.reason = suspect_tests(ex, step, state.errors[-1]) or state.reason
        return
    state.status = "passed"
    state.tier = outcome.route.index
    state.tier_name = outcome.route.tier.name
    state.model = outcome.value.model


def suspect_tests(ex: RunContext, step: Step, error: str) -> str | None:
    """When every tier failed against tests that a model wrote, the tests may be the wrong party (a model
    can assert a value it worked out wrongly, which no code can meet): say which file, by which tier, and
    the assertion that failed, so the user knows where to look."""
    tests = {
        path
        for spec in step.verifiers
        if isinstance(spec, dict) and isinstance(spec.get("pytest"), dict)
        for path in spec["pytest"].get("tests", [])
    }
    failing = next(((path, line) for path, line in pytest_frames(error) if path in tests), None)
    if failing is None:
        return None
    path, line = failing
    states = ex.state.steps(ex.run_id)  # steps of earlier processes too, when the run was resumed
    writer = next(
        (
            other
            for other in ex.plan.steps
            if other.uses_model
            and path in other.files
            and other.id in states
            and states[other.id].status == "passed"
        ),
        None,
    )
    if writer is None:
        return None
    # The assertion first: the run table shows the first 160 characters of a reason.
    return (
        f"`{line}` failed; {path} was written by a model ({writer.id}, tier "
        f"{states[writer.id].tier_name}): if the code looks right, the test may be wrong"
    )
