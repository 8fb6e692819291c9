"""The generic repair loop: attempts, feedback, exhaustion, and what it passes through untouched."""

from __future__ import annotations

import json

import pytest

from promptkit.errors import AttemptsExhausted, BackendError, OutputValidationError, PromptkitError
from promptkit.generation import Feedback, repair_loop
from promptkit.types import Usage


class Reply:
    def __init__(self, text: str, tokens: int = 0) -> None:
        self.text = text
        self.usage = Usage(input_tokens=tokens, output_tokens=1)


def scripted(*texts: str):
    seen: list[tuple[Feedback, ...]] = []
    queue = list(texts)

    async def attempt(feedback):
        seen.append(tuple(feedback))
        return Reply(queue.pop(0), tokens=10)

    return attempt, seen


def as_json(reply: Reply) -> dict:
    try:
        return json.loads(reply.text)
    except json.JSONDecodeError as exc:
        raise OutputValidationError(f"not JSON: {exc.msg}") from None


async def test_second_attempt_succeeds_and_sees_the_first_error():
    attempt, seen = scripted("nope", '{"a": 1}')
    result = await repair_loop(attempt, as_json, max_attempts=3)
    assert result.value == {"a": 1}
    assert result.raw_output == '{"a": 1}'
    assert [a.error is None for a in result.attempts] == [False, True]
    assert seen[0] == ()
    assert len(seen[1]) == 1
    assert seen[1][0].raw_output == "nope"
    assert seen[1][0].error.startswith("not JSON: Expecting value")
    assert result.usage == Usage(input_tokens=20, output_tokens=2)


async def test_feedback_accumulates_oldest_first():
    attempt, seen = scripted("a", "b", "{}")
    await repair_loop(attempt, as_json, max_attempts=3)
    assert [f.raw_output for f in seen[2]] == ["a", "b"]
    assert [f.attempt for f in seen[2]] == [1, 2]


async def test_exhaustion_carries_every_raw_output_and_summed_usage():
    attempt, _ = scripted("x1", "x2", "x3", "{}")
    with pytest.raises(AttemptsExhausted) as info:
        await repair_loop(attempt, as_json, max_attempts=3, location="template 't'")
    exc = info.value
    assert [a.raw_output for a in exc.attempts] == ["x1", "x2", "x3"]
    assert all(a.error and "not JSON" in a.error for a in exc.attempts)
    assert exc.usage == Usage(input_tokens=30, output_tokens=3)
    assert "3 attempt(s)" in str(exc) and str(exc).startswith("template 't':")
    assert isinstance(exc.__cause__, OutputValidationError)


async def test_async_validate_and_raw_output_from_the_error():
    attempt, seen = scripted("first", "second")

    async def validate(reply: Reply) -> str:
        if reply.text == "first":
            raise OutputValidationError("too short", raw_output="first (as parsed)")
        return reply.text.upper()

    result = await repair_loop(attempt, validate, max_attempts=2)
    assert result.value == "SECOND"
    assert seen[1][0].raw_output == "first (as parsed)"


async def test_other_errors_stop_the_loop_at_once():
    calls = 0

    async def attempt(feedback):
        nonlocal calls
        calls += 1
        raise BackendError("backend down")

    with pytest.raises(BackendError):
        await repair_loop(attempt, lambda r: r, max_attempts=5)
    assert calls == 1


async def test_a_validator_bug_is_not_retried():
    attempt, seen = scripted("a", "b")

    def validate(reply):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await repair_loop(attempt, validate, max_attempts=2)
    assert len(seen) == 1


async def test_plain_strings_work_without_hooks():
    queue = ["bad", "good"]

    async def attempt(feedback):
        return queue.pop(0)

    def validate(text: str) -> str:
        if text != "good":
            raise OutputValidationError("say good")
        return text

    result = await repair_loop(attempt, validate, max_attempts=2)
    assert result.value == "good"
    assert [a.raw_output for a in result.attempts] == ["bad", "good"]


async def test_max_attempts_must_be_positive():
    with pytest.raises(PromptkitError, match="at least 1"):
        await repair_loop(scripted("x")[0], as_json, max_attempts=0)
