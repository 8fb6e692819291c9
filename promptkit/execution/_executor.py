"""The executor: run a Plan step by step, verify every step in the sandbox, repair, escalate, checkpoint.

For a model step, one :func:`promptkit.generation.repair_loop` runs per tier of the router's cascade: an attempt
is one ``agenerate`` call (the step's prompt, continued after a failure with the failed answer and its errors;
or, with ``repair="template"``, a fresh ``fix_step`` prompt), and the
validate step parses the answer into file edits, applies them inside the step's allow-list and runs the
step's verifiers. A schema error, a refused path, a diff that does not apply and a failing verifier are all
the same thing to the loop: an error fed back for the next attempt. When a tier's attempts are spent the next
tier starts afresh.

Applying and verifying are serialized (one step at a time) and a failed attempt's files are rolled back, so
every verifier sees the finished steps plus the step under test, never another step's half-done work.
Model calls of independent steps (disjoint allow-lists) run concurrently.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import promptkit.tracing as tracing
from promptkit.backends import Backend, run_sync
from promptkit.errors import (
    AttemptsExhausted,
    ContextBudgetError,
    OutputValidationError,
    PromptkitError,
    RoutingError,
    TransportError,
    WorkspaceError,
)
from promptkit.execution._edits import FileEdit, parse_edits, render_diff
from promptkit.execution._outline import outline_python, stub_prefix
from promptkit.execution._report import NO_MODEL_HINT, RunReport, RunTotals, StepReport
from promptkit.execution._runstate import RunState, StepState, state_dir_for
from promptkit.execution._tidy import tidy_python
from promptkit.execution._tracing import report_attributes, run_attributes, step_attributes, trace_verifiers
from promptkit.execution._verifiers import VerifierResult, run_verifiers, verifier_from_spec
from promptkit.execution._workspace import Workspace
from promptkit.generation import Feedback, GenerateResult, agenerate, repair_loop
from promptkit.planning import Plan, Step, glob_to_regex, is_glob, path_allowed
from promptkit.routing import Route, RouteFeatures, Router, new_run_id

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

# confirm(step, None) before a step starts; confirm(step, diff) after generation, before applying.
ConfirmFn = Callable[[Step, str | None], bool]
StepCallback = Callable[[Step, StepState], None]

REPAIR_TEMPLATE = "fix_step"
_ERRORS_LIMIT = 3_000  # a repair turn costs prefill time on a local model: the first errors matter most


# Files a step only reads are shown whole up to this size, as an outline above it: on a CPU, every prompt
# token costs prefill time, and a model using a module needs its signatures, not its bodies.
OUTLINE_OVER_CHARS = 1500


class _Declined(Exception):
    """The person at --confirm said no."""


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


@dataclass
class _StepRun:
    """Per-step scratch state of this process."""

    step: Step
    state: StepState
    last_files: dict[str, str | None] = field(default_factory=dict)


class _OneTier:
    """The run's router seen through one tier: ``route()`` yields that tier only, everything else (budget,
    retries, in-flight limits, run ids) is the run's router itself."""

    def __init__(self, router: Router, route: Route) -> None:
        self._router = router
        self._route = route

    def route(self, features: RouteFeatures) -> list[Route]:
        return [self._route]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._router, name)


def _step_files_overlap(a: Step, b: Step) -> bool:
    """Whether two steps could touch the same file: one's allow-list meets the other's files or reads."""

    def meets(patterns: Sequence[str], others: Sequence[str]) -> bool:
        for p in patterns:
            for q in others:
                if not is_glob(p) and not is_glob(q):
                    if p == q:
                        return True
                elif not is_glob(p):
                    if path_allowed(p, [q]):
                        return True
                elif not is_glob(q):
                    if glob_to_regex(p).match(q):
                        return True
                else:
                    # Two globs: conservative, they overlap unless their literal prefixes diverge.
                    lp = p[: min(i for i, c in enumerate(p + "*") if c in "*?[")]
                    lq = q[: min(i for i, c in enumerate(q + "*") if c in "*?[")]
                    if lp.startswith(lq) or lq.startswith(lp):
                        return True
        return False

    return meets(a.files, [*b.files, *b.reads]) or meets(b.files, a.reads)


def _verifier_text(results: Sequence[VerifierResult]) -> str:
    """The exact verifier output for the repair prompt, failures first."""
    parts = []
    for result in sorted(results, key=lambda r: r.ok):
        if result.ok:
            parts.append(f"[{result.name}] passed: {result.summary}")
        else:
            parts.append(f"[{result.name}] FAILED: {result.summary}\n{result.details}".rstrip())
    text = "\n\n".join(parts)
    return text if len(text) <= _ERRORS_LIMIT else text[:_ERRORS_LIMIT] + "\n[… truncated …]"


def _verifier_record(result: VerifierResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "ok": result.ok,
        "summary": result.summary,
        "duration_s": result.duration_s,
        "counts": dict(result.counts),
    }


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
        self._runs: dict[str, _StepRun] = {}
        self._verify_lock = asyncio.Lock()
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

    def _log(self, event: str, step_id: str | None = None, **data: Any) -> None:
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
        self._log("run_started", planner=self.plan.planner, steps=len(self.plan.steps), model=self.has_model)
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
                self._log("step_interrupted", state.step_id, restored=restored)
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
        self._log("run_resumed")
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
                passed = {sid for sid, s in states.items() if s.status == "passed"}
                active = list(running.values())
                for step in self.plan.ready_steps(passed):
                    if len(running) >= self.concurrency:
                        break
                    if states[step.id].status != "pending" or step in active:
                        continue
                    if any(_step_files_overlap(step, other) for other in active):
                        continue
                    states[step.id].status = "running"  # the task saves it; the object is shared
                    task = asyncio.create_task(self._run_step(step, states[step.id]), name=step.id)
                    running[task] = step
                    active.append(step)
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
        self._log("run_finished", ok=report.ok, summary=report.summary())
        report.write(self.run_dir / "report.json")
        return report

    def _skip_blocked(self, states: dict[str, StepState]) -> None:
        for step in self.plan.topological_order():
            state = states[step.id]
            if state.status != "pending":
                continue
            blocked = [d for d in step.depends_on if states[d].status in ("failed", "skipped")]
            if not blocked:
                continue
            dep = states[blocked[0]]
            why = "failed" if dep.status == "failed" else "was skipped"
            state.status = "skipped"
            state.reason = f"depends on {blocked[0]}, which {why}"
            if dep.status == "skipped" and dep.reason and NO_MODEL_HINT in dep.reason:
                state.reason += " (no model configured)"
            self.state.save_step(self.run_id, state)
            self._log("step_skipped", step.id, reason=state.reason)
            self._notify(step, state)

    def _notify(self, step: Step, state: StepState) -> None:
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
        self._log("step_started", step.id, kind=step.kind, run=state.runs)
        self._notify(step, state)
        run = _StepRun(step, state)
        self._runs[step.id] = run
        clock = time.perf_counter()
        try:
            if self.confirm is not None and not self.confirm(step, None):
                raise _Declined
            if not step.uses_model:
                await self._render_step(run)
            elif not self.has_model:
                state.status = "skipped"
                state.reason = f"model step: {NO_MODEL_HINT}"
            else:
                # Local models compute one call at a time: a step waiting for one would only spend its
                # per-attempt time limit in the queue.
                async with self._model_slots:
                    await self._model_step(run)
        except _Declined:
            state.status = "skipped"
            state.reason = "declined at --confirm"
        except PromptkitError as exc:
            state.status = "failed"
            state.errors.append(str(exc))
        state.finished_at = time.time()
        state.duration_s = round(time.perf_counter() - clock, 4)
        if state.status == "failed":
            # Nothing of a failed step stays in the workspace; keep its last files for inspection instead.
            async with self._verify_lock:
                self.state.restore_originals(self.run_id, step.id, self.workspace)
            self._keep_failed_files(run)
            state.files = {}
        self.state.save_step(self.run_id, state, clear_originals=True)
        self._log(
            f"step_{state.status}",
            step.id,
            attempts=state.attempts,
            model=state.model,
            tier=state.tier,
            reason=state.reason,
            errors=state.errors[-1:],
        )
        self._notify(step, state)

    def _keep_answer(self, step_id: str, attempt: int, tier: str, text: str) -> None:
        """Each model answer as it came, in the run folder: what a model got wrong is worth reading."""
        target = self.run_dir / "answers" / step_id / f"{attempt:02d}-{tier}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def _keep_failed_files(self, run: _StepRun) -> None:
        for path, content in run.last_files.items():
            if content is None:
                continue
            target = self.run_dir / "failed" / run.step.id / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")

    async def _render_step(self, run: _StepRun) -> None:
        step, state = run.step, run.state
        edits = [FileEdit(path=path, content=content) for path, content in step.render_files.items()]
        state.attempts = 1
        error = await self._apply_and_verify(run, edits, attempt=1)
        if error is None:
            state.status = "passed"
        else:
            state.status = "failed"
            state.errors.append(error)

    # -- model steps ------------------------------------------------------------------------------------

    def _features(self, step: Step, template: Any) -> RouteFeatures:
        tags = getattr(template, "tags", None)
        groups: Iterable[Iterable[str]] = (
            tags.values()
            if isinstance(tags, Mapping)
            else [getattr(tags, "technique", ()) or (), getattr(tags, "task", ()) or ()]
        )
        flat = [t for group in groups for t in group]
        if step.route.difficulty:
            # Routing rules can match `tag = "difficulty:hard"`.
            flat.append(f"difficulty:{step.route.difficulty}")
        # Routes are chosen before the prompt is rendered: the step's own words stand in for its text.
        text = "\n".join([step.title, step.description or "", *step.acceptance])
        return RouteFeatures(template=template.name, tags=tuple(flat), kind=step.kind, text=text)

    def _routes(self, step: Step) -> list[Route]:
        from promptkit.generation import template_for

        assert self.router is not None and step.template is not None
        routes = self.router.route(self._features(step, template_for(step.template)))
        if step.route.tier == "strongest":
            routes = routes[-1:]
        elif step.route.tier is not None:
            # The plan's tier hint is where the cascade starts; escalation still goes up from there.
            hinted = [r for r in routes if r.index is not None and r.index >= step.route.tier]
            routes = hinted or routes[-1:]
        return routes

    def _context_files(self, run: _StepRun) -> str:
        """The files the model sees: the step's own (as its last attempt left them) in full; what it reads (or,
        when it names nothing to read, what its dependencies wrote) in full when small, else as an outline
        (signatures and docstrings). A step that names its reads gets only those: every other file costs
        prefill time, and small models copy what they are shown."""
        step = run.step
        own = [*self.workspace.matching(step.files), *run.last_files]
        others = list(self.workspace.matching(step.reads))
        for dep in [] if step.reads else step.depends_on:
            dep_run = self._runs.get(dep)
            dep_state = dep_run.state if dep_run else self.state.step(self.run_id, dep)
            others += [p for p, digest in dep_state.files.items() if digest is not None]
        blocks = []
        # The files to write come last, nearest the answer: shown first, small models tend to copy the whole
        # listing that follows them instead of writing the file.
        for path in dict.fromkeys([*[p for p in others if p not in own], *own]):
            content = run.last_files[path] if path in run.last_files else self.workspace.read(path)
            if content is None:
                continue
            is_test = path.startswith("tests/") or path.rsplit("/", 1)[-1].startswith("test_")
            # A test's body is what it checks, so tests are never outlined.
            if path not in own and path.endswith(".py") and not is_test and len(content) > OUTLINE_OVER_CHARS:
                outline = outline_python(content)
                if outline is not None:
                    blocks.append(
                        f"### FILE: {path} (outline: signatures and docstrings)\n{outline.rstrip()}\n"
                    )
                    continue
            blocks.append(f"### FILE: {path}\n{content.rstrip()}\n")
        return "\n".join(blocks) if blocks else "(none)"

    def _step_object(self, step: Step) -> dict[str, Any]:
        given = step.inputs.get("step")
        if isinstance(given, Mapping):
            return dict(given)
        return {
            "id": step.id,
            "title": step.title,
            "description": step.description,
            "acceptance": step.acceptance,
        }

    def _inputs(self, run: _StepRun, template: Any, *, errors: str | None, attempt: int) -> dict[str, Any]:
        step = run.step
        declared = set(getattr(template, "inputs", {}) or {})
        inputs = dict(step.inputs) if template.name == step.template else {}
        if "step" in declared and "step" not in inputs:
            inputs["step"] = self._step_object(step)
        if "allowed_paths" in declared and "allowed_paths" not in inputs:
            inputs["allowed_paths"] = step.inputs.get("allowed_paths") or list(step.files)
        if "files" in declared:
            inputs["files"] = self._context_files(run)
        if "prefix" in declared and step.files:
            # A prefilled completion (complete_file): the answer starts inside the step's file as it stands
            # before the step (failed attempts are rolled back), at its first `...` body.
            inputs.setdefault("path", step.files[0])
            inputs["prefix"] = stub_prefix(self.workspace.read(inputs["path"]) or "")
        if "errors" in declared:
            inputs["errors"] = errors or "(no errors yet)"
        if "attempt" in declared:
            inputs["attempt"] = attempt
        return inputs

    async def _model_step(self, run: _StepRun) -> None:
        from promptkit.generation import template_for

        step, state = run.step, run.state
        assert self.router is not None and step.template is not None
        main_template = template_for(step.template)
        initial_errors: str | None = None
        if "errors" in (getattr(main_template, "inputs", {}) or {}):
            # A repair-shaped step (e.g. fix a failing test) starts from the verifiers' current complaints.
            async with self._verify_lock:
                results = await self._verify(run)
            if all(r.ok for r in results):
                state.status = "passed"
                state.reason = "the verifiers already pass; nothing to fix"
                return
            initial_errors = _verifier_text(results)

        routes = self._routes(step)
        last_errors: list[str] = []
        for index, route in enumerate(routes):
            if index > 0:
                state.escalations += 1
                self._log("step_escalated", step.id, to_tier=route.tier.name)
            tier_router = cast(Router, _OneTier(self.router, route))
            # generate() fits the prompt to the tier's context window; budget_tokens is the user's own cap.
            budget = self.budget_tokens
            run.last_files = {}
            first_inputs: dict[str, Any] = {}  # this tier's first prompt, which its repairs continue

            async def attempt(
                feedback: Sequence[Feedback],
                tier_router: Router = tier_router,
                tier_name: str = route.tier.name,
                budget: int | None = budget,
                first_inputs: dict[str, Any] = first_inputs,
            ) -> _Outcome:
                state.attempts += 1
                state.tier_name = tier_name
                self.state.save_step(self.run_id, state)
                self._notify(step, state)
                turns: Sequence[Feedback] = ()
                if feedback and self.repair == "template":
                    template = template_for(REPAIR_TEMPLATE)
                    inputs = self._inputs(run, template, errors=feedback[-1].error, attempt=len(feedback))
                else:
                    # A repair continues the conversation: the same prompt, then each failed answer and its
                    # errors. A local model reuses the prompt's cached state instead of reading it again.
                    template = main_template
                    if not first_inputs:
                        first_inputs.update(self._inputs(run, template, errors=initial_errors, attempt=1))
                    inputs, turns = first_inputs, feedback
                    answers = [f.raw_output.strip() for f in feedback]
                    if len(answers) != len(set(answers)):
                        # The model copied its failed answer: shown it again, a small model copies it
                        # again. Ask afresh instead (sampled, below): an independent try.
                        turns = ()
                self._log("attempt", step.id, attempt=state.attempts, template=template.name, tier=tier_name)
                clock = time.perf_counter()
                try:
                    result = await agenerate(
                        template,
                        inputs,
                        router=tier_router,
                        max_attempts=1,
                        kind=step.kind,
                        run_id=self.run_id,
                        cache=self.cache,
                        ledger=self.ledger if self.ledger is not None else False,
                        budget_tokens=budget,
                        # A repair at temperature 0 often repeats the failed answer word for word: sample,
                        # with a seed per attempt so a rerun gives the same answers.
                        temperature=self.repair_temperature if feedback else self.temperature,
                        max_tokens=self.max_tokens,
                        feedback=turns,
                        **({"seed": state.attempts} if feedback else {}),
                    )
                except AttemptsExhausted as exc:
                    last = exc.attempts[-1] if exc.attempts else None
                    self._account(state, exc.attempts)
                    raw = getattr(last, "raw_output", "") or ""
                    self._keep_answer(step.id, state.attempts, tier_name, raw)
                    return _Outcome(error=getattr(last, "error", None) or exc.message, raw=raw)
                finally:
                    self.timings["model_s"] += time.perf_counter() - clock
                self._account(state, result.attempts)
                self._keep_answer(step.id, state.attempts, tier_name, result.text)
                return _Outcome(result=result)

            async def validate(outcome: _Outcome) -> GenerateResult:
                if outcome.result is None:
                    raise OutputValidationError(outcome.error or "no answer", raw_output=outcome.raw)
                try:
                    edits = parse_edits(outcome.result.output, allowed=step.files)
                except WorkspaceError as exc:
                    raise OutputValidationError(str(exc), raw_output=outcome.result.text) from None
                error = await self._apply_and_verify(run, edits, attempt=state.attempts)
                if error is not None:
                    raise OutputValidationError(error, raw_output=outcome.result.text)
                return outcome.result

            try:
                looped = await repair_loop(
                    attempt,
                    validate,
                    # A tier's own max_attempts wins; otherwise the plan's per-step budget.
                    max_attempts=route.tier.max_attempts or step.max_attempts,
                    raw_output=lambda o: o.text,
                    usage=lambda o: None,
                    subject=f"result for step {step.id!r}",
                    location=f"step {step.id!r}",
                )
            except AttemptsExhausted as exc:
                last_errors = [a.error for a in exc.attempts if a.error]
                self._log("tier_exhausted", step.id, tier=route.tier.name, attempts=len(exc.attempts))
                continue
            except (TransportError, RoutingError) as exc:
                last_errors = [str(exc)]
                self._log("tier_unavailable", step.id, tier=route.tier.name, error=str(exc))
                continue
            except ContextBudgetError as exc:
                # The prompt fits this tier's context window under no trimming: a larger window may take it.
                last_errors = [str(exc)]
                self._log("tier_too_small", step.id, tier=route.tier.name, error=str(exc))
                continue
            result = looped.value
            state.status = "passed"
            state.tier = route.index
            state.tier_name = route.tier.name
            state.model = result.model
            return
        state.status = "failed"
        state.errors.extend(last_errors[-2:] or ["no tier could carry out the step"])

    @staticmethod
    def _account(state: StepState, attempts: Sequence[Any]) -> None:
        for item in attempts:
            usage = getattr(item, "usage", None)
            if usage is not None:
                state.input_tokens += usage.input_tokens
                state.output_tokens += usage.output_tokens
            state.cost_usd += float(getattr(item, "cost_usd", 0.0) or 0.0)
            if getattr(item, "outcome", None) == "cache_hit":
                state.cache_hits += 1

    # -- apply and verify -------------------------------------------------------------------------------

    async def _verify(self, run: _StepRun) -> list[VerifierResult]:
        clock = time.perf_counter()
        with tracing.span("promptkit.verify", {"promptkit.step.id": run.step.id}) as span:
            results = await run_verifiers(self.workspace.root, run.step.verifiers)
            if span:
                trace_verifiers(span, results)
        spent = time.perf_counter() - clock
        self.timings["verifiers_s"] += spent
        run.state.verifier_s += spent
        run.state.verifiers = [_verifier_record(r) for r in results]
        return results

    async def _apply_and_verify(
        self, run: _StepRun, edits: Sequence[FileEdit], *, attempt: int
    ) -> str | None:
        """Apply ``edits`` and run the verifiers; None when they pass, else the error text to feed back
        (the attempt's files are then rolled back)."""
        step, state = run.step, run.state
        async with self._verify_lock:
            clock = time.perf_counter()
            # Check everything before writing anything: a refused edit leaves the workspace untouched.
            planned: dict[str, tuple[str | None, str | None]] = {}
            try:
                for edit in edits:
                    self.workspace.check(edit.path, step.files, step=step.id)
                    before = self.workspace.read(edit.path)
                    after = edit.apply(before)
                    if after is not None and edit.path.endswith(".py") and self.tidy and step.uses_model:
                        after = await asyncio.to_thread(tidy_python, after, edit.path, self.workspace.root)
                    planned[edit.path] = (before, after)
            except WorkspaceError as exc:
                self._log("edit_refused", step.id, attempt=attempt, error=str(exc))
                return str(exc)
            run.last_files = {path: after for path, (_, after) in planned.items()}
            if self.confirm is not None:
                diff = "".join(render_diff(p, before, after) for p, (before, after) in planned.items())
                if not self.confirm(step, diff):
                    raise _Declined
            for path, (before, _) in planned.items():
                if not self.state.has_original(self.run_id, step.id, path):
                    self.state.save_original(self.run_id, step.id, path, before)
            for path, (_, after) in planned.items():
                written = (
                    self.workspace.delete(path, step.files, step=step.id)
                    if after is None
                    else self.workspace.write(path, after, step.files, step=step.id)
                )
                state.files[written.path] = written.sha256
            self.timings["apply_s"] += time.perf_counter() - clock
            results = await self._verify(run)
            ok = all(r.ok for r in results)
            self._log(
                "verified",
                step.id,
                attempt=attempt,
                ok=ok,
                verifiers=[_verifier_record(r) for r in results],
            )
            if ok:
                return None
            # Roll back: the workspace only ever holds finished steps and the step being verified.
            self.state.restore_originals(self.run_id, step.id, self.workspace)
            state.files = {}
            return _verifier_text(results)

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
