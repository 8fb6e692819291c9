"""The executor: run a Plan step by step, verify every step in the sandbox, checkpoint every transition.

The executor owns the schedule (dependencies, concurrency, steps that share no file), the step lifecycle and
its checkpoints (``RunState``: resumable after a kill), and the report. The rest lives beside it:

- ``_schedule``: which steps may run now;
- ``_apply``: workspace safety (edits only inside a step's allow-list, verified, rolled back on failure);
- ``_model_step``: model steps through the cascade of ``promptkit.generation`` (check: apply + verify);
- ``_step_prompt``: what a model step's prompt holds.

Applying and verifying are serialized (one step at a time) and a failed attempt's files are rolled back, so
every verifier sees the finished steps plus the step under test, never another step's half-done work.
Model calls of independent steps (disjoint allow-lists) run concurrently.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import promptkit.tracing as tracing
from promptkit.backends import Backend, run_sync
from promptkit.errors import PromptkitError, RoutingError, WorkspaceError
from promptkit.execution._apply import Declined, apply_and_verify
from promptkit.execution._edits import FileEdit
from promptkit.execution._model_step import run_model_step
from promptkit.execution._report import NO_MODEL_HINT, RunReport, RunTotals, StepReport
from promptkit.execution._run_context import ConfirmFn, StepRun
from promptkit.execution._runstate import RunState, StepState, state_dir_for
from promptkit.execution._schedule import blocked_reason, startable
from promptkit.execution._tracing import report_attributes, run_attributes, step_attributes
from promptkit.execution._verifiers import verifier_from_spec
from promptkit.execution._workspace import Workspace
from promptkit.planning import Plan, Step
from promptkit.routing import Router, new_run_id

if TYPE_CHECKING:
    from promptkit.cache import ExactCache
    from promptkit.ledger import Ledger

__all__ = [
    "Executor",
    "ConfirmFn",
    "StepCallback",
    "execute_plan",
    "aexecute_plan",
    "resume_run",
    "aresume_run",
    "load_run_plan",
]

StepCallback = Callable[[Step, StepState], None]


class Executor:
    """Runs one plan in one workspace. Use :func:`execute_plan` / :func:`resume_run` unless you need the parts."""

    def __init__(
        self,
        plan: Plan,
        workspace: str | Path,
        *,
        model: str | Backend | None = None,
        router: Router | None = None,
        confirm: ConfirmFn | None = None,
        concurrency: int = 4,
        cache: ExactCache | bool | None = True,
        ledger: Ledger | bool | None = True,
        budget_tokens: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        on_step: StepCallback | None = None,
        spec_name: str | None = None,
        tidy: bool = True,
        repair: str = "conversation",
        repair_temperature: float | None = 0.6,
    ) -> None:
        if model is not None and router is not None:
            raise RoutingError(
                "give the executor model= or router=, not both", location=f"plan {plan.spec.name!r}"
            )
        if concurrency < 1:
            raise WorkspaceError(f"concurrency must be >= 1, got {concurrency}", location="executor")
        self.plan = plan
        self.workspace = Workspace(workspace)
        self.model = model
        self.router = router if router is not None else self._router_for(model)
        self.confirm = confirm
        # A person answering prompts sees one step at a time.
        self.concurrency = 1 if confirm is not None else concurrency
        self.cache = cache
        self.ledger = self._ledger(ledger)
        self.budget_tokens = budget_tokens
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.on_step = on_step
        # Model-written Python gets missing imports and ruff's safe fixes before it is verified (tidy_python).
        self.tidy = tidy
        if repair not in ("conversation", "template"):
            raise WorkspaceError(
                f"repair must be 'conversation' or 'template', got {repair!r}", location="executor"
            )
        # "conversation": a repair re-asks the step's own prompt with the failed answers and their errors as
        # turns (cheap on a local model: the prompt's state is cached); "template": a fresh fix_step prompt.
        self.repair = repair
        self.repair_temperature = repair_temperature
        self.spec_name = spec_name or plan.spec.name
        self.state = RunState.for_workspace(self.workspace.root)
        self.run_id = ""
        self.step_runs: dict[str, StepRun] = {}
        # Applying and verifying hold it: a verifier sees finished steps plus the step under test (_apply).
        self.verify_lock = asyncio.Lock()
        self._model_slots = asyncio.Semaphore(1 if self._all_local() else self.concurrency)
        self._log_path: Path | None = None
        self.timings: dict[str, float] = {"apply_s": 0.0, "verifiers_s": 0.0, "model_s": 0.0}
        # Verifier specs are checked before anything runs: a typo fails the run, not step 7.
        for step in plan.steps:
            for index, spec in enumerate(step.verifiers):
                verifier_from_spec(spec, location=f"step {step.id!r}: verifiers[{index}]")

    # -- setup ------------------------------------------------------------------------------------------

    @staticmethod
    def _router_for(model: str | Backend | None) -> Router | None:
        if model is None:
            return None
        config = None
        if isinstance(model, str):
            from promptkit.config import load_config

            config = load_config()
        return Router.for_model(model, max_attempts=1, config=config)

    def _all_local(self) -> bool:
        """Whether every deployment the router can call is a local model (False when unknown)."""
        tiers = getattr(self.router, "tiers", None)
        if not tiers:
            return False
        try:
            return all(d.is_local for tier in tiers for d in tier.deployments)
        except PromptkitError:  # a model that cannot be resolved yet: decided by the call itself
            return False

    @staticmethod
    def _ledger(ledger: Ledger | bool | None) -> Ledger | None:
        if ledger is None or ledger is False:
            return None
        from promptkit.generation import resolve_ledger

        return resolve_ledger(ledger)

    @property
    def has_model(self) -> bool:
        return self.router is not None

    @property
    def run_dir(self) -> Path:
        return state_dir_for(self.workspace.root) / "runs" / self.run_id

    def log(self, event: str, step_id: str | None = None, **data: Any) -> None:
        """Record an event of the run (run state and the run folder's log.jsonl)."""
        self.state.log(self.run_id, event, step_id, **data)
        if self._log_path is not None:
            line = json.dumps({"ts": time.time(), "event": event, "step": step_id, **data}, default=str)
            with open(self._log_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def start(self, *, name: str | None = None) -> str:
        """Start a new run (recorded in the run state and the ledger); returns its id."""
        meta = {"workspace": str(self.workspace.root), "planner": self.plan.planner}
        if self.ledger is not None:
            self.run_id = self.ledger.new_run(name or f"scaffold {self.spec_name}", meta)
        else:
            self.run_id = new_run_id()
        options = {"model": self.model if isinstance(self.model, str) else None, "spec": self.spec_name}
        self.state.create_run(
            self.run_id, self.workspace.root, self.plan.to_json(), [s.id for s in self.plan.steps], options
        )
        self._open_log()
        self.log("run_started", planner=self.plan.planner, steps=len(self.plan.steps), model=self.has_model)
        return self.run_id

    def attach(self, run_id: str) -> str:
        """Continue run ``run_id`` of this workspace: undo interrupted steps, check finished ones' files."""
        self.run_id = self.state.resolve(run_id)
        self._open_log()
        states = self.state.steps(self.run_id)
        for state in states.values():
            if state.status == "passed":
                continue
            restored = self.state.restore_originals(self.run_id, state.step_id, self.workspace)
            if state.status == "running":
                self.log("step_interrupted", state.step_id, restored=restored)
            state.status = "pending"
            state.reason = None
            self.state.save_step(self.run_id, state)
        changed = [
            path
            for path, digest in self.state.expected_hashes(self.run_id).items()
            if self.workspace.hash(path) != digest
        ]
        if changed:
            raise WorkspaceError(
                f"files of finished steps changed since they passed: {', '.join(sorted(changed))}; restore them "
                "or start a new run",
                location=f"run {self.run_id}",
            )
        self.state.set_run_status(self.run_id, "running")
        self.log("run_resumed")
        return self.run_id

    def _open_log(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = self.run_dir / "log.jsonl"

    # -- the schedule -----------------------------------------------------------------------------------

    async def run(self) -> RunReport:
        """Run every step that is not finished; returns the report (also written to report.json)."""
        if not self.run_id:
            self.start()
        with tracing.span(f"promptkit.scaffold {self.spec_name}", run_attributes(self)) as span:
            report = await self._run()
            if span:
                span.set(report_attributes(report))
                if not report.ok:
                    span.fail("run_failed")
        return report

    async def _run(self) -> RunReport:
        started = time.perf_counter()
        states = self.state.steps(self.run_id)
        running: dict[asyncio.Task[None], Step] = {}
        try:
            while True:
                self._skip_blocked(states)
                active = list(running.values())
                for step in startable(self.plan, states, active, self.concurrency - len(running)):
                    states[step.id].status = "running"  # the task saves it; the object is shared
                    task = asyncio.create_task(self._run_step(step, states[step.id]), name=step.id)
                    running[task] = step
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    running.pop(task)
                    task.result()  # a bug in the executor itself propagates
        except BaseException:
            for task in running:
                task.cancel()
            raise
        report = self.report(duration_s=time.perf_counter() - started)
        self.state.set_run_status(self.run_id, "failed" if not report.ok else "done")
        self.log("run_finished", ok=report.ok, summary=report.summary())
        report.write(self.run_dir / "report.json")
        return report

    def _skip_blocked(self, states: dict[str, StepState]) -> None:
        for step in self.plan.topological_order():
            state = states[step.id]
            if state.status != "pending":
                continue
            reason = blocked_reason(step, states)
            if reason is None:
                continue
            state.status = "skipped"
            state.reason = reason
            self.state.save_step(self.run_id, state)
            self.log("step_skipped", step.id, reason=state.reason)
            self.notify(step, state)

    def notify(self, step: Step, state: StepState) -> None:
        if self.on_step is not None:
            self.on_step(step, state)

    # -- one step ---------------------------------------------------------------------------------------

    async def _run_step(self, step: Step, state: StepState) -> None:
        with tracing.span(f"promptkit.step {step.id}") as span:
            await self._step(step, state)
            if span:
                span.set(step_attributes(step, state))
                if state.status == "failed":
                    span.fail("step_failed")

    async def _step(self, step: Step, state: StepState) -> None:
        state.status = "running"
        state.started_at = time.time()
        state.runs += 1
        state.attempts = 0
        state.errors = []
        state.verifiers = []
        state.reason = None
        self.state.save_step(self.run_id, state)
        self.log("step_started", step.id, kind=step.kind, run=state.runs)
        self.notify(step, state)
        run = StepRun(step, state)
        self.step_runs[step.id] = run
        clock = time.perf_counter()
        try:
            if self.confirm is not None and not self.confirm(step, None):
                raise Declined
            if not step.uses_model:
                await self._render_step(run)
            elif not self.has_model:
                state.status = "skipped"
                state.reason = f"model step: {NO_MODEL_HINT}"
            else:
                # Local models compute one call at a time: a step waiting for one would only spend its
                # per-attempt time limit in the queue.
                async with self._model_slots:
                    await run_model_step(self, run)
        except Declined:
            state.status = "skipped"
            state.reason = "declined at --confirm"
        except PromptkitError as exc:
            state.status = "failed"
            state.errors.append(str(exc))
        state.finished_at = time.time()
        state.duration_s = round(time.perf_counter() - clock, 4)
        if state.status == "failed":
            # Nothing of a failed step stays in the workspace; keep its last files for inspection instead.
            async with self.verify_lock:
                self.state.restore_originals(self.run_id, step.id, self.workspace)
            self._keep_failed_files(run)
            state.files = {}
        self.state.save_step(self.run_id, state, clear_originals=True)
        self.log(
            f"step_{state.status}",
            step.id,
            attempts=state.attempts,
            model=state.model,
            tier=state.tier,
            reason=state.reason,
            errors=state.errors[-1:],
        )
        self.notify(step, state)

    def keep_answer(self, step_id: str, attempt: int, tier: str, text: str) -> None:
        """Each model answer as it came, in the run folder: what a model got wrong is worth reading."""
        target = self.run_dir / "answers" / step_id / f"{attempt:02d}-{tier}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def _keep_failed_files(self, run: StepRun) -> None:
        for path, content in run.last_files.items():
            if content is None:
                continue
            target = self.run_dir / "failed" / run.step.id / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")

    async def _render_step(self, run: StepRun) -> None:
        step, state = run.step, run.state
        edits = [FileEdit(path=path, content=content) for path, content in step.render_files.items()]
        state.attempts = 1
        error = await apply_and_verify(self, run, edits, attempt=1)
        if error is None:
            state.status = "passed"
        else:
            state.status = "failed"
            state.errors.append(error)

    # -- the report -------------------------------------------------------------------------------------

    def report(self, *, duration_s: float = 0.0) -> RunReport:
        states = self.state.steps(self.run_id)
        steps = []
        totals = RunTotals()
        for step in self.plan.steps:
            s = states[step.id]
            steps.append(
                StepReport(
                    id=step.id,
                    title=step.title,
                    kind=step.kind,
                    status=s.status,
                    attempts=s.attempts,
                    tier=s.tier,
                    tier_name=s.tier_name,
                    model=s.model,
                    escalations=s.escalations,
                    reason=s.reason,
                    errors=s.errors,
                    verifiers=s.verifiers,
                    files=s.files,
                    input_tokens=s.input_tokens,
                    output_tokens=s.output_tokens,
                    cost_usd=s.cost_usd,
                    cache_hits=s.cache_hits,
                    duration_s=s.duration_s,
                    verifier_s=s.verifier_s,
                    runs=s.runs,
                )
            )
            totals.input_tokens += s.input_tokens
            totals.output_tokens += s.output_tokens
            totals.cost_usd += s.cost_usd
            totals.escalations += s.escalations
            totals.cache_hits += s.cache_hits
            totals.model_calls += s.attempts if step.uses_model else 0
        no_model = not self.has_model and any(s.uses_model for s in self.plan.steps)
        ledger_totals = self.ledger.totals(self.run_id).model_dump() if self.ledger is not None else None
        return RunReport(
            run_id=self.run_id,
            workspace=str(self.workspace.root),
            spec=self.spec_name,
            planner=self.plan.planner,
            steps=steps,
            totals=totals,
            ledger=ledger_totals,
            no_model=no_model,
            hint=NO_MODEL_HINT if no_model else None,
            duration_s=round(duration_s, 4),
        )

    def close(self) -> None:
        self.state.close()


async def aexecute_plan(
    plan: Plan,
    workspace: str | Path,
    *,
    model: str | Backend | None = None,
    router: Router | None = None,
    confirm: ConfirmFn | None = None,
    concurrency: int = 4,
    cache: ExactCache | bool | None = True,
    ledger: Ledger | bool | None = True,
    budget_tokens: int | None = None,
    on_step: StepCallback | None = None,
    on_start: Callable[[str], None] | None = None,
    **kw: Any,
) -> RunReport:
    """Run ``plan`` in ``workspace`` from the start and return the report.

    With neither ``model`` nor ``router``, render steps run and are verified, and model steps are skipped
    with the configuration hint. ``confirm(step, diff)`` (diff None before the step) returning False skips
    the step. ``on_start(run_id)`` is called once the run is recorded (resume with that id).
    """
    executor = Executor(
        plan,
        workspace,
        model=model,
        router=router,
        confirm=confirm,
        concurrency=concurrency,
        cache=cache,
        ledger=ledger,
        budget_tokens=budget_tokens,
        on_step=on_step,
        **kw,
    )
    try:
        run_id = executor.start()
        if on_start is not None:
            on_start(run_id)
        return await executor.run()
    finally:
        executor.close()


def execute_plan(plan: Plan, workspace: str | Path, **kw: Any) -> RunReport:
    """The synchronous form of :func:`aexecute_plan`."""
    return cast(RunReport, run_sync(aexecute_plan(plan, workspace, **kw)))


def load_run_plan(workspace: str | Path, run_id: str) -> tuple[str, Plan]:
    """The full run id and the plan a run of ``workspace`` was started with."""
    with RunState.for_workspace(workspace) as state:
        full = state.resolve(run_id)
        return full, Plan.from_json(state.run(full).plan_json, source=f"run {full}")


async def aresume_run(
    run_id: str,
    workspace: str | Path,
    *,
    on_start: Callable[[str], None] | None = None,
    **kw: Any,
) -> RunReport:
    """Continue run ``run_id`` (or ``latest``) of ``workspace``: passed steps are kept (their files checked
    against the recorded hashes), interrupted ones are undone and redone, the rest run. Same options as
    :func:`aexecute_plan`."""
    full, plan = load_run_plan(workspace, run_id)
    executor = Executor(plan, workspace, **kw)
    try:
        executor.attach(full)
        if on_start is not None:
            on_start(full)
        return await executor.run()
    finally:
        executor.close()


def resume_run(run_id: str, workspace: str | Path, **kw: Any) -> RunReport:
    """The synchronous form of :func:`aresume_run`."""
    return cast(RunReport, run_sync(aresume_run(run_id, workspace, **kw)))
