"""Planners turn a spec into a validated :class:`Plan`: from a playbook, from a model, or both."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload, runtime_checkable

from pydantic import BaseModel

from promptkit.errors import ConfigError, PlanError
from promptkit.planning._plan import Plan, Step
from promptkit.planning._playbook import Playbook, find_playbook, playbook_for
from promptkit.planning._spec import AppSpec, Feature, TaskSpec

if TYPE_CHECKING:
    from promptkit.backends import Backend
    from promptkit.routing import Router

__all__ = [
    "Planner",
    "PlaybookPlanner",
    "LLMPlanner",
    "HybridPlanner",
    "get_planner",
    "steps_from_model_output",
    "coverage_problems",
    "DEFAULT_VERIFIERS",
]

DEFAULT_VERIFIERS: tuple[str, ...] = ("python-compile", "ruff", "pytest", "json-valid", "yaml-valid")

# Which template carries out a model-planned step of each kind, and how hard the router should think it is.
_TEMPLATE_FOR = {
    "generate-code": "implement_step",
    "refactor": "implement_step",
    "docs": "implement_step",
    "write-tests": "write_tests",
    "fix": "fix_step",
}
_DIFFICULTY_FOR = {
    "generate-code": "medium",
    "refactor": "hard",
    "docs": "easy",
    "write-tests": "easy",
    "fix": "hard",
}
_TEST_FILE = re.compile(r"(^|/)(test_[^/]*|[^/]*_test)\.py$")


@runtime_checkable
class Planner(Protocol):
    """Anything that turns a spec into a validated plan."""

    name: str

    def plan(self, spec: AppSpec | TaskSpec) -> Plan: ...


def _resolve_playbook(
    playbook: str | Path | Playbook | None, spec: AppSpec | TaskSpec, search_path: Any
) -> Playbook:
    if isinstance(playbook, Playbook):
        found = playbook
    elif playbook is None:
        return playbook_for(spec, search_path)
    else:
        found = find_playbook(playbook, search_path)
    if not found.applies(spec):
        target = ", ".join(f"{k} {v!r}" for k, v in found.applies_to.items()) or "nothing"
        what = f"task {spec.task!r}" if isinstance(spec, TaskSpec) else f"stack {spec.stack!r}"
        raise PlanError(
            f"playbook {found.name!r} applies to {target}, not to {what}", location=f"spec {spec.name!r}"
        )
    return found


class PlaybookPlanner:
    """Expands a playbook (by default the one for the spec's stack or task); fully deterministic."""

    name = "playbook"

    def __init__(
        self, playbook: str | Path | Playbook | None = None, *, search_path: list[Path] | None = None
    ) -> None:
        self.playbook = playbook
        self.search_path = search_path

    def playbook_for(self, spec: AppSpec | TaskSpec) -> Playbook:
        return _resolve_playbook(self.playbook, spec, self.search_path)

    def plan(self, spec: AppSpec | TaskSpec) -> Plan:
        playbook = self.playbook_for(spec)
        return Plan(
            spec=spec,
            planner="playbook",
            playbook=playbook.name,
            summary=playbook.render_summary(spec),
            steps=playbook.expand(spec),
        )


def _slug(raw: object) -> str:
    return re.sub(r"[\s_]+", "-", str(raw).strip().lower())


def _verifiers(names: Sequence[str], files: Sequence[str], available: Sequence[str], where: str) -> list[Any]:
    specs: list[Any] = []
    py_files = [f for f in files if f.endswith(".py")]
    tests = [f for f in py_files if _TEST_FILE.search(f)]
    for index, name in enumerate(names):
        key = str(name).strip().lower()
        if key not in available:
            raise PlanError(
                f"verifiers[{index}]: {name!r} is not an available verifier ({', '.join(available)})",
                location=where,
            )
        if key == "pytest" and tests:
            specs.append({"pytest": {"tests": tests}})
        elif key == "python-compile" and py_files:
            specs.append({"python-compile": {"paths": py_files}})
        elif key not in specs:
            specs.append(key)
    return specs


def _inputs(kind: str, step: dict[str, Any], summary: str, files: list[str]) -> dict[str, Any]:
    shown = {k: step[k] for k in ("id", "title", "description", "acceptance")}
    if kind == "write-tests":
        return {
            "spec_summary": summary,
            "target": step["description"],
            "acceptance": step["acceptance"],
            "allowed_paths": files,
        }
    if kind == "fix":
        return {"step": shown, "allowed_paths": files}
    return {"spec_summary": summary, "step": shown, "allowed_paths": files}


def steps_from_model_output(
    output: BaseModel | Mapping[str, Any],
    *,
    summary: str,
    prefix: str = "",
    root_depends_on: Sequence[str] = (),
    known_ids: Iterable[str] = (),
    available_verifiers: Sequence[str] = DEFAULT_VERIFIERS,
) -> list[Step]:
    """Turn a ``spec_to_plan`` answer into plan steps.

    Ids are slugged and get ``prefix``; steps without dependencies depend on ``root_depends_on``; a
    ``depends_on`` entry that names one of ``known_ids`` (steps outside this answer) is kept as is.
    A model's ``render`` step has no exact contents, so it becomes a ``generate-code`` step.
    """
    data = output.model_dump() if isinstance(output, BaseModel) else dict(output)
    raw_steps = list(data.get("steps") or [])
    local = {_slug(s.get("id", "")) for s in raw_steps if isinstance(s, Mapping)}
    outside = set(known_ids)
    steps: list[Step] = []
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, Mapping):
            raise PlanError(f"steps[{index}]: a step is an object", location="plan")
        step_id = prefix + _slug(raw.get("id", ""))
        where = f"step {step_id!r}"
        kind = str(raw.get("kind", ""))
        kind = "generate-code" if kind == "render" else kind
        files = [str(f) for f in raw.get("files") or []]
        depends: list[str] = []
        for dep in raw.get("depends_on") or []:
            slug = _slug(dep)
            target = prefix + slug if slug in local else (str(dep) if str(dep) in outside else prefix + slug)
            if target not in depends:
                depends.append(target)
        if not depends:
            depends = list(root_depends_on)
        shown = {
            "id": step_id,
            "title": str(raw.get("title", "")),
            "description": str(raw.get("description", "")),
            "acceptance": [str(a) for a in raw.get("acceptance") or []],
        }
        template = _TEMPLATE_FOR.get(kind)
        steps.append(
            Step.model_validate(
                {
                    **shown,
                    "kind": kind,
                    "template": template,
                    "inputs": _inputs(kind, shown, summary, files) if template else {},
                    "files": files,
                    "depends_on": depends,
                    "verifiers": _verifiers(
                        list(raw.get("verifiers") or []), files, available_verifiers, where
                    ),
                    "route": {"difficulty": _DIFFICULTY_FOR.get(kind)},
                }
            )
        )
    return steps


class _ModelCalls:
    """What the LLM and hybrid planners share: how they call ``generate()``."""

    def __init__(
        self,
        model: str | Backend | None,
        router: Router | None,
        *,
        template: str,
        available_verifiers: Sequence[str],
        max_attempts: int | None,
        cache: Any,
        ledger: Any,
        generate_kw: dict[str, Any],
    ) -> None:
        if (model is None) == (router is None):
            raise ConfigError("give exactly one of model= or router= to a model planner", location="planner")
        self.model = model
        self.router = router
        self.template = template
        self.available_verifiers = tuple(available_verifiers)
        self.max_attempts = max_attempts
        self.cache = cache
        self.ledger = ledger
        self.generate_kw = generate_kw

    def ask(self, inputs: dict[str, Any], accept: Any) -> Any:
        from promptkit.generation import generate

        target: dict[str, Any] = {"router": self.router} if self.router is not None else {"model": self.model}
        result = generate(
            self.template,
            {**inputs, "available_verifiers": list(self.available_verifiers)},
            **target,
            accept=accept,
            cache=self.cache,
            ledger=self.ledger,
            max_attempts=self.max_attempts,
            kind="plan",
            **self.generate_kw,
        )
        return result.output


def _summary_of(spec: AppSpec | TaskSpec, playbook: Playbook | None) -> str:
    if playbook is not None:
        conventions = playbook.context(spec).get("conventions")
        if isinstance(conventions, str) and conventions.strip():
            return conventions.strip()
    return f"{spec.name}: {spec.summary.strip()}"


def _workspace_files(spec: AppSpec | TaskSpec) -> str | None:
    if isinstance(spec, TaskSpec):
        return "\n".join(dict.fromkeys([spec.target_file, *spec.files, *spec.tests]))
    return None


class LLMPlanner:
    """Asks a model (template ``spec_to_plan``) for the plan; plan validation errors are re-asked.

    Keyword arguments besides the named ones (``temperature``, ``max_tokens``...) go to each ``generate()``.
    """

    name = "llm"

    def __init__(
        self,
        model: str | Backend | None = None,
        *,
        router: Router | None = None,
        template: str = "spec_to_plan",
        max_steps: int = 12,
        max_attempts: int | None = None,
        available_verifiers: Sequence[str] = DEFAULT_VERIFIERS,
        cache: Any = True,
        ledger: Any = True,
        **generate_kw: Any,
    ) -> None:
        self.calls = _ModelCalls(
            model,
            router,
            template=template,
            available_verifiers=available_verifiers,
            max_attempts=max_attempts,
            cache=cache,
            ledger=ledger,
            generate_kw=generate_kw,
        )
        self.max_steps = max_steps

    def _convert(self, spec: AppSpec | TaskSpec, output: Any) -> Plan:
        data = output.model_dump() if isinstance(output, BaseModel) else dict(output)
        steps = steps_from_model_output(
            data, summary=_summary_of(spec, None), available_verifiers=self.calls.available_verifiers
        )
        return Plan(spec=spec, planner="llm", summary=str(data.get("summary", "")), steps=steps)

    def plan(self, spec: AppSpec | TaskSpec) -> Plan:
        def accept(output: Any) -> bool | str:
            try:
                plan = self._convert(spec, output)
            except PlanError as exc:
                return str(exc)
            missing = coverage_problems(spec, plan.steps, packaging=True)
            return (
                f"the plan does not cover the spec: {'; '.join(missing)}. Add those steps."
                if missing
                else True
            )

        inputs = {
            "spec": spec.to_yaml(),
            "workspace_files": _workspace_files(spec),
            "max_steps": self.max_steps,
        }
        return self._convert(spec, self.calls.ask(inputs, accept))


_IMPLEMENTS = ("generate-code", "refactor", "fix")
_PACKAGING = ("pyproject.toml", "setup.py", "setup.cfg")


def _mentions(step: Step, feature_id: str) -> bool:
    def norm(text: str) -> str:
        return text.lower().replace("_", "-")

    # Files count too: todo_api/features/mark_all_done.py names the feature mark-all-done.
    return norm(feature_id) in norm(" ".join([step.id, step.title, step.description or "", *step.files]))


def coverage_problems(
    spec: AppSpec | TaskSpec,
    steps: Sequence[Step],
    *,
    features: Sequence[Feature] | None = None,
    packaging: bool = False,
) -> list[str]:
    """What a model's plan leaves out of the spec: a feature without an implementing step or a test step
    (a step covers a feature when its id, title, description or files name the feature), and, with
    ``packaging``, no step that writes the project's packaging."""
    problems = []
    wanted = features if features is not None else getattr(spec, "features", [])
    for feature in wanted:
        mine = [s for s in steps if _mentions(s, feature.id)]
        if not any(s.kind in _IMPLEMENTS for s in mine):
            problems.append(f"feature {feature.id!r} has no step that implements it")
        if not any(s.kind == "write-tests" for s in mine):
            problems.append(f"feature {feature.id!r} has no step that tests it")
    if packaging and isinstance(spec, AppSpec):
        if not any(Path(f).name in _PACKAGING for s in steps for f in s.files):
            problems.append("no step writes the packaging (pyproject.toml)")
    return problems


def _feature_request(spec: AppSpec, feature: Feature, conventions: str) -> str:
    acceptance = "".join(f"\n  - {a}" for a in feature.acceptance) or " (none given)"
    return (
        f"{conventions}\n\n"
        f"The scaffold above already exists and its tests pass. Plan ONLY this feature of {spec.name}:\n"
        f"id: {feature.id}\ndescription: {feature.description.strip()}\nacceptance:{acceptance}\n"
    )


class HybridPlanner:
    """The playbook's deterministic skeleton, plus model-planned steps for each feature (on the skeleton).

    Keyword arguments besides the named ones (``temperature``, ``max_tokens``...) go to each ``generate()``.
    """

    name = "hybrid"

    def __init__(
        self,
        model: str | Backend | None = None,
        *,
        router: Router | None = None,
        playbook: str | Path | Playbook | None = None,
        search_path: list[Path] | None = None,
        template: str = "spec_to_plan",
        max_steps_per_feature: int = 4,
        max_attempts: int | None = None,
        available_verifiers: Sequence[str] = DEFAULT_VERIFIERS,
        cache: Any = True,
        ledger: Any = True,
        **generate_kw: Any,
    ) -> None:
        self.calls = _ModelCalls(
            model,
            router,
            template=template,
            available_verifiers=available_verifiers,
            max_attempts=max_attempts,
            cache=cache,
            ledger=ledger,
            generate_kw=generate_kw,
        )
        self.playbook = playbook
        self.search_path = search_path
        self.max_steps_per_feature = max_steps_per_feature

    def plan(self, spec: AppSpec | TaskSpec) -> Plan:
        playbook = _resolve_playbook(self.playbook, spec, self.search_path)
        steps = playbook.expand(spec, roles=("skeleton",))
        summary = playbook.render_summary(spec)
        if isinstance(spec, TaskSpec) or not spec.features:
            return Plan(spec=spec, planner="hybrid", playbook=playbook.name, summary=summary, steps=steps)
        conventions = _summary_of(spec, playbook)
        workspace = "\n".join(sorted({path for s in steps for path in s.render_files}))
        # Every feature hangs off the finished skeleton, not off the features planned before it.
        sinks = [s.id for s in steps if not any(s.id in t.depends_on for t in steps)]
        for feature in spec.features:
            known = [s.id for s in steps]
            prefix = f"{feature.id}-"

            def convert(
                output: Any,
                *,
                base: list[Step] = steps,
                known: list[str] = known,
                sinks: list[str] = sinks,
                prefix: str = prefix,
            ) -> list[Step]:
                new = steps_from_model_output(
                    output,
                    summary=conventions,
                    prefix=prefix,
                    root_depends_on=sinks,
                    known_ids=known,
                    available_verifiers=self.calls.available_verifiers,
                )
                Plan(
                    spec=spec, planner="hybrid", playbook=playbook.name, summary=summary, steps=[*base, *new]
                )
                return new

            def accept(output: Any, convert: Any = convert, feature: Feature = feature) -> bool | str:
                try:
                    new = convert(output)
                except PlanError as exc:
                    return str(exc)
                missing = coverage_problems(spec, new, features=[feature])
                if missing:
                    return f"the steps do not cover the feature: {'; '.join(missing)}. Add those steps."
                return True

            inputs = {
                "spec": _feature_request(spec, feature, conventions),
                "workspace_files": workspace,
                "max_steps": self.max_steps_per_feature,
            }
            steps = [*steps, *convert(self.calls.ask(inputs, accept))]
        return Plan(spec=spec, planner="hybrid", playbook=playbook.name, summary=summary, steps=steps)


_PLANNERS: dict[str, type] = {"playbook": PlaybookPlanner, "llm": LLMPlanner, "hybrid": HybridPlanner}


@overload
def get_planner(name: Literal["playbook"], **options: Any) -> PlaybookPlanner: ...
@overload
def get_planner(name: Literal["llm"], **options: Any) -> LLMPlanner: ...
@overload
def get_planner(name: Literal["hybrid"], **options: Any) -> HybridPlanner: ...
@overload
def get_planner(name: str, **options: Any) -> Planner: ...
def get_planner(name: str, **options: Any) -> Planner:
    """The planner named ``name``, built with ``options`` (the keyword arguments of its class):

    - ``"playbook"``: :class:`PlaybookPlanner` (``playbook``, ``search_path``): deterministic, no model.
    - ``"llm"``: :class:`LLMPlanner` (``model`` or ``router``, ``template``, ``max_steps``, ``max_attempts``,
      ``available_verifiers``, ``cache``, ``ledger``; any other option goes to each ``generate()`` call).
    - ``"hybrid"``: :class:`HybridPlanner` (the options of both, with ``max_steps_per_feature``).

    ``get_planner("playbook")``, ``get_planner("llm", model="cheap")``, ``get_planner("hybrid", router=r)``.
    An unknown name or option is a ``ConfigError``.
    """
    factory = _PLANNERS.get(name)
    if factory is None:
        raise ConfigError(f"unknown planner {name!r}; one of {', '.join(_PLANNERS)}", location="planner")
    try:
        planner: Planner = factory(**options)
    except TypeError as exc:
        raise ConfigError(f"bad options for planner {name!r}: {exc}", location="planner") from None
    return planner
