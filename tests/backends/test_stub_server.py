"""StubOpenAIServer: every fault is checked on the wire with a plain HTTP client."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from promptkit.backends import Fault, StubOpenAIServer
from promptkit.errors import BackendError

BODY = {"model": "stub", "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture
def server() -> Iterator[StubOpenAIServer]:
    with StubOpenAIServer(reply="three word answer") as stub:
        yield stub


def _post(
    stub: StubOpenAIServer,
    body: dict[str, Any] = BODY,
    headers: dict[str, str] | None = None,
    timeout: float = 5,
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=timeout)
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=json.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    return conn.getresponse()


def test_completion_is_openai_shaped(server: StubOpenAIServer) -> None:
    response = _post(server)
    assert response.status == 200
    data = json.loads(response.read())
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "three word answer"}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"


def test_models_listing_and_unknown_route(server: StubOpenAIServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/v1/models")
    listing = json.loads(conn.getresponse().read())
    assert [m["id"] for m in listing["data"]] == ["stub"]
    conn.request("GET", "/v1/nothing")
    assert conn.getresponse().status == 404
    assert server.request_count == 2  # same keep-alive connection served both


def test_reply_callable_gets_the_body_and_dict_becomes_tool_call() -> None:
    def reply(body: dict[str, Any]) -> Any:
        return {"city": "Oslo"} if body.get("tools") else f"{len(body['messages'])} messages"

    tools = [{"type": "function", "function": {"name": "Place", "parameters": {"type": "object"}}}]
    with StubOpenAIServer(reply=reply) as stub:
        plain = json.loads(_post(stub).read())
        assert plain["choices"][0]["message"]["content"] == "1 messages"
        forced = {**BODY, "tools": tools, "tool_choice": {"type": "function", "function": {"name": "Place"}}}
        data = json.loads(_post(stub, forced).read())
    call = data["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "Place"
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert data["choices"][0]["finish_reason"] == "tool_calls"


def test_rate_limit_sends_429_with_retry_after(server: StubOpenAIServer) -> None:
    server.push_faults(Fault.rate_limit(retry_after=1.5), Fault.rate_limit(retry_after=None))
    first = _post(server)
    assert first.status == 429 and first.getheader("Retry-After") == "1.5"
    assert json.loads(first.read())["error"]["type"] == "rate_limit_error"
    second = _post(server)
    assert second.status == 429 and second.getheader("Retry-After") is None
    second.read()
    assert _post(server).status == 200  # the script is spent: back to normal


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_status(server: StubOpenAIServer, status: int) -> None:
    server.push_faults(Fault.server_error(status=status))
    response = _post(server)
    assert response.status == status
    assert "error" in json.loads(response.read())


def test_client_error_status(server: StubOpenAIServer) -> None:
    server.push_faults(Fault.client_error(401, "bad key"))
    response = _post(server)
    assert response.status == 401
    assert json.loads(response.read())["error"]["message"] == "bad key"


def test_drop_closes_without_an_answer(server: StubOpenAIServer) -> None:
    server.push_faults(Fault.drop())
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _post(server)
    assert server.request_count == 1  # the request did arrive
    assert server.requests[0].fault == Fault.drop()


def test_malformed_is_200_with_a_non_json_body(server: StubOpenAIServer) -> None:
    server.push_faults(Fault.malformed())
    response = _post(server)
    assert response.status == 200
    with pytest.raises(ValueError):
        json.loads(response.read())


def test_latency_and_slow_fault_delay_the_answer() -> None:
    with StubOpenAIServer(latency_s=0.2, faults=[Fault.slow(0.3)]) as stub:
        start = time.perf_counter()
        _post(stub).read()
        slow = time.perf_counter() - start
        start = time.perf_counter()
        _post(stub).read()
        normal = time.perf_counter() - start
    assert slow >= 0.5
    assert 0.2 <= normal < 0.45


def test_slow_fault_trips_a_client_timeout() -> None:
    with StubOpenAIServer(faults=[Fault.slow(2.0)]) as stub, pytest.raises(socket.timeout):
        _post(stub, timeout=0.3).read()


def test_streaming_sends_sse_events_then_done(server: StubOpenAIServer) -> None:
    response = _post(server, {**BODY, "stream": True, "stream_options": {"include_usage": True}})
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    raw = response.read().decode()
    events = [line[len("data: ") :] for line in raw.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "three word answer"
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert any(c["choices"] and c["choices"][0]["finish_reason"] == "stop" for c in chunks)


def test_records_requests_and_redacts_credentials(server: StubOpenAIServer) -> None:
    key = "sk-test-PLANTED-stubheader-123"
    _post(server, headers={"Authorization": f"Bearer {key}", "api-key": key, "X-Trace": "t1"}).read()
    recorded = server.requests[0]
    assert recorded.method == "POST" and recorded.path == "/v1/chat/completions"
    assert recorded.body == BODY
    assert recorded.headers["authorization"] == "REDACTED"
    assert recorded.headers["api-key"] == "REDACTED"
    assert recorded.headers["x-trace"] == "t1"
    assert key not in repr(server.requests) and key not in repr(server)


def test_bad_json_body_is_400(server: StubOpenAIServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request(
        "POST", "/v1/chat/completions", body=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert conn.getresponse().status == 400


def test_reply_function_that_raises_is_a_500() -> None:
    def reply(body: dict[str, Any]) -> str:
        raise KeyError("missing")

    with StubOpenAIServer(reply=reply) as stub:
        response = _post(stub)
        assert response.status == 500
        assert "KeyError" in json.loads(response.read())["error"]["message"]


async def test_handles_64_concurrent_connections() -> None:
    async def one(port: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = json.dumps(BODY).encode()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        data = await reader.read()
        writer.close()
        return int(data.split(b" ", 2)[1])

    with StubOpenAIServer(latency_s=0.3) as stub:
        start = time.perf_counter()
        statuses = await asyncio.gather(*(one(stub.port) for _ in range(64)))
        elapsed = time.perf_counter() - start
        assert statuses == [200] * 64
        assert stub.max_active == 64  # all were in flight at once
    assert elapsed < 2.0  # serial would take 19 s


def test_stop_is_idempotent_and_port_needs_a_running_server() -> None:
    stub = StubOpenAIServer()
    with pytest.raises(BackendError, match="not running"):
        _ = stub.base_url
    stub.start()
    port = stub.port
    stub.stop()
    stub.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_the_fault_server_loads_only_when_asked_for() -> None:
    import subprocess
    import sys

    code = (
        "import sys, promptkit.backends as b\n"
        "print('promptkit.backends._fault_server' in sys.modules)\n"
        "b.StubOpenAIServer\n"
        "print('promptkit.backends._fault_server' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
