"""What a model step's prompt holds: the step, its allow-list, the files it needs, the errors to repair.

Files a step only reads are shown whole up to :data:`OUTLINE_OVER_CHARS`, as an outline above it: on a CPU,
every prompt token costs prefill time, and a model using a module needs its signatures, not its bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptkit.execution._outline import outline_python, stub_prefix
from promptkit.execution._run_context import RunContext, StepRun
from promptkit.planning import Step

__all__ = ["OUTLINE_OVER_CHARS", "context_files", "step_inputs"]

OUTLINE_OVER_CHARS = 1500


def context_files(ex: RunContext, run: StepRun) -> str:
    """The files the model sees: the step's own (as its last attempt left them) in full; what it reads (or,
    when it names nothing to read, what its dependencies wrote) in full when small, else as an outline
    (signatures and docstrings). A step that names its reads gets only those: every other file costs
    prefill time, and small models copy what they are shown."""
    step = run.step
    own = [*ex.workspace.matching(step.files), *run.last_files]
    others = list(ex.workspace.matching(step.reads))
    for dep in [] if step.reads else step.depends_on:
        dep_run = ex.step_runs.get(dep)
        dep_state = dep_run.state if dep_run else ex.state.step(ex.run_id, dep)
        others += [p for p, digest in dep_state.files.items() if digest is not None]
    blocks = []
    # The files to write come last, nearest the answer: shown first, small models tend to copy the whole
    # listing that follows them instead of writing the file.
    for path in dict.fromkeys([*[p for p in others if p not in own], *own]):
        content = run.last_files[path] if path in run.last_files else ex.workspace.read(path)
        if content is None:
            continue
        is_test = path.startswith("tests/") or path.rsplit("/", 1)[-1].startswith("test_")
        # A test's body is what it checks, so tests are never outlined.
        if path not in own and path.endswith(".py") and not is_test and len(content) > OUTLINE_OVER_CHARS:
            outline = outline_python(content)
            if outline is not None:
                blocks.append(f"### FILE: {path} (outline: signatures and docstrings)\n{outline.rstrip()}\n")
                continue
        blocks.append(f"### FILE: {path}\n{content.rstrip()}\n")
    return "\n".join(blocks) if blocks else "(none)"


def _step_object(step: Step) -> dict[str, Any]:
    given = step.inputs.get("step")
    if isinstance(given, Mapping):
        return dict(given)
    return {
        "id": step.id,
        "title": step.title,
        "description": step.description,
        "acceptance": step.acceptance,
    }


def step_inputs(
    ex: RunContext, run: StepRun, template: Any, *, errors: str | None, attempt: int
) -> dict[str, Any]:
    """The inputs of ``template`` for this step: the step's own inputs (for its own template), and whichever
    of ``step``, ``allowed_paths``, ``files``, ``prefix``, ``errors`` and ``attempt`` the template declares."""
    step = run.step
    declared = set(getattr(template, "inputs", {}) or {})
    inputs = dict(step.inputs) if template.name == step.template else {}
    if "step" in declared and "step" not in inputs:
        inputs["step"] = _step_object(step)
    if "allowed_paths" in declared and "allowed_paths" not in inputs:
        inputs["allowed_paths"] = step.inputs.get("allowed_paths") or list(step.files)
    if "files" in declared:
        inputs["files"] = context_files(ex, run)
    if "prefix" in declared and step.files:
        # A prefilled completion (complete_file): the answer starts inside the step's file as it stands
        # before the step (failed attempts are rolled back), at its first `...` body; or, for a file that
        # does not exist yet (tests written first), inside the skeleton the step gives as its `prefix`.
        inputs.setdefault("path", step.files[0])
        given = inputs.get("prefix")
        source = given if isinstance(given, str) else ex.workspace.read(inputs["path"]) or ""
        inputs["prefix"] = stub_prefix(source)
    if "errors" in declared:
        inputs["errors"] = errors or "(no errors yet)"
    if "attempt" in declared:
        inputs["attempt"] = attempt
    return inputs
