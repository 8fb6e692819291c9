"""The exception mapping and secret scrubbing shared by remote backends, on hand-built exception chains."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time

import pytest

from promptkit.backends._errors import map_exception, parse_retry_after, scrub
from promptkit.errors import (
    BackendError,
    ConnectionFailed,
    MalformedResponse,
    ModelRequestError,
    RateLimited,
    RequestTimeout,
    ServerError,
)

KEY = "sk-test-PLANTED-errors-abcdef0123"


class _Response:
    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = headers or {}
        self.request = object()


class APIStatusError(Exception):
    def __init__(self, message: str, status_code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response = _Response(status_code, headers)


class APITimeoutError(Exception):
    pass


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as caught:
        return caught


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "-3"}) == 0.0
    assert parse_retry_after({}) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": future}) == pytest.approx(30, abs=2)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
        (400, ModelRequestError),
        (401, ModelRequestError),
        (408, RequestTimeout),
    ],
)
def test_status_codes(status: int, error: type[Exception]) -> None:
    mapped = map_exception(
        APIStatusError("provider said no", status, {"retry-after": "4"}), location="model 'm'"
    )
    assert type(mapped) is error
    assert str(mapped).startswith("model 'm': ")
    if error is RateLimited:
        assert mapped.retry_after == 4.0  # type: ignore[attr-defined]


def test_cause_beats_the_wrapper_status() -> None:
    # litellm wraps a dropped connection / a bad body in a 500: the cause decides.
    dropped = _chained(APIStatusError("Connection error.", 500), ConnectionResetError("reset by peer"))
    assert type(map_exception(dropped)) is ConnectionFailed
    bad_body = _chained(APIStatusError("oops", 500), json.JSONDecodeError("Expecting value", "<html>", 0))
    assert type(map_exception(bad_body)) is MalformedResponse
    timed_out = _chained(APIStatusError("timeout", 408), APITimeoutError("read timed out"))
    assert type(map_exception(timed_out)) is RequestTimeout


def test_lost_chain_falls_back_to_litellm_wording() -> None:
    assert type(map_exception(APIStatusError("OpenAIException - Connection error.", 500))) is ConnectionFailed
    lost = APIStatusError("OpenAIException - Expecting value: line 1 column 1 (char 0)", 500)
    assert type(map_exception(lost)) is MalformedResponse


def test_plain_python_faults() -> None:
    assert type(map_exception(asyncio.TimeoutError())) is RequestTimeout
    assert type(map_exception(ConnectionRefusedError(111, "refused"))) is ConnectionFailed
    assert type(map_exception(RuntimeError("weird"))) is BackendError


def test_promptkit_errors_pass_through() -> None:
    original = RateLimited("x", retry_after=1)
    assert map_exception(original) is original


def test_secrets_are_scrubbed_from_messages() -> None:
    exc = APIStatusError(f"bad key {KEY}; headers Authorization: Bearer {KEY} api_key={KEY}", 401)
    mapped = map_exception(exc, secrets=[KEY])
    assert KEY not in str(mapped) and KEY not in repr(mapped)
    assert "***" in str(mapped)
    # Even a key we were not told about is masked when it looks like one.
    assert "sk-other-secret-value" not in scrub("key sk-other-secret-value here")
    assert scrub('{"authorization": "Basic abc123"}') == '{"authorization": "Basic ***"}'
    assert scrub("x-api-key: hunter2hunter2") == "x-api-key: ***"
    assert scrub("nothing to hide") == "nothing to hide"


def test_long_messages_are_truncated() -> None:
    mapped = map_exception(APIStatusError("x" * 5000, 500))
    assert len(str(mapped)) < 800
