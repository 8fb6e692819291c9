"""Workspace safety: a step's edits are applied only inside its allow-list, verified, and rolled back on failure.

Every edit is checked before anything is written, so a refused edit leaves the workspace untouched; the
files a step changes are saved first (the run's checkpoint of originals), so a failed attempt, a failed step
or an interrupted run can be undone. Applying and verifying hold one lock: every verifier sees the finished
steps plus the step under test, never another step's half-done work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import promptkit.tracing as tracing
from promptkit.errors import WorkspaceError
from promptkit.execution._edits import FileEdit, render_diff
from promptkit.execution._run_context import RunContext, StepRun
from promptkit.execution._tidy import tidy_python
from promptkit.execution._tracing import trace_verifiers
from promptkit.execution._verifiers import VerifierResult, run_verifiers

__all__ = ["Declined", "apply_and_verify", "verifier_record", "verifier_text", "verify"]

_ERRORS_LIMIT = 3_000  # a repair turn costs prefill time on a local model: the first errors matter most


class Declined(Exception):
    """The person at --confirm said no."""


def verifier_text(results: Sequence[VerifierResult]) -> str:
    """The exact verifier output for the repair prompt, failures first."""
    parts = []
    for result in sorted(results, key=lambda r: r.ok):
        if result.ok:
            parts.append(f"[{result.name}] passed: {result.summary}")
        else:
            parts.append(f"[{result.name}] FAILED: {result.summary}\n{result.details}".rstrip())
    text = "\n\n".join(parts)
    return text if len(text) <= _ERRORS_LIMIT else text[:_ERRORS_LIMIT] + "\n[… truncated …]"


def verifier_record(result: VerifierResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "ok": result.ok,
        "summary": result.summary,
        "duration_s": result.duration_s,
        "counts": dict(result.counts),
    }


async def verify(ex: RunContext, run: StepRun) -> list[VerifierResult]:
    """Run the step's verifiers on the workspace as it stands (the caller holds ``ex.verify_lock``)."""
    clock = time.perf_counter()
    with tracing.span("promptkit.verify", {"promptkit.step.id": run.step.id}) as span:
        results = await run_verifiers(ex.workspace.root, run.step.verifiers)
        if span:
            trace_verifiers(span, results)
    spent = time.perf_counter() - clock
    ex.timings["verifiers_s"] += spent
    run.state.verifier_s += spent
    run.state.verifiers = [verifier_record(r) for r in results]
    return results


def _drop_off_list(
    ex: RunContext, run: StepRun, edits: Sequence[FileEdit], attempt: int
) -> Sequence[FileEdit]:
    """The edits inside the step's allow-list, when there are any: a small model often adds a file it was not
    asked for (the tests it should pass, a placeholder copied from the format's instructions). Those are not
    written, and the answer's own file is still tried. An answer with no allowed edit is refused whole."""
    kept, dropped = [], []
    for edit in edits:
        try:
            ex.workspace.check(edit.path, run.step.files, step=run.step.id)
        except WorkspaceError as exc:
            dropped.append(str(exc))
        else:
            kept.append(edit)
    if not kept or not dropped:
        return edits
    for error in dropped:
        ex.log("edit_ignored", run.step.id, attempt=attempt, error=error)
    return kept


async def apply_and_verify(
    ex: RunContext, run: StepRun, edits: Sequence[FileEdit], *, attempt: int
) -> str | None:
    """Apply ``edits`` and run the verifiers; None when they pass, else the error text to feed back
    (the attempt's files are then rolled back)."""
    step, state = run.step, run.state
    async with ex.verify_lock:
        clock = time.perf_counter()
        # Check everything before writing anything: a refused edit leaves the workspace untouched.
        planned: dict[str, tuple[str | None, str | None]] = {}
        edits = _drop_off_list(ex, run, edits, attempt)
        try:
            for edit in edits:
                ex.workspace.check(edit.path, step.files, step=step.id)
                before = ex.workspace.read(edit.path)
                after = edit.apply(before)
                if after is not None and edit.path.endswith(".py") and ex.tidy and step.uses_model:
                    after = await asyncio.to_thread(tidy_python, after, edit.path, ex.workspace.root)
                planned[edit.path] = (before, after)
        except WorkspaceError as exc:
            ex.log("edit_refused", step.id, attempt=attempt, error=str(exc))
            return str(exc)
        run.last_files = {path: after for path, (_, after) in planned.items()}
        if ex.confirm is not None:
            diff = "".join(render_diff(p, before, after) for p, (before, after) in planned.items())
            if not ex.confirm(step, diff):
                raise Declined
        for path, (before, _) in planned.items():
            if not ex.state.has_original(ex.run_id, step.id, path):
                ex.state.save_original(ex.run_id, step.id, path, before)
        for path, (_, after) in planned.items():
            written = (
                ex.workspace.delete(path, step.files, step=step.id)
                if after is None
                else ex.workspace.write(path, after, step.files, step=step.id)
            )
            state.files[written.path] = written.sha256
        ex.timings["apply_s"] += time.perf_counter() - clock
        results = await verify(ex, run)
        ok = all(r.ok for r in results)
        ex.log("verified", step.id, attempt=attempt, ok=ok, verifiers=[verifier_record(r) for r in results])
        if ok:
            return None
        # Roll back: the workspace only ever holds finished steps and the step being verified.
        ex.state.restore_originals(ex.run_id, step.id, ex.workspace)
        state.files = {}
        return verifier_text(results)
