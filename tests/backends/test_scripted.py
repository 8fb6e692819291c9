"""ScriptedBackend and FunctionBackend: replay order, faults, history, exhaustion, streaming."""

from __future__ import annotations

import json
import time

import pytest

from promptkit.backends import (
    Backend,
    Capabilities,
    FunctionBackend,
    GenerateRequest,
    GenerateResponse,
    ScriptedBackend,
    ScriptedReply,
)
from promptkit.errors import BackendError, RateLimited, ServerError
from promptkit.types import Message, Usage


def _req(text: str = "say hello to the world") -> GenerateRequest:
    return GenerateRequest(
        messages=[Message(role="system", content="be brief"), Message(role="user", content=text)]
    )


async def test_replays_outputs_in_order_and_encodes_dicts() -> None:
    backend = ScriptedBackend(["first answer", {"b": 2, "a": [1, "x"]}, "third"])
    texts = [(await backend.generate(_req())).text for _ in range(3)]
    assert texts[0] == "first answer"
    assert json.loads(texts[1]) == {"b": 2, "a": [1, "x"]}
    assert texts[2] == "third"
    assert backend.calls == 3
    assert backend.remaining == 0


async def test_scripted_exception_is_raised_then_script_continues() -> None:
    fault = RateLimited("slow down", retry_after=2.0)
    backend = ScriptedBackend([fault, ServerError("boom"), "recovered"])
    with pytest.raises(RateLimited) as info:
        await backend.generate(_req())
    assert info.value is fault and info.value.retry_after == 2.0
    with pytest.raises(ServerError):
        await backend.generate(_req())
    assert (await backend.generate(_req())).text == "recovered"
    assert backend.calls == 3


async def test_history_records_every_request_including_failed_ones() -> None:
    backend = ScriptedBackend([ServerError("x"), "ok"])
    first, second = _req("one"), _req("two")
    with pytest.raises(ServerError):
        await backend.generate(first)
    await backend.generate(second)
    assert backend.history == [first, second]


async def test_exhaustion_error_says_how_many_were_consumed() -> None:
    backend = ScriptedBackend(["a", "b"], name="my-script")
    await backend.generate(_req())
    await backend.generate(_req())
    with pytest.raises(BackendError) as info:
        await backend.generate(_req())
    message = str(info.value)
    assert "ran out" in message and "2 scripted output" in message and "my-script" in message


async def test_default_is_used_when_the_script_is_empty() -> None:
    backend = ScriptedBackend(["scripted"], default="fallback")
    assert (await backend.generate(_req())).text == "scripted"
    assert (await backend.generate(_req())).text == "fallback"
    assert (await backend.generate(_req())).text == "fallback"
    assert backend.calls == 3


async def test_push_appends_to_the_script() -> None:
    backend = ScriptedBackend(["a"])
    backend.push("b", {"c": 1})
    assert [(await backend.generate(_req())).text for _ in range(3)] == ["a", "b", '{"c": 1}']


async def test_default_usage_is_a_word_count_of_messages_and_answer() -> None:
    backend = ScriptedBackend(["three little words"])
    response = await backend.generate(_req("count these four words"))
    # "be brief" (2) + "count these four words" (4)
    assert response.usage == Usage(input_tokens=6, output_tokens=3)
    assert response.finish_reason == "stop"


async def test_scripted_reply_carries_usage_cost_and_delay() -> None:
    usage = Usage(input_tokens=100, output_tokens=7)
    backend = ScriptedBackend([ScriptedReply({"x": 1}, usage=usage, delay_s=0.05, cost_usd=0.25)])
    start = time.perf_counter()
    response = await backend.generate(_req())
    assert time.perf_counter() - start >= 0.05
    assert response.latency_s >= 0.05
    assert response.usage == usage and response.cost_usd == 0.25
    assert json.loads(response.text) == {"x": 1}


async def test_stream_yields_chunks_that_join_to_the_answer() -> None:
    text = "the quick  brown fox\njumps"
    backend = ScriptedBackend([text, RateLimited("no")])
    chunks = [c async for c in backend.stream(_req())]
    assert len(chunks) > 1
    assert "".join(chunks) == text
    with pytest.raises(RateLimited):
        async for _ in backend.stream(_req()):
            pass
    assert backend.calls == 2


def test_generate_sync_and_protocol() -> None:
    backend = ScriptedBackend(["sync"], capabilities=Capabilities(tools=True))
    assert isinstance(backend, Backend)
    assert backend.capabilities == Capabilities(tools=True)
    assert backend.generate_sync(_req()).text == "sync"
    assert ScriptedBackend().capabilities.structured_output is True


async def test_function_backend_sync_async_and_response() -> None:
    def sync_fn(request: GenerateRequest) -> str:
        return request.messages[-1].content.upper()

    async def async_fn(request: GenerateRequest) -> dict[str, int]:
        return {"n": len(request.messages)}

    def full_fn(request: GenerateRequest) -> GenerateResponse:
        return GenerateResponse(text="exact", usage=Usage(input_tokens=9, output_tokens=1), cost_usd=0.5)

    assert (await FunctionBackend(sync_fn).generate(_req("abc"))).text == "ABC"
    assert json.loads((await FunctionBackend(async_fn).generate(_req())).text) == {"n": 2}
    full = await FunctionBackend(full_fn).generate(_req())
    assert full.text == "exact" and full.cost_usd == 0.5 and full.usage.input_tokens == 9


async def test_function_backend_errors() -> None:
    def broken(request: GenerateRequest) -> str:
        raise ValueError("bad input")

    def raises_transport(request: GenerateRequest) -> str:
        raise RateLimited("later", retry_after=1.0)

    def wrong_type(request: GenerateRequest) -> int:
        return 42

    with pytest.raises(BackendError, match="ValueError: bad input") as info:
        await FunctionBackend(broken, name="fx").generate(_req())
    assert "fx" in str(info.value) and isinstance(info.value.__cause__, ValueError)
    with pytest.raises(RateLimited):
        await FunctionBackend(raises_transport).generate(_req())
    with pytest.raises(BackendError, match="returned int"):
        await FunctionBackend(wrong_type).generate(_req())  # type: ignore[arg-type]


async def test_function_backend_streams_and_records() -> None:
    backend = FunctionBackend(lambda r: "one two three")
    chunks = [c async for c in backend.stream(_req())]
    assert chunks == ["one", " two", " three"]
    assert backend.calls == 1 and len(backend.history) == 1
