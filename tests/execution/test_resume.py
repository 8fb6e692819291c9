"""Checkpoint and resume: a real SIGKILL mid-step loses no finished step and redoes none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from promptkit.backends import ScriptedBackend
from promptkit.errors import WorkspaceError
from promptkit.execution import Executor, RunState, Workspace, execute_plan, resume_run
from tests.execution.test_executor import GOOD, answer, model_step, plan_of, render_step

# Runs a plan (or resumes a run) in its own process. The backend notes every call in CALLS; a call for step
# "c" waits while BLOCK exists, so the test can kill the process in the middle of that step.
SCRIPT = r"""
import asyncio, os, sys
from pathlib import Path
from promptkit.backends import FunctionBackend
from promptkit.execution import execute_plan, resume_run
from promptkit.planning import Plan

out, calls, block, plan_file, mode = map(Path, sys.argv[1:6])
GOOD = "def f(x: int) -> int:\n    return 2 * x\n"

async def fn(request):
    text = request.messages[-1].content
    step = text.split("Step: Step ", 1)[1].split("\n", 1)[0].strip()
    path = text.split("Allowed paths: ", 1)[1].split("\n", 1)[0].strip()
    with open(calls, "a") as f:
        f.write(f"{step} {os.getpid()}\n")
    while step == "c" and block.exists():
        await asyncio.sleep(0.02)
    return {"files": [{"path": path, "content": GOOD}], "notes": ""}

backend = FunctionBackend(fn)
started = lambda run_id: (out.parent / "run_id").write_text(run_id)
options = dict(model=backend, cache=False, ledger=False, on_start=started)
if str(mode) == "start":
    report = execute_plan(Plan.from_json(plan_file.read_text()), out, **options)
else:
    report = resume_run((out.parent / "run_id").read_text(), out, **options)
print(report.summary())
sys.exit(0 if report.complete else 3)
"""


def _events(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_sigkill_mid_step_then_resume_runs_every_step_exactly_once(tmp_path: Path) -> None:
    plan = plan_of(
        render_step("a", {"lib/__init__.py": ""}),
        model_step("b", ["lib/b.py"], depends_on=["a"]),
        model_step("c", ["lib/c.py"], depends_on=["b"]),
        render_step("d", {"lib/d.py": "from lib.c import f\n\nX = f(2)\n"}, depends_on=["c"]),
    )
    out, calls, block = tmp_path / "out", tmp_path / "calls.txt", tmp_path / "block"
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.to_json())
    (tmp_path / "script.py").write_text(SCRIPT)
    block.touch()
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}

    def launch(mode: str) -> subprocess.Popen[str]:
        args = [
            sys.executable,
            str(tmp_path / "script.py"),
            str(out),
            str(calls),
            str(block),
            str(plan_file),
            mode,
        ]
        return subprocess.Popen(
            args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    first = launch("start")
    deadline = time.monotonic() + 60
    while True:
        if first.poll() is not None:
            pytest.fail(
                f"the run ended before it could be killed: {first.stdout.read() if first.stdout else ''}"
            )
        run_id = (tmp_path / "run_id").read_text() if (tmp_path / "run_id").exists() else None
        events = _events(out / ".promptkit/runs" / run_id / "log.jsonl") if run_id else []
        passed = {e["step"] for e in events if e["event"] == "step_passed"}
        in_c = calls.exists() and any(line.startswith("c ") for line in calls.read_text().splitlines())
        if {"a", "b"} <= passed and in_c:
            break
        assert time.monotonic() < deadline, "timed out waiting for step c to start"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    assert not (out / "lib/c.py").exists()

    with RunState.for_workspace(out) as state:
        before = state.steps(run_id)
    assert {k: v.status for k, v in before.items()} == {
        "a": "passed",
        "b": "passed",
        "c": "running",
        "d": "pending",
    }

    block.unlink()
    second = launch("resume")
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output

    pids = [line.split() for line in calls.read_text().splitlines()]
    per_step = Counter(step for step, _ in pids)
    # b finished before the kill and was not asked again; c was interrupted once and redone once.
    assert per_step == {"b": 1, "c": 2}
    assert len({pid for step, pid in pids if step == "c"}) == 2
    with RunState.for_workspace(out) as state:
        after = state.steps(run_id)
        events = state.events(run_id)
    assert {k: v.status for k, v in after.items()} == dict.fromkeys("abcd", "passed")
    assert {k: v.runs for k, v in after.items()} == {"a": 1, "b": 1, "c": 2, "d": 1}
    started = Counter(e["step"] for e in events if e["event"] == "step_started")
    assert started == {"a": 1, "b": 1, "c": 2, "d": 1}
    assert [e["step"] for e in events if e["event"] == "step_interrupted"] == ["c"]
    assert (out / "lib/c.py").read_text() == GOOD.replace("double", "f")
    report = json.loads((out / ".promptkit/runs" / run_id / "report.json").read_text())
    assert [s["status"] for s in report["steps"]] == ["passed"] * 4


def test_interrupted_step_is_undone_from_its_originals_and_redone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = plan_of(
        render_step("layout", {"lib/__init__.py": "VERSION = 1\n"}),
        model_step("code", ["lib/double.py", "lib/__init__.py"], depends_on=["layout"]),
    )
    # A first process: layout passes, then "code" starts, saves originals and writes, and the process dies.
    executor = Executor(plan, out, cache=False, ledger=False)
    run_id = executor.start()
    layout = executor.state.step(run_id, "layout")
    layout.status = "passed"
    layout.files = {"lib/__init__.py": executor.workspace.write("lib/__init__.py", "VERSION = 1\n").sha256}
    executor.state.save_step(run_id, layout, clear_originals=True)
    code = executor.state.step(run_id, "code")
    code.status = "running"
    executor.state.save_step(run_id, code)
    executor.state.save_original(run_id, "code", "lib/__init__.py", "VERSION = 1\n")
    executor.state.save_original(run_id, "code", "lib/double.py", None)
    executor.workspace.write("lib/__init__.py", "half-written garbage")
    executor.workspace.write("lib/double.py", "also garbage")
    executor.close()

    backend = ScriptedBackend([answer("lib/double.py", GOOD)])
    report = resume_run(run_id, out, model=backend, cache=False, ledger=False)
    assert [s.status for s in report.steps] == ["passed", "passed"]
    assert (out / "lib/__init__.py").read_text() == "VERSION = 1\n"
    assert (out / "lib/double.py").read_text() == GOOD
    # The redo started from the restored workspace: the model saw the original __init__, not the garbage.
    shown = backend.history[0].messages[-1].content
    assert "VERSION = 1" in shown and "garbage" not in shown
    assert report.steps[0].runs == 0 and report.steps[1].runs == 1


def test_resume_refuses_when_a_finished_step_file_changed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = plan_of(
        render_step("layout", {"lib/__init__.py": ""}),
        model_step("code", ["lib/double.py"], depends_on=["layout"]),
    )
    first = execute_plan(plan, out, cache=False, ledger=False)
    assert [s.status for s in first.steps] == ["passed", "skipped"]
    Workspace(out).write("lib/__init__.py", "edited by hand\n")
    with pytest.raises(
        WorkspaceError, match=r"files of finished steps changed since they passed: lib/__init__.py"
    ):
        resume_run(
            first.run_id,
            out,
            model=ScriptedBackend([answer("lib/double.py", GOOD)]),
            cache=False,
            ledger=False,
        )


def test_resume_runs_skipped_steps_once_a_model_is_given(tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = plan_of(
        render_step("layout", {"lib/__init__.py": ""}),
        model_step("code", ["lib/double.py"], depends_on=["layout"]),
    )
    first = execute_plan(plan, out, cache=False, ledger=False)
    backend = ScriptedBackend([answer("lib/double.py", GOOD)])
    again = resume_run(first.run_id[:12], out, model=backend, cache=False, ledger=False)
    assert again.run_id == first.run_id
    assert [s.status for s in again.steps] == ["passed", "passed"]
    assert again.steps[0].runs == 1  # the render step was not redone
    assert backend.calls == 1


def test_unknown_run_id_names_recent_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = execute_plan(
        plan_of(render_step("layout", {"lib/__init__.py": ""})), out, cache=False, ledger=False
    )
    with pytest.raises(WorkspaceError, match=f"no run 'nope'; recent runs: {first.run_id}"):
        resume_run("nope", out, cache=False, ledger=False)
