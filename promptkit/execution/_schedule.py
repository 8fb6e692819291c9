"""Which steps may run now: dependencies passed, a free slot, and no file shared with a running step.

Steps whose allow-lists could touch the same file never run together, so a step's verifiers only ever see
finished steps plus the step under test; steps behind a failed or skipped dependency are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from promptkit.execution._report import NO_MODEL_HINT
from promptkit.execution._runstate import StepState
from promptkit.planning import Plan, Step, glob_to_regex, is_glob, path_allowed

__all__ = ["blocked_reason", "startable", "steps_overlap"]


def _literal_prefix(pattern: str) -> str:
    return pattern[: min(i for i, c in enumerate(pattern + "*") if c in "*?[")]


def _meets(patterns: Sequence[str], others: Sequence[str]) -> bool:
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
                lp, lq = _literal_prefix(p), _literal_prefix(q)
                if lp.startswith(lq) or lq.startswith(lp):
                    return True
    return False


def steps_overlap(a: Step, b: Step) -> bool:
    """Whether two steps could touch the same file: one's allow-list meets the other's files or reads."""
    return _meets(a.files, [*b.files, *b.reads]) or _meets(b.files, a.reads)


def startable(plan: Plan, states: Mapping[str, StepState], active: Sequence[Step], slots: int) -> list[Step]:
    """The pending steps to start now, at most ``slots``: ready by their dependencies, and sharing no file
    with the ``active`` steps or with each other."""
    passed = {sid for sid, s in states.items() if s.status == "passed"}
    chosen: list[Step] = []
    for step in plan.ready_steps(passed):
        if len(chosen) >= slots:
            break
        if states[step.id].status != "pending" or step in active:
            continue
        if any(steps_overlap(step, other) for other in [*active, *chosen]):
            continue
        chosen.append(step)
    return chosen


def blocked_reason(step: Step, states: Mapping[str, StepState]) -> str | None:
    """Why a pending ``step`` can never run (a dependency failed or was skipped), or None."""
    blocked = [d for d in step.depends_on if states[d].status in ("failed", "skipped")]
    if not blocked:
        return None
    dep = states[blocked[0]]
    why = "failed" if dep.status == "failed" else "was skipped"
    reason = f"depends on {blocked[0]}, which {why}"
    if dep.status == "skipped" and dep.reason and NO_MODEL_HINT in dep.reason:
        reason += " (no model configured)"
    return reason
