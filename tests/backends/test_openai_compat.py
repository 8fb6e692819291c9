"""OpenAICompatBackend: the wire contract against the stub server, and the real llama-cpp-python server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from promptkit.backends import (
    Fault,
    GenerateRequest,
    OpenAICompatBackend,
    StubOpenAIServer,
    resolve_model,
)
from promptkit.config import load_config
from promptkit.errors import (
    ConfigError,
    ConnectionFailed,
    MalformedResponse,
    ModelRequestError,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from promptkit.types import Message

pytest.importorskip("aiohttp")

SECRET = "sk-compat-PLANTED-0123456789"


class Pet(BaseModel):
    """Bounded, so that random output cannot run on until max_tokens."""

    name: str = Field(max_length=12)
    legs: int
    tags: list[str] = Field(max_length=3)


def _req(**kw: Any) -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content="name a pet")], **kw)


@pytest.fixture
def stub() -> Iterator[StubOpenAIServer]:
    with StubOpenAIServer(reply="three word answer") as server:
        yield server


@pytest.fixture
def backend(stub: StubOpenAIServer) -> OpenAICompatBackend:
    return OpenAICompatBackend(stub.base_url, "stub-model", timeout_s=5)


async def test_one_request_per_call_with_the_openai_body(
    stub: StubOpenAIServer, backend: OpenAICompatBackend
) -> None:
    response = await backend.generate(_req(temperature=0.0, max_tokens=7, seed=3, params={"top_k": 2}))
    assert response.text == "three word answer"
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (3, 3)
    assert response.cost_usd is None and response.latency_s > 0
    assert stub.request_count == 1
    sent = stub.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body == {
        "model": "stub-model",
        "messages": [{"role": "user", "content": "name a pet"}],
        "temperature": 0.0,
        "max_tokens": 7,
        "seed": 3,
        "top_k": 2,
    }
    await backend.aclose()


async def test_connections_are_reused_and_pooled(stub: StubOpenAIServer) -> None:
    stub.latency_s = 0.05
    backend = OpenAICompatBackend(stub.base_url, "m", max_concurrency=8)
    await asyncio.gather(*(backend.generate(_req()) for _ in range(24)))
    assert stub.request_count == 24
    assert stub.max_active == 8  # the backend's own bound, and the pool served all eight at once
    await backend.aclose()


async def test_api_key_from_env_is_sent_and_never_leaks(
    stub: StubOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPAT_TEST_KEY", SECRET)
    backend = OpenAICompatBackend(stub.base_url, "m", api_key_env="COMPAT_TEST_KEY")
    await backend.generate(_req())
    assert stub.requests[0].headers["authorization"] == "REDACTED"  # it was sent
    stub.push_faults(Fault.client_error(401, message=f"bad key {SECRET}"))
    with pytest.raises(ModelRequestError) as info:
        await backend.generate(_req())
    assert SECRET not in str(info.value)
    assert SECRET not in repr(backend) and SECRET not in repr(vars(backend))
    monkeypatch.delenv("COMPAT_TEST_KEY")
    with pytest.raises(ConfigError, match="COMPAT_TEST_KEY"):
        await backend.generate(_req())
    await backend.aclose()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.server_error(503), ServerError),
        (Fault.client_error(400), ModelRequestError),
        (Fault.drop(), ConnectionFailed),
        (Fault.malformed(), MalformedResponse),
    ],
)
async def test_faults_map_to_promptkit_errors(
    stub: StubOpenAIServer, backend: OpenAICompatBackend, fault: Fault, error: type[Exception]
) -> None:
    stub.push_faults(fault)
    with pytest.raises(error) as info:
        await backend.generate(_req())
    assert "stub-model" in str(info.value)  # names the model it is about
    assert stub.request_count == 1  # no retries of its own: that is the router's job
    assert (await backend.generate(_req())).text == "three word answer"  # the pool survives the fault
    await backend.aclose()


async def test_rate_limit_carries_retry_after(stub: StubOpenAIServer, backend: OpenAICompatBackend) -> None:
    stub.push_faults(Fault.rate_limit(2.5), Fault.rate_limit(None))
    with pytest.raises(RateLimited) as info:
        await backend.generate(_req())
    assert info.value.retry_after == 2.5
    with pytest.raises(RateLimited) as info:
        await backend.generate(_req())
    assert info.value.retry_after is None
    await backend.aclose()


async def test_timeout(stub: StubOpenAIServer, backend: OpenAICompatBackend) -> None:
    stub.push_faults(Fault.slow(3))
    with pytest.raises(RequestTimeout, match="0.3 s"):
        await backend.generate(_req(timeout_s=0.3))
    await backend.aclose()


async def test_no_choices_is_malformed(backend: OpenAICompatBackend) -> None:
    with pytest.raises(MalformedResponse, match="no choices"):
        backend._to_response(_req(), {"choices": []}, 0.1)


async def test_streaming_yields_pieces_that_join_to_the_answer(
    stub: StubOpenAIServer, backend: OpenAICompatBackend
) -> None:
    chunks = [c async for c in backend.stream(_req())]
    assert len(chunks) == 3 and "".join(chunks) == "three word answer"
    assert stub.requests[0].body["stream"] is True
    stub.push_faults(Fault.malformed())
    with pytest.raises(MalformedResponse):
        _ = [c async for c in backend.stream(_req())]
    stub.push_faults(Fault.rate_limit(1))
    with pytest.raises(RateLimited):
        _ = [c async for c in backend.stream(_req())]
    await backend.aclose()


async def test_structured_output_is_a_forced_tool_call() -> None:
    with StubOpenAIServer(reply={"name": "Rex", "legs": 4, "tags": []}) as stub:
        backend = OpenAICompatBackend(stub.base_url, "m")
        response = await backend.generate(_req(output_model=Pet))
        assert Pet.model_validate_json(response.text) == Pet(name="Rex", legs=4, tags=[])
        body = stub.requests[0].body
        assert body["tool_choice"] == {"type": "function", "function": {"name": "Pet"}}
        assert body["tools"][0]["function"]["parameters"] == Pet.model_json_schema()
        pieces = [c async for c in backend.stream(_req(output_model=Pet))]
        assert len(pieces) > 1 and json.loads("".join(pieces)) == {"name": "Rex", "legs": 4, "tags": []}
        await backend.aclose()


def test_sync_calls_in_fresh_loops_close_their_pools(backend: OpenAICompatBackend) -> None:
    for _ in range(3):
        assert backend.generate_sync(_req()).text == "three word answer"
    assert not backend._clients  # each asyncio.run closed its session on the way out


def test_child_process_server_serves_and_reports() -> None:
    with StubOpenAIServer(reply="ok", process=True, faults=[Fault.server_error(502)]) as stub:
        backend = OpenAICompatBackend(stub.base_url, "m")
        with pytest.raises(ServerError, match="502"):
            backend.generate_sync(_req())
        assert backend.generate_sync(_req()).text == "ok"
        assert stub.request_count == 2 and stub.pending_faults == 0
        assert stub.requests[0].fault == Fault.server_error(502)
        stub.reset()
        assert stub.request_count == 0
    with pytest.raises(Exception, match="text reply"):
        StubOpenAIServer(reply=lambda body: "x", process=True)


def test_model_strings_and_aliases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = resolve_model("openai:http://127.0.0.1:9/v1#qwen", cache=False).backend
    assert isinstance(one, OpenAICompatBackend)
    assert (one.base_url, one.model) == ("http://127.0.0.1:9/v1", "qwen")
    (tmp_path / "promptkit.toml").write_text(
        '[models.fast]\nmodel = "openai:qwen"\napi_base = "http://127.0.0.1:9/v1/"\n'
        "max_concurrency = 5\ntimeout_s = 7\nfrequency_penalty = 0.5\n"
        '[models.broken]\nmodel = "openai:qwen"\n'
    )
    config = load_config(tmp_path)
    fast = resolve_model("fast", config, cache=False).backend
    assert isinstance(fast, OpenAICompatBackend)
    assert (fast.base_url, fast.max_concurrency, fast.timeout_s) == ("http://127.0.0.1:9/v1", 5, 7.0)
    assert fast.build_body(_req())["frequency_penalty"] == 0.5
    with pytest.raises(ConfigError, match="api_base"):
        resolve_model("broken", config, cache=False)
    with pytest.raises(ConfigError, match="http"):
        OpenAICompatBackend("127.0.0.1:9/v1", "m")


# ---------------------------------------------------------------- the real llama-cpp-python server


@pytest.fixture
def real(llama_server: Any) -> OpenAICompatBackend:
    pytest.importorskip("llama_cpp")
    return OpenAICompatBackend(llama_server.base_url, llama_server.alias, timeout_s=60)


async def test_real_server_completion_and_stream(real: OpenAICompatBackend) -> None:
    request = _req(max_tokens=8, temperature=0.0)
    first = await real.generate(request)
    assert first.usage.input_tokens > 0 and 1 <= first.usage.output_tokens <= 8
    assert first.finish_reason in {"stop", "length"}
    assert (await real.generate(request)).text == first.text  # temperature 0 is deterministic
    chunks = [c async for c in real.stream(request)]
    assert "".join(chunks) == first.text
    await real.aclose()


async def test_real_server_structured_output(real: OpenAICompatBackend) -> None:
    for _ in range(3):
        response = await real.generate(_req(output_model=Pet, max_tokens=96, temperature=0.0))
        Pet.model_validate_json(response.text)  # the forced tool call's grammar keeps it valid
    await real.aclose()
