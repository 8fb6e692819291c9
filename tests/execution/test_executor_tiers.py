"""Per-tier attempts in the executor: a tier's own attempts override the plan step's, from code or config."""

from __future__ import annotations

from pathlib import Path

from promptkit.backends import FunctionBackend, register_backend
from promptkit.config import load_config
from promptkit.execution import RunState
from promptkit.routing import Router, Tier
from tests.execution.test_executor import BAD, GOOD, answer, model_step, plan_of, run


def test_one_attempt_on_the_cheap_tier_then_escalate(tmp_path: Path) -> None:
    cheap = FunctionBackend(lambda r: answer("lib/double.py", BAD), name="cheap")
    strong = FunctionBackend(lambda r: answer("lib/double.py", GOOD), name="strong")
    router = Router([Tier("cheap", [cheap], max_attempts=1), Tier("strong", [strong])])
    report = run(
        plan_of(model_step("code", ["lib/double.py"], max_attempts=3)), tmp_path / "out", router=router
    )
    step = report.steps[0]
    assert step.status == "passed" and (step.tier_name, step.attempts, step.escalations) == ("strong", 2, 1)
    assert (cheap.calls, strong.calls) == (1, 1)
    with RunState.for_workspace(tmp_path / "out") as state:
        events = [(e["event"], e.get("tier"), e.get("to_tier")) for e in state.events(report.run_id)]
    # The cheap tier is spent after its one attempt, and the step moves up.
    handover = [e for e in events if e[0] in ("tier_exhausted", "step_escalated")]
    assert handover == [("tier_exhausted", "cheap", None), ("step_escalated", None, "strong")]


def test_a_tiers_attempts_can_also_exceed_the_steps(tmp_path: Path) -> None:
    answers = iter([BAD, BAD, GOOD])
    cheap = FunctionBackend(lambda r: answer("lib/double.py", next(answers)), name="cheap")
    router = Router([Tier("cheap", [cheap], max_attempts=3)])
    report = run(
        plan_of(model_step("code", ["lib/double.py"], max_attempts=1)), tmp_path / "out", router=router
    )
    assert report.steps[0].status == "passed" and report.steps[0].attempts == 3 and cheap.calls == 3


def test_attempts_on_a_router_tiers_entry_reach_the_executor(tmp_path: Path) -> None:
    calls = {"cheap": 0, "strong": 0}

    def coder(target: str, **options: object) -> FunctionBackend:
        def write(request: object) -> dict[str, object]:
            calls[target] += 1
            return answer("lib/double.py", BAD if target == "cheap" else GOOD)

        return FunctionBackend(write, name=target)

    register_backend("tiertest", coder)
    (tmp_path / "promptkit.toml").write_text(
        """
[models.cheap]
model = "tiertest:cheap"
[models.strong]
model = "tiertest:strong"
[[router.tiers]]
model = "cheap"
attempts = 1
[[router.tiers]]
model = "strong"
""",
        encoding="utf-8",
    )
    router = Router.from_config(load_config(path=tmp_path / "promptkit.toml"))
    report = run(
        plan_of(model_step("code", ["lib/double.py"], max_attempts=3)), tmp_path / "out", router=router
    )
    assert report.steps[0].status == "passed" and report.steps[0].tier_name == "strong"
    assert calls == {"cheap": 1, "strong": 1}
