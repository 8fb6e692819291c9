"""The typed plan: steps with allow-lists, verifiers and dependencies — the contract with the executor.

How the executor runs a :class:`Plan` (this is the contract):

- Run steps in :meth:`Plan.topological_order` (or :meth:`Plan.ready_steps` to run independent ones together).
- ``render`` steps: write ``render_files`` (exact contents, already expanded) into the workspace; no model.
- Every other kind: render ``template`` with ``inputs`` plus the runtime inputs in :data:`RUNTIME_INPUTS`
  that the template declares (``files``: the current content of ``files`` and ``reads`` as
  ``### FILE: <path>`` blocks; ``errors``/``attempt`` for repairs; ``path``/``prefix`` for a prefilled
  completion: the step's first file and its text up to its first ``...`` body; a step may give ``prefix``
  itself, the skeleton of a file that does not exist yet, which is cut the same way), call ``generate()`` and
  write the answer's ``files`` (each ``{path, content}``).
- A step may create or change only paths matched by its ``files`` allow-list (exact paths or globs, see
  :func:`path_allowed`); ``reads`` are shown to the model but must not change.
- After applying a step, run its ``verifiers`` (``promptkit.execution.verifier_from_spec`` specs) in the
  workspace; on failure, repair (template ``fix_step``) up to ``max_attempts`` attempts in all.
- ``route`` hints the router: a fixed ``tier``, or a ``difficulty`` for rules to match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from promptkit.errors import PlanError
from promptkit.planning._naming import SLUG
from promptkit.planning._paths import path_allowed, path_problem
from promptkit.planning._spec import Spec
from promptkit.prompts import field_path, validation_message

if TYPE_CHECKING:
    from rich.tree import Tree

__all__ = [
    "STEP_KINDS",
    "MODEL_STEP_KINDS",
    "RUNTIME_INPUTS",
    "PLANNERS",
    "StepKind",
    "Difficulty",
    "VerifierSpec",
    "RouteHint",
    "Step",
    "Plan",
    "verifier_spec_problem",
]

StepKind = Literal["render", "generate-code", "write-tests", "fix", "refactor", "docs"]
STEP_KINDS: tuple[str, ...] = ("render", "generate-code", "write-tests", "fix", "refactor", "docs")
MODEL_STEP_KINDS: tuple[str, ...] = tuple(k for k in STEP_KINDS if k != "render")
Difficulty = Literal["easy", "medium", "hard"]
PlannerName = Literal["playbook", "llm", "hybrid"]
PLANNERS: tuple[str, ...] = ("playbook", "llm", "hybrid")
# Template inputs only the executor knows; a step's ``inputs`` hold everything else.
RUNTIME_INPUTS: tuple[str, ...] = ("files", "errors", "attempt", "path", "prefix")

# A verifier spec as promptkit.execution.verifier_from_spec reads it: "name" or {name: options}.
VerifierSpec = str | dict[str, Any]

_VERIFIER_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
# Verifier options that name workspace files: they must stay inside the workspace too.
_PATH_OPTIONS = ("paths", "tests", "glob")


def verifier_spec_problem(spec: object) -> str | None:
    """Why ``spec`` is not a well-formed verifier spec, or None. (Names are checked by the executor.)"""
    if isinstance(spec, str):
        return None if _VERIFIER_NAME.match(spec) else f"{spec!r} is not a verifier name"
    if not isinstance(spec, Mapping) or len(spec) != 1:
        return f"a verifier spec is a name or a one-key mapping {{name: options}}, got {spec!r}"
    ((name, options),) = spec.items()
    if not isinstance(name, str) or not _VERIFIER_NAME.match(name):
        return f"{name!r} is not a verifier name"
    if isinstance(options, Mapping):
        for key in _PATH_OPTIONS:
            value = options.get(key)
            values = [value] if isinstance(value, str) else list(value or [])
            for item in values:
                problem = (
                    path_problem(str(item).split("::", 1)[0]) if isinstance(item, str) else "not a string"
                )
                if problem:
                    return f"{name}.{key}: {problem}"
    return None


class RouteHint(BaseModel):
    """A hint for the router: start at ``tier`` (an index, or ``"strongest"`` for the last configured tier),
    or state a ``difficulty`` that routing rules can match."""

    model_config = ConfigDict(extra="forbid")

    tier: int | Literal["strongest"] | None = Field(default=None)
    difficulty: Difficulty | None = None


class Step(BaseModel):
    """One verified unit of work.

    ``inputs`` are the template's inputs known at planning time (already expanded from the spec); the
    executor adds :data:`RUNTIME_INPUTS`. ``description`` and ``acceptance`` say what done means, in words;
    ``verifiers`` prove it.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    kind: StepKind
    description: str = ""
    acceptance: list[str] = Field(default_factory=list)
    template: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    render_files: dict[str, str] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    reads: list[str] = Field(default_factory=list)
    verifiers: list[VerifierSpec] = Field(default_factory=list)
    route: RouteHint = Field(default_factory=RouteHint)
    max_attempts: int = Field(default=3, ge=1)

    @model_validator(mode="wrap")
    @classmethod
    def _typed_errors(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            step_id = data.get("id") if isinstance(data, Mapping) else getattr(data, "id", None)
            raise _plan_error(exc, f"step {step_id!r}" if step_id else "step") from None

    @property
    def uses_model(self) -> bool:
        """True for steps a model carries out; ``render`` steps are applied as is."""
        return self.kind != "render"

    def problems(self) -> list[tuple[str, str]]:
        """``(field, problem)`` for everything wrong with this step on its own."""
        out: list[tuple[str, str]] = []
        if not SLUG.match(self.id):
            out.append(("id", f"{self.id!r} must be a slug (lowercase letters, digits and -)"))
        if self.kind not in STEP_KINDS:
            out.append(("kind", f"unknown step kind {self.kind!r}; one of {', '.join(STEP_KINDS)}"))
        if not self.title.strip():
            out.append(("title", "must not be empty"))
        if self.kind == "render":
            if not self.render_files:
                out.append(("render_files", "a render step needs the files it writes"))
            if self.template:
                out.append(("template", "a render step is applied without a model; drop the template"))
        elif not self.template:
            out.append(("template", f"a {self.kind} step is carried out by a model and needs a template"))
        elif self.render_files:
            out.append(("render_files", f"only render steps carry render_files, not {self.kind} steps"))
        if not self.files:
            out.append(("files", "the allow-list is empty: the step could not change anything"))
        for name in ("files", "reads"):
            for index, path in enumerate(getattr(self, name)):
                problem = path_problem(path)
                if problem:
                    out.append((f"{name}[{index}]", problem))
        for path in self.render_files:
            problem = path_problem(path)
            if problem:
                out.append((f"render_files[{path!r}]", problem))
            elif not path_allowed(path, self.files):
                out.append((f"render_files[{path!r}]", f"{path!r} is outside the step's allow-list (files)"))
        for index, spec in enumerate(self.verifiers):
            problem = verifier_spec_problem(spec)
            if problem:
                out.append((f"verifiers[{index}]", problem))
        for index, dep in enumerate(self.depends_on):
            if dep == self.id:
                out.append((f"depends_on[{index}]", "a step cannot depend on itself"))
        bad = sorted(k for k in self.inputs if k in RUNTIME_INPUTS and k != "prefix")
        if bad:
            out.append(("inputs", f"{', '.join(bad)} are filled in by the executor at run time"))
        return out


def _plan_error(exc: ValidationError, where: str, *, skip: int = 0) -> PlanError:
    err = exc.errors(include_url=False)[0]
    loc = [p for p in err["loc"][skip:] if not (isinstance(p, str) and p.startswith("function-"))]
    return PlanError(f"{field_path(loc) or '(value)'}: {validation_message(err)}", location=where)


class Plan(BaseModel):
    """A spec broken into typed, verifiable steps. Validated on construction (see :meth:`validate`)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = 1
    spec: Spec
    planner: PlannerName
    playbook: str | None = None
    summary: str = ""
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="wrap")
    @classmethod
    def _typed_errors(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = err["loc"]
            where = "plan"
            if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int) and isinstance(data, Mapping):
                steps = data.get("steps") or []
                raw = steps[loc[1]] if loc[1] < len(steps) else None
                step_id = raw.get("id") if isinstance(raw, Mapping) else None
                where = f"step {step_id!r}" if step_id else f"plan: steps[{loc[1]}]"
                raise _plan_error(exc, where, skip=2) from None
            raise _plan_error(exc, where) from None

    @model_validator(mode="after")
    def _check(self) -> Plan:
        self.validate()
        return self

    def validate(self) -> None:  # type: ignore[override]  # pydantic's deprecated classmethod; ours checks
        """Raise ``PlanError`` (naming the step and field) for duplicate ids, unknown kinds or references,
        model steps without a template, unsafe paths, render files outside the allow-list, or a cycle."""
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise PlanError(f"id: duplicate step id {step.id!r}", location=f"step {step.id!r}")
            seen.add(step.id)
        for step in self.steps:
            problems = step.problems()
            if problems:
                field, problem = problems[0]
                raise PlanError(f"{field}: {problem}", location=f"step {step.id!r}")
            for index, dep in enumerate(step.depends_on):
                if dep not in seen:
                    raise PlanError(
                        f"depends_on[{index}]: unknown step {dep!r}; steps are {', '.join(sorted(seen))}",
                        location=f"step {step.id!r}",
                    )
        cycle = self._find_cycle()
        if cycle:
            raise PlanError(
                f"depends_on: dependency cycle {' -> '.join(cycle)} (each step depends on the next)",
                location=f"step {cycle[0]!r}",
            )

    def _find_cycle(self) -> list[str] | None:
        deps = {s.id: s.depends_on for s in self.steps}
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        stack: list[str] = []

        def visit(node: str) -> list[str] | None:
            state[node] = 1
            stack.append(node)
            for dep in deps.get(node, []):
                if state.get(dep) == 1:
                    return [*stack[stack.index(dep) :], dep]
                if dep in deps and state.get(dep) is None:
                    found = visit(dep)
                    if found:
                        return found
            stack.pop()
            state[node] = 2
            return None

        for step in self.steps:
            if state.get(step.id) is None:
                found = visit(step.id)
                if found:
                    return found
        return None

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise PlanError(f"no step {step_id!r} in the plan", location="plan")

    def topological_order(self) -> list[Step]:
        """Steps in an order where each comes after everything it depends on; ties keep plan order."""
        done: set[str] = set()
        order: list[Step] = []
        while len(order) < len(self.steps):
            ready = self.ready_steps(done)
            if not ready:  # pragma: no cover - validate() rejects cycles
                raise PlanError("depends_on: dependency cycle", location="plan")
            order.append(ready[0])
            done.add(ready[0].id)
        return order

    def ready_steps(self, done: set[str]) -> list[Step]:
        """Steps not in ``done`` whose dependencies are all in ``done``, in plan order."""
        return [s for s in self.steps if s.id not in done and all(d in done for d in s.depends_on)]

    def to_json(self) -> str:
        """The plan as JSON; the same plan always gives the same bytes."""
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "plan") -> Plan:
        """Parse and validate plan JSON; errors are ``PlanError`` naming the step and field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"invalid JSON: {exc.msg}", location=f"{source}:{exc.lineno}") from None
        if not isinstance(data, dict):
            raise PlanError(f"a plan is a JSON object, not {type(data).__name__}", location=source)
        return cls.model_validate(data)

    def tree(self) -> Tree:
        """A rich Tree: one branch per step (in execution order) with its depends_on, files and verifiers."""
        from rich.markup import escape
        from rich.tree import Tree

        spec = self.spec
        label = f"[bold]{escape(spec.name)}[/bold] — {len(self.steps)} steps, planner {self.planner}"
        if self.playbook:
            label += f", playbook {escape(self.playbook)}"
        root = Tree(label)
        for step in self.topological_order():
            branch = root.add(f"[bold cyan]{escape(step.id)}[/] [magenta]{step.kind}[/] {escape(step.title)}")
            if step.depends_on:
                branch.add(f"depends on: {escape(', '.join(step.depends_on))}")
            branch.add(f"files: {escape(', '.join(step.files))}")
            if step.verifiers:
                names = [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in step.verifiers]
                branch.add(f"verifiers: {escape(', '.join(names))}")
            if step.template:
                branch.add(f"template: {escape(step.template)}")
        return root
