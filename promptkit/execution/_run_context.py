"""What the step modules (``_apply``, ``_model_step``, ``_step_prompt``) use of a running executor.

A protocol rather than the ``Executor`` class: those modules sit below the executor, which imports them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from promptkit.execution._runstate import RunState, StepState
from promptkit.execution._workspace import Workspace
from promptkit.planning import Plan, Step

if TYPE_CHECKING:
    from promptkit.cache import ExactCache
    from promptkit.ledger import Ledger
    from promptkit.routing import Router

__all__ = ["ConfirmFn", "RunContext", "StepRun"]

# confirm(step, None) before a step starts; confirm(step, diff) after generation, before applying.
ConfirmFn = Callable[[Step, str | None], bool]


@dataclass
class StepRun:
    """A running step's scratch state in this process: its checkpointed state and the files its last
    attempt wrote (shown to the next attempt, kept for inspection when the step fails)."""

    step: Step
    state: StepState
    last_files: dict[str, str | None] = field(default_factory=dict)


class RunContext(Protocol):
    """The run a step belongs to: its workspace and checkpoints, the lock that serializes apply + verify,
    the model settings, and the run's log."""

    plan: Plan
    workspace: Workspace
    state: RunState
    run_id: str
    verify_lock: asyncio.Lock
    step_runs: dict[str, StepRun]
    timings: dict[str, float]
    confirm: ConfirmFn | None
    tidy: bool
    router: Router | None
    cache: ExactCache | bool | None
    ledger: Ledger | None
    budget_tokens: int | None
    temperature: float | None
    max_tokens: int | None
    repair: str
    repair_temperature: float | None

    def log(self, event: str, step_id: str | None = None, **data: Any) -> None: ...

    def notify(self, step: Step, state: StepState) -> None: ...

    def keep_answer(self, step_id: str, attempt: int, tier: str, text: str) -> None: ...
