"""LiteLLMBackend over real HTTP against the loopback stub: completion, streaming, structured output, faults."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

from promptkit.backends import Fault, GenerateRequest, LiteLLMBackend, StubOpenAIServer
from promptkit.errors import (
    BackendError,
    ConfigError,
    ConnectionFailed,
    MalformedResponse,
    ModelRequestError,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from promptkit.types import Message

pytest.importorskip("litellm")
pytest.importorskip("instructor")

KEY = "sk-test-PLANTED-remote-0123456789"


class City(BaseModel):
    name: str = Field(max_length=20)
    population: int


def _reply(body: dict[str, Any]) -> Any:
    return {"name": "Oslo", "population": 700000} if body.get("tools") else "hello from the stub"


@pytest.fixture(scope="module")
def stub() -> Iterator[StubOpenAIServer]:
    with StubOpenAIServer(reply=_reply) as server:
        yield server


@pytest.fixture
def server(stub: StubOpenAIServer) -> StubOpenAIServer:
    stub.reset()
    stub.latency_s = 0.0
    return stub


@pytest.fixture
def backend(server: StubOpenAIServer) -> LiteLLMBackend:
    return LiteLLMBackend("openai/stub", api_base=server.base_url, api_key=KEY, timeout_s=10)


def _req(text: str = "say hi please", **kw: Any) -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content=text)], **kw)


async def test_completion_text_usage_and_one_request(
    backend: LiteLLMBackend, server: StubOpenAIServer
) -> None:
    response = await backend.generate(_req(temperature=0.0, max_tokens=16, seed=7))
    assert response.text == "hello from the stub"
    assert response.usage.input_tokens == 3 and response.usage.output_tokens == 4
    assert response.finish_reason == "stop"
    assert response.cost_usd is None  # "openai/stub" has no price in litellm's map: no guess
    assert response.latency_s > 0
    assert server.request_count == 1
    body = server.requests[0].body
    assert body["model"] == "stub" and body["messages"] == [{"role": "user", "content": "say hi please"}]
    assert body["temperature"] == 0.0 and body["max_tokens"] == 16 and body["seed"] == 7
    assert "tools" not in body


async def test_cost_comes_from_litellm_price_map(server: StubOpenAIServer) -> None:
    import litellm

    backend = LiteLLMBackend("openai/gpt-4o-mini", api_base=server.base_url, api_key="x")
    response = await backend.generate(_req())
    prompt_cost, completion_cost = litellm.cost_per_token(
        model="openai/gpt-4o-mini",
        prompt_tokens=response.usage.input_tokens,
        completion_tokens=response.usage.output_tokens,
    )
    assert response.cost_usd is not None and response.cost_usd > 0
    assert response.cost_usd == pytest.approx(prompt_cost + completion_cost)


async def test_streaming_yields_the_text_in_pieces(backend: LiteLLMBackend, server: StubOpenAIServer) -> None:
    chunks = [c async for c in backend.stream(_req())]
    assert len(chunks) >= 3
    assert "".join(chunks) == "hello from the stub"
    assert server.requests[0].body["stream"] is True


async def test_structured_output_sends_a_forced_tool_and_returns_raw_arguments(
    backend: LiteLLMBackend, server: StubOpenAIServer
) -> None:
    response = await backend.generate(_req(output_model=City))
    body = server.requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    assert body["tools"][0]["function"]["parameters"]["properties"]["name"]["maxLength"] == 20
    assert City.model_validate_json(response.text) == City(name="Oslo", population=700000)
    assert json.loads(response.text) == {"name": "Oslo", "population": 700000}


async def test_invalid_structured_answer_is_returned_raw_without_instructor_retry(
    server: StubOpenAIServer,
) -> None:
    server.reply = lambda body: {"name": "x" * 50, "wrong": True}
    try:
        backend = LiteLLMBackend("openai/stub", api_base=server.base_url, api_key="x")
        response = await backend.generate(_req(output_model=City))
    finally:
        server.reply = _reply
    assert json.loads(response.text) == {"name": "x" * 50, "wrong": True}
    assert server.request_count == 1  # promptkit owns the re-ask loop


async def test_structured_streaming_yields_argument_pieces(backend: LiteLLMBackend) -> None:
    chunks = [c async for c in backend.stream(_req(output_model=City))]
    assert len(chunks) > 1
    assert City.model_validate_json("".join(chunks)).name == "Oslo"


FAULTS = [
    (Fault.rate_limit(retry_after=1.5), RateLimited, 1.5),
    (Fault.rate_limit(retry_after=None), RateLimited, None),
    (Fault.server_error(500), ServerError, None),
    (Fault.server_error(503), ServerError, None),
    (Fault.client_error(400), ModelRequestError, None),
    (Fault.client_error(401), ModelRequestError, None),
    (Fault.client_error(404), ModelRequestError, None),
    (Fault.drop(), ConnectionFailed, None),
    (Fault.malformed(), MalformedResponse, None),
]


@pytest.mark.parametrize(("fault", "error", "retry_after"), FAULTS, ids=lambda v: getattr(v, "kind", None))
async def test_faults_map_to_promptkit_errors_with_one_request(
    backend: LiteLLMBackend,
    server: StubOpenAIServer,
    fault: Fault,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    server.push_faults(fault)
    with pytest.raises(error) as info:
        await backend.generate(_req())
    assert type(info.value) is error
    if error is RateLimited:
        assert info.value.retry_after == retry_after  # type: ignore[attr-defined]
    assert server.request_count == 1  # litellm's own retries are off
    assert "openai/stub" in str(info.value)


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"), FAULTS[::2], ids=lambda v: getattr(v, "kind", None)
)
def test_faults_map_the_same_through_generate_sync(
    backend: LiteLLMBackend,
    server: StubOpenAIServer,
    fault: Fault,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    server.push_faults(fault)
    with pytest.raises(error):
        backend.generate_sync(_req())
    assert server.request_count == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.rate_limit(2), RateLimited),
        (Fault.drop(), ConnectionFailed),
        (Fault.malformed(), MalformedResponse),
    ],
    ids=["rate_limit", "drop", "malformed"],
)
async def test_stream_faults_are_mapped(
    backend: LiteLLMBackend, server: StubOpenAIServer, fault: Fault, error: type[Exception]
) -> None:
    server.push_faults(fault)
    with pytest.raises(error):
        async for _ in backend.stream(_req()):
            pass
    assert server.request_count == 1


async def test_request_timeout_is_honoured(backend: LiteLLMBackend, server: StubOpenAIServer) -> None:
    server.push_faults(Fault.slow(3.0))
    start = time.perf_counter()
    with pytest.raises(RequestTimeout):
        await backend.generate(_req(timeout_s=0.4))
    assert time.perf_counter() - start < 2.0
    assert server.request_count == 1


async def test_stream_timeout_is_honoured(backend: LiteLLMBackend, server: StubOpenAIServer) -> None:
    server.push_faults(Fault.slow(3.0))
    start = time.perf_counter()
    with pytest.raises(RequestTimeout):
        async for _ in backend.stream(_req(timeout_s=0.4)):
            pass
    assert time.perf_counter() - start < 2.0


async def test_refused_connection_is_connection_failed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = LiteLLMBackend("openai/stub", api_base=f"http://127.0.0.1:{port}/v1", api_key="x")
    with pytest.raises(ConnectionFailed):
        await backend.generate(_req())


async def test_max_concurrency_limits_requests_in_flight() -> None:
    with StubOpenAIServer(latency_s=0.15) as server:  # its own server: no slow handlers left from other tests
        backend = LiteLLMBackend("openai/stub", api_base=server.base_url, api_key="x", max_concurrency=2)
        results = await asyncio.gather(*(backend.generate(_req()) for _ in range(6)))
        assert len(results) == 6 and server.request_count == 6
        assert server.max_active == 2


def test_generate_sync_works_across_event_loops(backend: LiteLLMBackend, server: StubOpenAIServer) -> None:
    assert backend.generate_sync(_req()).text == "hello from the stub"
    assert asyncio.run(backend.generate(_req())).text == "hello from the stub"
    assert backend.generate_sync(_req()).text == "hello from the stub"
    assert server.request_count == 3


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "fault", [Fault.rate_limit(1), Fault.client_error(401, f"bad key {KEY}"), Fault.drop()]
)
async def test_planted_key_never_leaks(server: StubOpenAIServer, fault: Fault) -> None:
    backend = LiteLLMBackend("openai/stub", api_base=server.base_url, api_key=KEY)
    server.push_faults(fault)
    with pytest.raises(BackendError) as info:
        await backend.generate(_req())
    error = info.value
    assert KEY not in str(error) and KEY not in repr(error) and KEY not in error.message
    assert error.__cause__ is None and error.__suppress_context__
    assert KEY not in repr(backend) and "***" in repr(backend)
    assert all(KEY not in json.dumps(r.headers) for r in server.requests)
    assert server.requests[0].headers["authorization"] == "REDACTED"


async def test_api_key_env_is_read_at_call_time(
    server: StubOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LiteLLMBackend("openai/stub", api_base=server.base_url, api_key_env="PROMPTKIT_TEST_KEY")
    monkeypatch.delenv("PROMPTKIT_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="PROMPTKIT_TEST_KEY"):
        await backend.generate(_req())
    assert server.request_count == 0
    monkeypatch.setenv("PROMPTKIT_TEST_KEY", KEY)
    server.push_faults(Fault.client_error(403, f"key {KEY} is not allowed"))
    with pytest.raises(ModelRequestError) as info:
        await backend.generate(_req())
    assert KEY not in str(info.value) and KEY not in repr(backend)
    assert server.request_count == 1


def test_build_kwargs_disables_retries_and_omits_the_key() -> None:
    backend = LiteLLMBackend(
        "openai/x", api_base="http://127.0.0.1:1/v1", api_key=KEY, extra_params={"frequency_penalty": 0.5}
    )
    kwargs = backend.build_kwargs(_req(params={"top_k": 3}, timeout_s=7))
    assert kwargs["num_retries"] == 0 and kwargs["max_retries"] == 0
    assert kwargs["timeout"] == 7 and kwargs["frequency_penalty"] == 0.5 and kwargs["top_k"] == 3
    assert KEY not in repr(kwargs)


def test_from_spec_splits_own_options_from_litellm_params() -> None:
    backend = LiteLLMBackend.from_spec(
        "openai/x",
        {
            "api_base": "http://127.0.0.1:1/v1",
            "api_key_env": "K",
            "timeout_s": 5,
            "drop_params": True,
            "n_ctx": 9,
        },
    )
    assert (
        backend.api_base == "http://127.0.0.1:1/v1" and backend.api_key_env == "K" and backend.timeout_s == 5
    )
    assert backend.extra_params == {"drop_params": True, "n_ctx": 9}
    assert (
        backend.capabilities.structured_output
        and backend.capabilities.tools
        and backend.capabilities.streaming
    )


def test_invalid_construction_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="instructor_mode"):
        LiteLLMBackend("openai/x", instructor_mode="nope")
    with pytest.raises(ConfigError):
        LiteLLMBackend("")


def test_tool_kwargs_are_exactly_what_instructor_builds() -> None:
    from instructor import Mode
    from instructor.processing.response import handle_response_model

    from promptkit.backends._litellm import INSTRUCTOR_MODES

    backend = LiteLLMBackend("openai/x", instructor_mode="tools")
    request = _req(output_model=City)
    ours = backend.build_kwargs(request)
    _, theirs = handle_response_model(City, mode=Mode[INSTRUCTOR_MODES["tools"]], messages=ours["messages"])
    assert ours["tools"] == theirs["tools"] and ours["tool_choice"] == theirs["tool_choice"]
    ours["tools"][0]["function"]["name"] = "mutated"  # a caller's mutation must not reach the next call
    assert backend.build_kwargs(request)["tools"][0]["function"]["name"] == "City"


async def test_json_mode_puts_the_schema_in_the_prompt_and_returns_content(server: StubOpenAIServer) -> None:
    server.reply = lambda body: '{"name": "Rome", "population": 3}'
    try:
        backend = LiteLLMBackend("openai/stub", api_base=server.base_url, api_key="x", instructor_mode="json")
        response = await backend.generate(_req(output_model=City))
    finally:
        server.reply = _reply
    body = server.requests[0].body
    assert "tools" not in body and body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and "population" in body["messages"][0]["content"]
    assert City.model_validate_json(response.text).name == "Rome"
