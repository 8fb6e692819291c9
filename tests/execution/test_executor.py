"""The executor on small hand-built plans, driven by scripted and function backends."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest, ScriptedBackend
from promptkit.execution import NO_MODEL_HINT, RunState, execute_plan
from promptkit.planning import AppSpec, Plan, Step
from promptkit.routing import Router, Tier

SPEC = AppSpec(name="demo", summary="A tiny demo library.", stack="python-library")
GOOD = "def double(x: int) -> int:\n    return 2 * x\n"
BAD = "def double(x: int) -> int\n    return 2 * x\n"  # missing colon: a SyntaxError python-compile reports


def model_step(step_id: str, files: list[str], *, depends_on: list[str] | None = None, **kw: Any) -> Step:
    return Step(
        id=step_id,
        title=f"Step {step_id}",
        kind=kw.pop("kind", "generate-code"),
        template="implement_step",
        inputs={
            "spec_summary": "demo: a tiny library.",
            "step": {"id": step_id, "title": f"Step {step_id}", "description": "Write it.", "acceptance": []},
            "allowed_paths": files,
        },
        files=files,
        depends_on=depends_on or [],
        verifiers=kw.pop("verifiers", [{"python-compile": {"paths": files}}]),
        **kw,
    )


def render_step(step_id: str, files: dict[str, str], **kw: Any) -> Step:
    return Step(
        id=step_id,
        title=f"Render {step_id}",
        kind="render",
        render_files=files,
        files=list(files),
        verifiers=kw.pop("verifiers", ["python-compile"]),
        **kw,
    )


def plan_of(*steps: Step) -> Plan:
    return Plan(spec=SPEC, planner="playbook", steps=list(steps))


def answer(path: str, content: str) -> dict[str, Any]:
    return {"files": [{"path": path, "content": content}], "notes": "done"}


def run(plan: Plan, out: Path, **kw: Any) -> Any:
    kw.setdefault("cache", False)
    kw.setdefault("ledger", False)
    return execute_plan(plan, out, **kw)


def is_repair(request: GenerateRequest) -> bool:
    return "Repair attempt" in request.messages[-1].content


# --- success, repair, escalation, exhaustion ---------------------------------------------------------------


def test_success_at_the_first_tier(tmp_path: Path) -> None:
    backend = ScriptedBackend([answer("lib/double.py", GOOD)])
    plan = plan_of(
        render_step("layout", {"lib/__init__.py": ""}),
        model_step("code", ["lib/double.py"], depends_on=["layout"]),
    )
    report = run(plan, tmp_path / "out", model=backend)
    assert [s.status for s in report.steps] == ["passed", "passed"]
    code = report.steps[1]
    assert (code.attempts, code.model, code.escalations) == (1, "scripted", 0)
    assert (tmp_path / "out/lib/double.py").read_text() == GOOD
    assert code.verifiers[0]["name"] == "python-compile" and code.verifiers[0]["ok"] is True
    assert backend.calls == 1
    # The first request is the step's own template, with the allow-list shown.
    assert "Allowed paths: lib/double.py" in backend.history[0].messages[-1].content
    assert report.totals.output_tokens > 0 and report.ok
    saved = json.loads((tmp_path / "out/.promptkit/runs" / report.run_id / "report.json").read_text())
    assert saved["steps"][1]["status"] == "passed"


def test_verifier_failure_is_repaired_in_the_same_conversation(tmp_path: Path) -> None:
    backend = ScriptedBackend([answer("lib/double.py", BAD), answer("lib/double.py", GOOD)])
    report = run(plan_of(model_step("code", ["lib/double.py"])), tmp_path / "out", model=backend)
    step = report.steps[0]
    assert step.status == "passed" and step.attempts == 2
    first, second = backend.history
    # The repair is the first prompt unchanged (a local model reuses its cached state), then the failed
    # answer and the exact verifier output: file, line and the compiler's message.
    assert second.messages[: len(first.messages)] == first.messages
    failed, errors = second.messages[len(first.messages) :]
    assert failed.role == "assistant" and "def double(x: int) -> int\\n" in failed.content  # the JSON answer
    assert errors.role == "user" and "[python-compile] FAILED" in errors.content
    assert "lib/double.py:1:" in errors.content and "SyntaxError" in errors.content
    assert "fenced code block" in errors.content, "the answer format is restated"
    assert (tmp_path / "out/lib/double.py").read_text() == GOOD


def test_verifier_failure_is_repaired_with_fix_step_on_request(tmp_path: Path) -> None:
    backend = ScriptedBackend([answer("lib/double.py", BAD), answer("lib/double.py", GOOD)])
    plan = plan_of(model_step("code", ["lib/double.py"]))
    report = run(plan, tmp_path / "out", model=backend, repair="template")
    step = report.steps[0]
    assert step.status == "passed" and step.attempts == 2
    repair = backend.history[1].messages[-1].content
    assert is_repair(backend.history[1]) and not is_repair(backend.history[0])
    assert "[python-compile] FAILED" in repair
    assert "lib/double.py:1:" in repair and "SyntaxError" in repair
    # The failed attempt's file is shown to the repair, not the (rolled back) empty workspace.
    assert "def double(x: int) -> int\n" in repair
    assert (tmp_path / "out/lib/double.py").read_text() == GOOD


def test_escalates_to_the_next_tier_when_a_tier_is_spent(tmp_path: Path) -> None:
    cheap = FunctionBackend(lambda r: answer("lib/double.py", BAD), name="cheap")
    strong = FunctionBackend(lambda r: answer("lib/double.py", GOOD), name="strong")
    router = Router([Tier("cheap", [cheap]), Tier("strong", [strong])])
    step = model_step("code", ["lib/double.py"], max_attempts=2)
    report = run(plan_of(step), tmp_path / "out", router=router)
    result = report.steps[0]
    assert result.status == "passed"
    assert (cheap.calls, strong.calls) == (2, 1)
    assert (result.tier, result.tier_name, result.model, result.escalations) == (1, "strong", "strong", 1)
    assert report.totals.escalations == 1
    # The strong tier starts afresh with the step's own template, not a repair of the cheap tier's answer.
    assert not is_repair(strong.history[0])


def test_the_ledger_counts_the_steps_repairs_and_escalations(tmp_path: Path) -> None:
    from promptkit.ledger import Ledger

    cheap = FunctionBackend(lambda r: answer("lib/double.py", BAD), name="cheap")
    strong = FunctionBackend(lambda r: answer("lib/double.py", GOOD), name="strong")
    router = Router([Tier("cheap", [cheap]), Tier("strong", [strong])])
    ledger = Ledger(tmp_path / "ledger.sqlite")
    report = run(
        plan_of(model_step("code", ["lib/double.py"], max_attempts=2)),
        tmp_path / "out",
        router=router,
        ledger=ledger,
    )
    # Each attempt is its own generate() call: cheap, a repair on cheap, then the escalation to strong.
    assert report.ledger is not None
    assert (report.ledger["calls"], report.ledger["retries"], report.ledger["escalations"]) == (3, 1, 1)
    assert ledger.totals(report.run_id).escalations == report.totals.escalations == 1


def test_the_ledger_records_the_verifiers_verdict_and_a_tier_policy_learns_it(tmp_path: Path) -> None:
    # An answer that parses but fails its verifiers is rejected in the ledger, not "accepted": a router
    # trained on scaffold runs must see that the cheap tier failed the step.
    from promptkit.ledger import Ledger
    from promptkit.routing.learned import train_tier_policy

    cheap = FunctionBackend(lambda r: answer("lib/double.py", BAD), name="cheap")
    strong = FunctionBackend(lambda r: answer("lib/double.py", GOOD), name="strong")
    router = Router([Tier("cheap", [cheap], max_attempts=1), Tier("strong", [strong])])
    ledger = Ledger(tmp_path / "ledger.sqlite")
    report = run(
        plan_of(model_step("code", ["lib/double.py"])), tmp_path / "out", router=router, ledger=ledger
    )
    assert report.ok
    rows = ledger.entries(report.run_id)
    assert [(r.tier, r.outcome, r.accepted) for r in rows] == [(0, "invalid", False), (1, "ok", True)]
    assert "[python-compile] FAILED" in (rows[0].error or "") and "SyntaxError" in (rows[0].error or "")
    policy, _ = train_tier_policy(rows, min_calls=1)
    assert [(t.tier, t.calls, t.passed) for t in policy.tiers] == [(0, 1, 0), (1, 1, 1)]
    # Local backends cost no dollars: the policy weighs compute seconds instead.
    assert policy.cost_unit == "seconds" and all(t.seconds > 0 for t in policy.tiers)


def test_route_hint_starts_the_cascade_at_the_hinted_tier(tmp_path: Path) -> None:
    cheap = FunctionBackend(lambda r: answer("lib/double.py", GOOD), name="cheap")
    strong = FunctionBackend(lambda r: answer("lib/double.py", GOOD), name="strong")
    router = Router([Tier("cheap", [cheap]), Tier("strong", [strong])])
    report = run(
        plan_of(model_step("code", ["lib/double.py"], route={"tier": 1})), tmp_path / "out", router=router
    )
    assert report.steps[0].tier_name == "strong" and cheap.calls == 0


def test_exhausted_attempts_give_a_clear_failure_and_skip_dependents(tmp_path: Path) -> None:
    backend = FunctionBackend(lambda r: answer("lib/double.py", BAD))
    plan = plan_of(
        model_step("code", ["lib/double.py"], max_attempts=2),
        render_step("after", {"lib/after.py": "X = 1\n"}, depends_on=["code"]),
    )
    report = run(plan, tmp_path / "out", model=backend)
    code, after = report.steps
    assert code.status == "failed" and code.attempts == 2 and backend.calls == 2
    assert "SyntaxError" in code.errors[-1] and "lib/double.py:1:" in code.errors[-1]
    assert after.status == "skipped" and after.reason == "depends on code, which failed"
    assert not report.ok
    # Nothing of the failed step stays in the workspace; its last files are kept in the run folder.
    assert not (tmp_path / "out/lib/double.py").exists()
    kept = tmp_path / "out/.promptkit/runs" / report.run_id / "failed/code/lib/double.py"
    assert kept.read_text() == BAD


def test_a_step_failing_against_model_written_tests_names_the_assertion_to_check(tmp_path: Path) -> None:
    # The model's test expects double(2) == 5, which no correct code meets: the failure says so.
    wrong_test = "from lib.double import double\n\n\ndef test_double():\n    assert double(2) == 5\n"

    def answers(request: GenerateRequest) -> dict[str, Any]:
        wanted = "tests/test_double.py" if "Step tests" in request.messages[-1].content else "lib/double.py"
        return answer(wanted, wrong_test if wanted.startswith("tests") else GOOD)

    pytest_check = {"pytest": {"tests": ["tests/test_double.py"]}}
    plan = plan_of(
        render_step("layout", {"lib/__init__.py": ""}),
        model_step("tests", ["tests/test_double.py"], depends_on=["layout"], kind="write-tests"),
        model_step("code", ["lib/double.py"], depends_on=["tests"], max_attempts=1, verifiers=[pytest_check]),
    )
    report = run(plan, tmp_path / "out", model=FunctionBackend(answers))
    tests, code = report.steps[1:]
    assert tests.status == "passed" and code.status == "failed"
    assert code.reason is not None
    assert code.reason.startswith(
        "`assert double(2) == 5` failed; tests/test_double.py was written by a model"
    )
    assert "(tests, tier " in code.reason and code.reason.endswith("the test may be wrong")
    # Tests that no model wrote are not suspected.
    rendered = plan_of(
        render_step("layout", {"lib/__init__.py": "", "tests/test_double.py": wrong_test}),
        model_step(
            "code", ["lib/double.py"], depends_on=["layout"], max_attempts=1, verifiers=[pytest_check]
        ),
    )
    report = run(rendered, tmp_path / "other", model=FunctionBackend(answers))
    assert report.steps[1].status == "failed" and report.steps[1].reason is None


def test_schema_failures_go_through_the_same_repair_loop(tmp_path: Path) -> None:
    backend = ScriptedBackend(["this is not json", answer("lib/double.py", GOOD)])
    report = run(plan_of(model_step("code", ["lib/double.py"])), tmp_path / "out", model=backend)
    assert report.steps[0].status == "passed" and report.steps[0].attempts == 2
    assert "is not in the files format" in backend.history[1].messages[-1].content


def test_render_step_that_fails_its_verifier_fails(tmp_path: Path) -> None:
    report = run(plan_of(render_step("layout", {"pkg/bad.py": BAD})), tmp_path / "out")
    assert report.steps[0].status == "failed"
    assert "SyntaxError" in report.steps[0].errors[0]
    assert not (tmp_path / "out/pkg/bad.py").exists()


# --- the workspace boundary ----------------------------------------------------------------------------------


@pytest.mark.parametrize("evil", ["../outside/pwned.py", "/tmp/promptkit-pwned.py", "link/pwned.py"])
def test_escaping_writes_are_refused_reported_and_fed_back(tmp_path: Path, evil: str) -> None:
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    out.mkdir()
    os.symlink(outside, out / "link")
    backend = ScriptedBackend([answer(evil, "x = 1\n"), answer(evil, "x = 2\n")])
    step = model_step("code", ["lib/double.py", "link/**"], max_attempts=2)
    report = run(plan_of(step), out, model=backend)
    result = report.steps[0]
    assert result.status == "failed"
    assert "refused" in result.errors[-1] and evil in result.errors[-1]
    # The refusal went back to the model as an error, like a verifier failure.
    assert "refused" in backend.history[1].messages[-1].content
    assert list(outside.iterdir()) == []
    assert not Path("/tmp/promptkit-pwned.py").exists()


def test_files_off_the_allow_list_are_not_written_and_the_allowed_file_is_still_tried(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        [
            {
                "files": [{"path": "lib/double.py", "content": GOOD}, {"path": "setup.py", "content": "x"}],
                "notes": "",
            }
        ]
    )
    out = tmp_path / "out"
    report = run(plan_of(model_step("code", ["lib/double.py"], max_attempts=1)), out, model=backend)
    assert report.steps[0].status == "passed", report.steps[0].errors
    assert (out / "lib/double.py").read_text() == GOOD
    assert not (out / "setup.py").exists()
    log = (next((out / ".promptkit/runs").iterdir()) / "log.jsonl").read_text()
    assert '"edit_ignored"' in log and "setup.py" in log


def test_an_answer_with_only_files_off_the_allow_list_is_refused(tmp_path: Path) -> None:
    backend = ScriptedBackend([{"files": [{"path": "setup.py", "content": "x"}], "notes": ""}])
    out = tmp_path / "out"
    report = run(plan_of(model_step("code", ["lib/double.py"], max_attempts=1)), out, model=backend)
    assert report.steps[0].status == "failed"
    assert "'setup.py'" in report.steps[0].errors[-1] and "allow-list" in report.steps[0].errors[-1]
    assert not (out / "setup.py").exists()


# --- unified diffs through the executor ----------------------------------------------------------------------

DIFF_TEMPLATE = """\
name: edit_by_diff
version: 1.0.0
description: Change files by unified diffs (a test template).
inputs:
  files:
    type: string
    description: Current files.
  allowed_paths:
    type: array
    items: {type: string}
    description: Paths the diff may touch.
output:
  type: object
  properties:
    files:
      type: array
      items:
        type: object
        properties:
          path: {type: string}
          diff: {type: string}
        required: [path, diff]
  required: [files]
messages:
  - role: user
    content: |
      Edit {{ allowed_paths | join(", ") }} with unified diffs.
      {{ files }}
"""


@pytest.fixture
def diff_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from promptkit.generation import reset_defaults
    from promptkit.prompts import default_registry

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "edit_by_diff.yaml").write_text(DIFF_TEMPLATE)
    monkeypatch.setenv("PROMPTKIT_TEMPLATE_PATH", str(templates))
    reset_defaults()
    default_registry(refresh=True)
    yield
    monkeypatch.undo()
    reset_defaults()
    default_registry(refresh=True)


@pytest.mark.usefixtures("diff_template")
def test_unified_diff_answers_are_applied(tmp_path: Path) -> None:
    stale = "@@ -1,2 +1,2 @@\n def double(x: int) -> int:\n-    return x + x\n+    return x * 2\n"
    fresh = "@@ -1,2 +1,2 @@\n def double(x: int) -> int:\n-    return 2 * x\n+    return x * 2\n"
    edit = Step(
        id="edit",
        title="Edit by diff",
        kind="refactor",
        template="edit_by_diff",
        inputs={"allowed_paths": ["lib/double.py"]},
        files=["lib/double.py"],
        depends_on=["layout"],
        verifiers=["python-compile"],
    )
    plan = plan_of(render_step("layout", {"lib/double.py": GOOD}), edit)
    wanted = "def double(x: int) -> int:\n    return x * 2\n"

    backend = ScriptedBackend([{"files": [{"path": "lib/double.py", "diff": fresh}]}])
    report = run(plan, tmp_path / "one", model=backend)
    assert report.steps[1].status == "passed" and report.steps[1].attempts == 1, report.steps[1].errors
    assert (tmp_path / "one/lib/double.py").read_text() == wanted

    # A stale diff fails with the exact mismatch, which the repair receives (and answers with a fresh diff).
    backend = ScriptedBackend(
        [
            {"files": [{"path": "lib/double.py", "diff": stale}]},
            {"files": [{"path": "lib/double.py", "diff": fresh}]},
        ]
    )
    report = run(plan, tmp_path / "two", model=backend)
    assert report.steps[1].status == "passed" and report.steps[1].attempts == 2
    repair = backend.history[1].messages[-1].content
    assert "hunk 1 (diff line 1) does not apply: line 2 is '    return 2 * x'" in repair
    assert "the diff expects '    return x + x'" in repair
    assert (tmp_path / "two/lib/double.py").read_text() == wanted


# --- concurrency -------------------------------------------------------------------------------------------


def _tracking_backend() -> tuple[FunctionBackend, dict[str, int]]:
    seen = {"now": 0, "max": 0}

    async def fn(request: GenerateRequest) -> dict[str, Any]:
        seen["now"] += 1
        seen["max"] = max(seen["max"], seen["now"])
        await asyncio.sleep(0.3)
        seen["now"] -= 1
        path = (
            request.messages[-1]
            .content.split("Allowed paths: ", 1)[1]
            .split("\n", 1)[0]
            .split(",")[0]
            .strip()
        )
        return answer(path, GOOD)

    return FunctionBackend(fn), seen


def test_independent_steps_with_disjoint_files_run_concurrently(tmp_path: Path) -> None:
    backend, seen = _tracking_backend()
    plan = plan_of(
        model_step("a", ["lib/a.py"]), model_step("b", ["lib/b.py"]), model_step("c", ["lib/c.py"])
    )
    report = run(plan, tmp_path / "out", model=backend, concurrency=2)
    assert report.complete and seen["max"] == 2


def test_steps_sharing_files_do_not_run_together(tmp_path: Path) -> None:
    backend, seen = _tracking_backend()
    plan = plan_of(model_step("a", ["lib/a.py"]), model_step("b", ["lib/*.py"]))
    report = run(plan, tmp_path / "out", model=backend, concurrency=4)
    assert report.complete and seen["max"] == 1


# --- no model, confirm, run state ------------------------------------------------------------------------------


def test_without_a_model_render_steps_run_and_model_steps_are_skipped_with_the_hint(tmp_path: Path) -> None:
    plan = plan_of(
        render_step("layout", {"lib/__init__.py": ""}),
        model_step("code", ["lib/double.py"], depends_on=["layout"]),
        model_step("tests", ["tests/test_double.py"], depends_on=["code"], kind="write-tests"),
    )
    report = run(plan, tmp_path / "out")
    assert [s.status for s in report.steps] == ["passed", "skipped", "skipped"]
    assert NO_MODEL_HINT in (report.steps[1].reason or "")
    assert "--model local:/path/model.gguf" in NO_MODEL_HINT and "OPENAI_API_KEY" in NO_MODEL_HINT
    assert report.steps[2].reason == "depends on code, which was skipped (no model configured)"
    assert report.ok and report.no_model and not report.complete
    assert report.steps[1].attempts == 0 and report.totals.model_calls == 0


def test_confirm_sees_the_step_then_the_diff_and_can_decline(tmp_path: Path) -> None:
    seen: list[tuple[str, str | None]] = []

    def confirm(step: Step, diff: str | None) -> bool:
        seen.append((step.id, diff))
        return diff is None  # yes to the plan, no to the change

    backend = ScriptedBackend([answer("lib/double.py", GOOD)])
    report = run(
        plan_of(model_step("code", ["lib/double.py"])), tmp_path / "out", model=backend, confirm=confirm
    )
    assert report.steps[0].status == "skipped" and report.steps[0].reason == "declined at --confirm"
    assert seen[0] == ("code", None)
    assert (
        seen[1][0] == "code"
        and "+++ b/lib/double.py" in (seen[1][1] or "")
        and "+    return 2 * x" in (seen[1][1] or "")
    )
    assert not (tmp_path / "out/lib/double.py").exists()


def test_every_transition_is_checkpointed(tmp_path: Path) -> None:
    backend = ScriptedBackend([answer("lib/double.py", BAD), answer("lib/double.py", GOOD)])
    report = run(plan_of(model_step("code", ["lib/double.py"])), tmp_path / "out", model=backend)
    with RunState.for_workspace(tmp_path / "out") as state:
        step = state.step(report.run_id, "code")
        events = [e["event"] for e in state.events(report.run_id)]
    assert step.status == "passed" and step.attempts == 2 and step.runs == 1
    assert step.files["lib/double.py"] is not None
    assert events == [
        "run_started",
        "step_started",
        "attempt",
        "verified",
        "attempt",
        "verified",
        "step_passed",
        "run_finished",
    ]
    log = (tmp_path / "out/.promptkit/runs" / report.run_id / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in log] == events


def _fix_step(**kw: Any) -> Step:
    return Step(
        id="fix",
        title="Fix lib/double.py",
        kind="fix",
        template="fix_step",
        inputs={"step": {"id": "fix", "title": "Fix lib/double.py", "description": "Make it compile."}},
        files=["lib/double.py"],
        depends_on=["layout"],
        verifiers=["python-compile"],
        **kw,
    )


def test_fix_step_starts_from_the_verifiers_current_errors(tmp_path: Path) -> None:
    backend = ScriptedBackend([answer("lib/double.py", GOOD)])
    plan = plan_of(render_step("layout", {"lib/double.py": BAD}, verifiers=[]), _fix_step())
    report = run(plan, tmp_path / "out", model=backend)
    assert report.steps[1].status == "passed" and report.steps[1].attempts == 1
    first = backend.history[0].messages[-1].content
    assert "Repair attempt 1." in first and "SyntaxError" in first and "lib/double.py:1:" in first
    assert (tmp_path / "out/lib/double.py").read_text() == GOOD


def test_fix_step_with_passing_verifiers_needs_no_model_call(tmp_path: Path) -> None:
    backend = ScriptedBackend([])
    plan = plan_of(render_step("layout", {"lib/double.py": GOOD}, verifiers=[]), _fix_step())
    report = run(plan, tmp_path / "out", model=backend)
    assert report.steps[1].status == "passed" and backend.calls == 0
    assert report.steps[1].reason == "the verifiers already pass; nothing to fix"


BIG_MODULE = '"""Helpers."""\n\n\n' + "\n\n".join(
    f'def helper_{i}(x: int) -> int:\n    """Helper {i}."""\n    return x + {i}  # body {i}\n'
    for i in range(40)
)


def test_a_step_sees_its_own_files_whole_and_large_modules_it_reads_as_outlines(tmp_path: Path) -> None:
    seen: list[str] = []

    def reply(request: GenerateRequest) -> str:
        seen.append(request.messages[-1].content)
        return "lib/double.py\n```python\n" + GOOD + "```\n"

    plan = plan_of(
        render_step(
            "layout", {"lib/__init__.py": "", "lib/helpers.py": BIG_MODULE, "lib/small.py": "X = 1\n"}
        ),
        model_step(
            "code", ["lib/double.py"], depends_on=["layout"], reads=["lib/helpers.py", "lib/small.py"]
        ),
    )
    report = run(plan, tmp_path / "out", model=FunctionBackend(reply))
    assert [s.status for s in report.steps] == ["passed", "passed"]
    prompt = seen[0]
    assert "### FILE: lib/helpers.py (outline: signatures and docstrings)" in prompt
    assert 'def helper_39(x: int) -> int:\n    """Helper 39."""\n    ...' in prompt
    assert "# body" not in prompt, "bodies of a module the step only reads are left out"
    assert "### FILE: lib/small.py\nX = 1" in prompt, "a small file is shown whole"


def test_a_fenced_answer_without_a_path_goes_to_the_steps_one_file(tmp_path: Path) -> None:
    unused_import = "import os\n\n\n" + GOOD
    backend = FunctionBackend(lambda r: "Here it is:\n```python\n" + unused_import + "```")
    plan = plan_of(
        render_step("layout", {"lib/__init__.py": ""}),
        model_step("code", ["lib/double.py"], depends_on=["layout"], verifiers=["ruff"]),
    )
    report = run(plan, tmp_path / "out", model=backend)
    assert report.steps[-1].status == "passed", report.steps[-1].errors
    written = (tmp_path / "out" / "lib" / "double.py").read_text()
    assert "import os" not in written and written.strip() == GOOD.strip(), "ruff's safe fixes ran first"
    assert (tmp_path / "out").joinpath(".promptkit").exists()
    answers = list((tmp_path / "out" / ".promptkit" / "runs").glob("*/answers/code/01-*.md"))
    assert answers and answers[0].read_text().startswith("Here it is:")


def test_a_repeated_failed_answer_makes_the_next_attempt_a_fresh_sample(tmp_path: Path) -> None:
    backend = ScriptedBackend([answer("lib/double.py", BAD)] * 2 + [answer("lib/double.py", GOOD)])
    report = run(plan_of(model_step("code", ["lib/double.py"])), tmp_path / "out", model=backend)
    assert report.steps[0].status == "passed" and report.steps[0].attempts == 3
    first, second, third = backend.history
    assert len(second.messages) == len(first.messages) + 2, "the first repair continues the conversation"
    assert third.messages == first.messages, "the same wrong answer twice: the prompt alone, afresh"
    assert (first.temperature, third.temperature, third.seed) == (None, 0.6, 3), "sampled, reproducibly"


def test_complete_file_prefills_the_answer_with_the_file_up_to_its_first_body(tmp_path: Path) -> None:
    from promptkit.backends import Capabilities

    skeleton = 'def double(x: int) -> int:\n    """Twice x."""\n    ...\n'
    seen: list[GenerateRequest] = []

    def continue_it(
        request: GenerateRequest,
    ) -> str:  # a backend that continues the prefill, as local ones do
        seen.append(request)
        return request.messages[-1].content + "    return 2 * x\n```\n"

    step = model_step("code", ["lib/double.py"], depends_on=["layout"], verifiers=["python-compile"])
    step = step.model_copy(update={"template": "complete_file"})
    plan = plan_of(render_step("layout", {"lib/__init__.py": "", "lib/double.py": skeleton}), step)
    backend = FunctionBackend(continue_it, capabilities=Capabilities(prefill=True))
    report = run(plan, tmp_path / "out", model=backend)
    assert [s.status for s in report.steps] == ["passed", "passed"], report.steps[1]
    (request,) = seen
    assert request.messages[-1].role == "assistant"
    assert (
        request.messages[-1].content
        == 'lib/double.py\n```python\ndef double(x: int) -> int:\n    """Twice x."""\n'
    )
    assert "Complete lib/double.py" in request.messages[-2].content
    assert (tmp_path / "out/lib/double.py").read_text() == (
        'def double(x: int) -> int:\n    """Twice x."""\n    return 2 * x\n'
    )


def test_a_prefilled_step_asked_afresh_after_a_copied_answer_is_told_what_failed(tmp_path: Path) -> None:
    from promptkit.backends import Capabilities

    skeleton = 'def double(x: int) -> int:\n    """Twice x."""\n    ...\n'
    seen: list[GenerateRequest] = []

    def continue_it(request: GenerateRequest) -> str:  # wrong twice (the same answer), then right
        seen.append(request)
        body = "    return 2 * x\n" if len(seen) == 3 else "    return x +\n"
        return request.messages[-1].content + body + "```\n"

    step = model_step("code", ["lib/double.py"], depends_on=["layout"], verifiers=["python-compile"])
    step = step.model_copy(update={"template": "complete_file", "max_attempts": 3})
    plan = plan_of(render_step("layout", {"lib/__init__.py": "", "lib/double.py": skeleton}), step)
    backend = FunctionBackend(continue_it, capabilities=Capabilities(prefill=True))
    report = run(plan, tmp_path / "out", model=backend)
    assert report.steps[1].status == "passed" and report.steps[1].attempts == 3
    first, second, third = seen
    assert "An earlier attempt failed" not in first.messages[-2].content
    assert len(second.messages) == len(first.messages) + 2, "the first repair continues the conversation"
    # Afresh: the prompt alone, with what failed before (not the copied answer, which a model copies again).
    assert len(third.messages) == len(first.messages)
    told = third.messages[-2].content
    assert "An earlier attempt failed these checks" in told and "SyntaxError" in told
    assert "lib/double.py:3" in told


def test_stub_prefix_stops_at_the_first_declared_body() -> None:
    from promptkit.execution._outline import stub_prefix

    source = "import os\n\n\ndef a():\n    ...\n\n\ndef b():\n    ...\n"
    assert stub_prefix(source) == "import os\n\n\ndef a():"
    assert stub_prefix("x = 1\n\n") == "x = 1"
