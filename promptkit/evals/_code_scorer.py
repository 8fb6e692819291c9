"""The ``code_exec`` scorer: the answer's code, with the item's prompt and tests, run in the sandbox."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from promptkit.errors import EvalError
from promptkit.evals._dataset import Item, get_field
from promptkit.evals._eval_log import Score
from promptkit.evals._scorer_base import TAIL, BuiltinScorer, Generation, ScorerOptions, pick, verdict
from promptkit.execution import build_program, extract_code

__all__ = ["CodeExec"]


# One sandbox semaphore per event loop: an asyncio.Semaphore cannot be shared between loops.
_SANDBOX_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
_slots_lock = threading.Lock()


def _sandbox_slots(size: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    with _slots_lock:
        found = _SANDBOX_SLOTS.get(loop)
        if found is None:
            found = _SANDBOX_SLOTS[loop] = asyncio.Semaphore(size)
    return found


def _default_parallel() -> int:
    return max(2, 2 * (os.cpu_count() or 1))


class CodeExec(BuiltinScorer):
    """Run prompt + completion + tests in the sandbox; 1 when the program exits cleanly, else 0.

    ``k`` lists the pass@k values the runner reports over ``repeats`` samples per problem.
    """

    class Options(ScorerOptions):
        field: str | None = None  # the structured output field holding the code
        prompt_field: str | None = None  # dataset column prepended to the completion (HumanEval's `prompt`)
        tests_field: str = "test"
        entry_point_field: str | None = "entry_point"
        # Which fenced block holds the answer: a self-check answer ends with its corrected version.
        code_block: Literal["first", "last"] = "first"
        k: list[int] = Field(default_factory=lambda: [1])
        timeout_s: float = Field(default=10.0, gt=0)
        memory_mb: int = Field(default=512, ge=16)
        max_parallel: int = Field(default_factory=_default_parallel, ge=1)
        threshold: float | None = 1.0

        @model_validator(mode="after")
        def _positive_k(self) -> CodeExec.Options:
            if not self.k or any(k < 1 for k in self.k):
                raise ValueError("k must be a non-empty list of integers >= 1")
            return self

    @property
    def ks(self) -> list[int]:
        return list(self.options.k)

    def program(self, item: Item, output: Generation, parsed: Any) -> str:
        opts = self.options
        row = item.row

        def column(name: str | None, required: bool) -> Any:
            if name is None:
                return None
            try:
                return get_field(row, name)
            except KeyError:
                if required:
                    raise EvalError(
                        f"the item has no field {name!r}", location=f"{item.location}: {name}"
                    ) from None
                return None

        entry = column(opts.entry_point_field, False)
        tests = column(opts.tests_field, True)
        if isinstance(tests, list):  # MBPP: a list of assert statements
            tests = "\n".join(str(t) for t in tests)
        raw = pick(parsed, output.text, opts.field) if opts.field else output.text
        code = extract_code(str(raw or ""), str(entry) if entry else None, block=opts.code_block)
        prompt = column(opts.prompt_field, True)
        return build_program(code, prompt=prompt, test=str(tests), entry_point=str(entry) if entry else None)

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        from promptkit.execution import Limits, arun_sandboxed

        program = self.program(item, output, parsed)
        limits = Limits(
            wall_s=self.options.timeout_s, cpu_s=self.options.timeout_s, memory_mb=self.options.memory_mb
        )
        async with _sandbox_slots(self.options.max_parallel):
            with tempfile.TemporaryDirectory(prefix="promptkit-eval-") as folder:
                Path(folder, "program.py").write_text(program, encoding="utf-8")
                result = await arun_sandboxed(
                    [sys.executable, "-I", "program.py"], cwd=Path(folder), limits=limits
                )
        value = 1.0 if result.ok else 0.0
        why = None
        if not result.ok:
            why = (
                f"killed: {result.killed_reason}"
                if result.killed_reason
                else (result.stderr or result.stdout)[-TAIL:]
            )
        return self.score(
            value,
            verdict(value, self.options.threshold),
            why,
            returncode=result.returncode,
            killed_reason=result.killed_reason,
            wall_s=round(result.wall_s, 4),
        )
