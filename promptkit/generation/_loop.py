"""The one repair loop: attempt → validate → feed the error back → attempt again, bounded.

It knows nothing about models or templates: the cascade (``_cascade.run_cascade``) runs it once per tier, for
``generate()``'s re-asks and the executor's verify-and-repair alike. ``validate`` signals a bad answer by raising ``OutputValidationError``; any other
exception ends the loop at once and propagates unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from promptkit.errors import AttemptsExhausted, OutputValidationError, PromptkitError
from promptkit.types import Usage

__all__ = ["Feedback", "LoopAttempt", "LoopResult", "repair_loop"]

T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True)
class Feedback:
    """What went wrong with one earlier attempt, for the next attempt to repair."""

    attempt: int
    raw_output: str
    error: str


@dataclass(frozen=True)
class LoopAttempt:
    """One attempt as the loop saw it: its raw output, and the validation error if it failed."""

    attempt: int
    raw_output: str
    error: str | None = None
    usage: Usage | None = None


@dataclass
class LoopResult(Generic[V]):
    """The validated value, the raw output it came from, every attempt, and the summed usage."""

    value: V
    raw_output: str
    attempts: list[LoopAttempt] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


def _default_raw(value: Any) -> str:
    if isinstance(value, str):
        return value
    text = getattr(value, "text", None)
    return text if isinstance(text, str) else repr(value)


def _default_usage(value: Any) -> Usage | None:
    usage = getattr(value, "usage", None)
    return usage if isinstance(usage, Usage) else None


async def repair_loop(
    attempt: Callable[[Sequence[Feedback]], Awaitable[T]],
    validate: Callable[[T], Awaitable[V] | V],
    *,
    max_attempts: int = 3,
    raw_output: Callable[[T], str] | None = None,
    usage: Callable[[T], Usage | None] | None = None,
    subject: str = "output",
    location: str | None = None,
) -> LoopResult[V]:
    """Call ``attempt(feedback)`` until ``validate`` accepts its result, at most ``max_attempts`` times.

    ``feedback`` holds one ``Feedback`` per earlier failed attempt, oldest first. ``raw_output``/``usage`` read
    the raw text and token usage off an attempt's result (defaults: ``.text``/``.usage`` or the value itself
    when it is a string). When every attempt fails, raises ``AttemptsExhausted`` carrying each attempt's
    raw output and error, and the summed usage.
    """
    if max_attempts < 1:
        raise PromptkitError(f"max_attempts must be at least 1, got {max_attempts}", location=location)
    get_raw = raw_output or _default_raw
    get_usage = usage or _default_usage
    attempts: list[LoopAttempt] = []
    feedback: list[Feedback] = []
    total = Usage()

    async def once() -> LoopResult[V]:
        nonlocal total
        number = len(attempts) + 1
        result = await attempt(tuple(feedback))
        raw = get_raw(result)
        spent = get_usage(result)
        if spent is not None:
            total = total + spent
        try:
            checked = validate(result)
            value = await checked if inspect.isawaitable(checked) else checked
        except OutputValidationError as exc:
            failed_raw = exc.raw_output or raw
            attempts.append(LoopAttempt(number, failed_raw, exc.message, spent))
            feedback.append(Feedback(number, failed_raw, exc.message))
            raise
        attempts.append(LoopAttempt(number, raw, None, spent))
        return LoopResult(value=value, raw_output=raw, attempts=attempts, usage=total)

    try:
        try:
            # Most answers pass first time: set tenacity up only when a re-ask is needed (it costs ~20 us).
            return await once()
        except OutputValidationError:
            if max_attempts == 1:
                raise
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max_attempts - 1),
            retry=retry_if_exception_type(OutputValidationError),
            reraise=True,
        )
        async for state in retrying:
            with state:
                return await once()
    except OutputValidationError as exc:
        raise AttemptsExhausted(
            f"no valid {subject} after {len(attempts)} attempt(s); last error: {exc.message}",
            attempts=attempts,
            usage=total,
            location=location,
        ) from exc
    raise AssertionError("unreachable: tenacity ended without a result or an error")  # pragma: no cover
