"""The LLM and hybrid planners, driven by a scripted backend; validation errors go back as re-asks."""

from __future__ import annotations

from typing import Any

import pytest

from promptkit.backends import ScriptedBackend
from promptkit.errors import AttemptsExhausted, ConfigError
from promptkit.planning import (
    AppSpec,
    HybridPlanner,
    LLMPlanner,
    Planner,
    PlaybookPlanner,
    get_planner,
    load_spec,
)

from .conftest import REPO

SPEC = load_spec(REPO / "examples" / "url_shortener.yaml")


def step(
    step_id: str, kind: str, files: list[str], depends_on: list[str], verifiers: list[str]
) -> dict[str, Any]:
    return {
        "id": step_id,
        "kind": kind,
        "title": f"Do {step_id}",
        "description": f"What {step_id} builds.",
        "files": files,
        "verifiers": verifiers,
        "depends_on": depends_on,
        "acceptance": [f"{step_id} works."],
    }


# The spec's two features, each implemented and tested: a plan must cover them to be accepted.
FEATURES = [
    step("resolve", "generate-code", ["url_shortener/features/resolve.py"], ["s1"], ["ruff"]),
    step("resolve-tests", "write-tests", ["tests/test_resolve.py"], ["resolve"], ["pytest"]),
    step("stats", "generate-code", ["url_shortener/features/stats.py"], ["s1"], ["ruff"]),
    step("stats-tests", "write-tests", ["tests/test_stats.py"], ["stats"], ["pytest"]),
]
VALID = {
    "summary": "Store first, then tests.",
    "steps": [
        step("s1", "render", ["pyproject.toml"], [], ["python-compile"]),
        step("s2", "generate-code", ["url_shortener/store.py"], ["s1"], ["python-compile", "ruff"]),
        step("s3", "write-tests", ["tests/test_store.py"], ["s2"], ["pytest"]),
        *FEATURES,
    ],
}
CYCLE = {
    "summary": "Broken.",
    "steps": [
        step("s1", "generate-code", ["a.py"], ["s2"], ["python-compile"]),
        step("s2", "generate-code", ["b.py"], ["s1"], ["python-compile"]),
    ],
}


def llm(backend: ScriptedBackend, **kw: Any) -> LLMPlanner:
    return LLMPlanner(model=backend, cache=False, ledger=False, **kw)


def test_llm_planner_converts_a_valid_answer():
    backend = ScriptedBackend([VALID])
    plan = llm(backend).plan(SPEC)
    assert backend.calls == 1
    assert (plan.planner, plan.playbook, plan.summary) == ("llm", None, "Store first, then tests.")
    s1, s2, s3, *_ = plan.steps
    # A model's "render" has no exact contents: it becomes a model step.
    assert (s1.kind, s1.template) == ("generate-code", "implement_step")
    assert s2.verifiers == [{"python-compile": {"paths": ["url_shortener/store.py"]}}, "ruff"]
    assert (s3.kind, s3.template, s3.verifiers) == (
        "write-tests",
        "write_tests",
        [{"pytest": {"tests": ["tests/test_store.py"]}}],
    )
    assert s2.inputs["step"] == {
        "id": "s2",
        "title": "Do s2",
        "description": "What s2 builds.",
        "acceptance": ["s2 works."],
    }
    assert s2.inputs["allowed_paths"] == ["url_shortener/store.py"]
    assert s3.inputs["target"] == "What s3 builds." and s3.depends_on == ["s2"]
    # The spec went to the model as YAML.
    prompt = backend.history[0].messages[-1].content
    assert "name: url-shortener" in prompt and "stack: python-cli" in prompt


def test_a_cycle_is_re_asked_with_the_cycle_named():
    backend = ScriptedBackend([CYCLE, VALID])
    plan = llm(backend).plan(SPEC)
    assert backend.calls == 2
    assert [s.id for s in plan.steps][:3] == ["s1", "s2", "s3"]
    feedback = backend.history[1].messages[-1].content
    assert "dependency cycle s1 -> s2 -> s1" in feedback
    assert backend.history[1].messages[-2].role == "assistant"


def test_unknown_verifier_and_bad_paths_are_re_asked():
    bad_verifier = {"summary": "x", "steps": [step("s1", "generate-code", ["a.py"], [], ["mypy"])]}
    escaping = {"summary": "x", "steps": [step("s1", "generate-code", ["../a.py"], [], ["ruff"])]}
    backend = ScriptedBackend([bad_verifier, escaping, VALID])
    llm(backend).plan(SPEC)
    assert backend.calls == 3
    assert "'mypy' is not an available verifier" in backend.history[1].messages[-1].content
    assert "'../a.py' contains '..'" in backend.history[2].messages[-1].content


def test_a_plan_that_leaves_out_features_or_packaging_is_re_asked_with_what_is_missing():
    partial = {
        "summary": "x",
        "steps": [step("s1", "generate-code", ["url_shortener/store.py"], [], ["ruff"]), *FEATURES[:2]],
    }
    backend = ScriptedBackend([partial, VALID])
    plan = llm(backend).plan(SPEC)
    assert backend.calls == 2 and len(plan.steps) == 7
    feedback = backend.history[1].messages[-1].content
    assert "feature 'stats' has no step that implements it" in feedback
    assert "feature 'stats' has no step that tests it" in feedback
    assert "no step writes the packaging (pyproject.toml)" in feedback
    assert "'resolve'" not in feedback


def test_attempts_run_out():
    backend = ScriptedBackend([CYCLE, CYCLE])
    with pytest.raises(AttemptsExhausted, match="dependency cycle"):
        llm(backend, max_attempts=2).plan(SPEC)


FEATURE_PLAN = {
    "summary": "One feature.",
    "steps": [
        step("impl", "generate-code", ["url_shortener/features/x.py"], [], ["python-compile", "ruff"]),
        step(
            "test",
            "write-tests",
            ["tests/test_feature_x.py", "url_shortener/features/x.py"],
            ["impl"],
            ["pytest"],
        ),
    ],
}


def test_hybrid_planner_puts_model_steps_on_the_skeleton():
    assert isinstance(SPEC, AppSpec)
    backend = ScriptedBackend([FEATURE_PLAN, FEATURE_PLAN])
    plan = HybridPlanner(model=backend, cache=False, ledger=False).plan(SPEC)
    # The playbook's own steps that do not belong to a feature (features' skeletons and tests are per feature).
    skeleton = [s for s in PlaybookPlanner().plan(SPEC).steps if not s.id.startswith("feature-")]
    assert plan.steps[: len(skeleton)] == skeleton
    assert (plan.planner, plan.playbook) == ("hybrid", "cli_tool")
    ids = [s.id for s in plan.steps[len(skeleton) :]]
    assert ids == ["resolve-impl", "resolve-test", "stats-impl", "stats-test"]
    # Each feature starts from the finished skeleton, not from the feature before it.
    assert plan.step("resolve-impl").depends_on == ["tests-link"]
    assert plan.step("stats-impl").depends_on == ["tests-link"]
    assert plan.step("stats-test").depends_on == ["stats-impl"]
    assert backend.calls == 2
    first = backend.history[0].messages[-1].content
    assert "Plan ONLY this feature" in first and "id: resolve" in first and "url_shortener/store.py" in first
    assert "id: stats" not in first


def test_hybrid_re_asks_a_step_that_depends_on_an_unknown_skeleton_step():
    wrong = {
        "summary": "x",
        "steps": [step("impl", "generate-code", ["url_shortener/features/x.py"], ["nope"], ["ruff"])],
    }
    backend = ScriptedBackend([wrong, FEATURE_PLAN, FEATURE_PLAN])
    plan = HybridPlanner(model=backend, cache=False, ledger=False).plan(SPEC)
    assert backend.calls == 3
    assert "unknown step 'resolve-nope'" in backend.history[1].messages[-1].content
    assert plan.step("resolve-impl").depends_on == ["tests-link"]


def test_get_planner():
    assert isinstance(get_planner("playbook"), PlaybookPlanner)
    planner = get_planner("llm", model=ScriptedBackend([VALID]), cache=False, ledger=False)
    assert isinstance(planner, LLMPlanner) and isinstance(planner, Planner)
    assert planner.plan(SPEC).planner == "llm"
    with pytest.raises(ConfigError, match="unknown planner 'magic'"):
        get_planner("magic")
    with pytest.raises(ConfigError, match="exactly one of model= or router="):
        get_planner("hybrid")
    with pytest.raises(ConfigError, match="bad options for planner 'playbook'"):
        get_planner("playbook", colour="red")
