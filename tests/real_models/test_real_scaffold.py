"""A scaffold feature step carried out by the real models: written, verified by tests, escalated on failure."""

from __future__ import annotations

from pathlib import Path

from promptkit.backends import LlamaBackend
from promptkit.execution import aexecute_plan
from promptkit.planning import AppSpec, Plan, Step
from promptkit.routing import Deployment, Router, Tier

SPEC = AppSpec(name="textutil", summary="Small text helpers.", stack="python-library")

TESTS = """from textutil.vowels import count_vowels


def test_vowels_are_counted():
    assert count_vowels("hello world") == 3


def test_upper_case_vowels_count_too():
    assert count_vowels("AEIOU") == 5


def test_an_empty_text_has_none():
    assert count_vowels("") == 0
"""


def _plan() -> Plan:
    layout = Step(
        id="layout",
        title="Package and tests",
        kind="render",
        render_files={"textutil/__init__.py": "", "tests/test_vowels.py": TESTS},
        files=["textutil/__init__.py", "tests/test_vowels.py"],
        verifiers=["python-compile"],
    )
    feature = Step(
        id="feature-vowels",
        title="Implement count_vowels",
        kind="generate-code",
        template="implement_step",
        inputs={
            "spec_summary": "textutil: small text helpers, Python 3.10+, standard library only. Package `textutil`.",
            "step": {
                "id": "feature-vowels",
                "title": "Implement count_vowels",
                "description": (
                    "textutil/vowels.py with count_vowels(text: str) -> int: how many of the letters a, e, i, "
                    "o, u (either case) the text holds. The tests in tests/test_vowels.py must pass."
                ),
                "acceptance": ['count_vowels("hello world") == 3', 'count_vowels("") == 0'],
            },
            "allowed_paths": ["textutil/vowels.py"],
        },
        files=["textutil/vowels.py"],
        reads=["tests/test_vowels.py"],
        depends_on=["layout"],
        verifiers=[
            {"python-compile": {"paths": ["textutil"]}},
            {"pytest": {"tests": ["tests/test_vowels.py"]}},
        ],
        max_attempts=2,
    )
    return Plan(spec=SPEC, planner="playbook", steps=[layout, feature])


def _tier(name: str, model: str, **options: object) -> Tier:
    return Tier(name, [Deployment(model, name=name, timeout_s=240)], **options)  # type: ignore[arg-type]


async def test_the_small_model_implements_a_feature_its_tests_verify(small_model, tmp_path: Path):
    router = Router([_tier("small", small_model)])
    report = await aexecute_plan(_plan(), tmp_path / "app", router=router, cache=False, ledger=False)
    feature = report.steps[-1]
    assert feature.status == "passed", report.model_dump_json(indent=1)
    assert feature.tier_name == "small"
    assert "def count_vowels" in (tmp_path / "app" / "textutil" / "vowels.py").read_text()


async def test_a_step_the_small_model_fails_escalates_to_the_medium_model(
    small_model, medium_model, tmp_path
):
    # The 0.5B's answers are cut at 24 tokens here (its backend's max_tokens), so its file never passes: a
    # failure of the cheap tier that is the same on every run. The cascade must carry the step to the 1.5B.
    cut = LlamaBackend(small_model.removeprefix("local:"), n_ctx=4096, max_tokens=24)
    small = Tier("small", [Deployment(cut, name="small", timeout_s=240, local=True)], max_attempts=1)
    router = Router([small, _tier("medium", medium_model)])
    try:
        report = await aexecute_plan(_plan(), tmp_path / "app", router=router, cache=False, ledger=False)
    finally:
        cut.close()
    feature = report.steps[-1]
    assert feature.status == "passed", report.model_dump_json(indent=1)
    assert feature.tier_name == "medium" and feature.escalations == 1
