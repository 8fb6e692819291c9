"""OpenAICompatBackend on the wire: the fixed headers it sends, key rotation, and answers it must refuse."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from promptkit.backends import GenerateRequest, OpenAICompatBackend, StubOpenAIServer
from promptkit.errors import ConfigError, ConnectionFailed, MalformedResponse
from promptkit.types import Message

pytest.importorskip("aiohttp")


def _req() -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content="hi")])


class _RawServer:
    """Answers every request with ``answer`` (a JSON-able body) and keeps each request's headers."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = json.dumps(answer).encode()
        self.heads: list[dict[str, str]] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.heads.append(headers)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(self.answer)}\r\n\r\n".encode()
                    + self.answer
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[tuple[_RawServer, asyncio.Server]]:
    server = _RawServer(
        {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
    )
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    yield server, listener
    listener.close()
    await listener.wait_closed()


def _url(listener: asyncio.Server) -> str:
    return f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/v1"


async def test_fixed_headers_ask_for_an_uncompressed_json_answer() -> None:
    with StubOpenAIServer(reply="ok") as stub:
        backend = OpenAICompatBackend(stub.base_url, "m", headers={"X-Team": "evals"})
        assert (await backend.generate(_req())).text == "ok"
        await backend.aclose()
        headers = stub.requests[0].headers
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"] == "promptkit"
    assert headers["x-team"] == "evals"
    assert "accept-encoding" not in headers  # identity: no compressed answer to inflate
    assert "cookie" not in headers


async def test_a_rotated_key_is_sent_on_the_next_call(
    raw: tuple[_RawServer, asyncio.Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, listener = raw
    backend = OpenAICompatBackend(_url(listener), "m", api_key_env="WIRE_TEST_KEY")
    monkeypatch.setenv("WIRE_TEST_KEY", "sk-first")
    await backend.generate(_req())
    await backend.generate(_req())
    monkeypatch.setenv("WIRE_TEST_KEY", "sk-second")
    await backend.generate(_req())
    await backend.aclose()
    assert [h["authorization"] for h in server.heads] == [
        "Bearer sk-first",
        "Bearer sk-first",
        "Bearer sk-second",
    ]
    assert server.connections == 1  # sequential calls share one keep-alive connection


@pytest.mark.parametrize(
    "usage",
    [{"prompt_tokens": "many", "completion_tokens": 1}, {"prompt_tokens": [1], "completion_tokens": 1}],
)
async def test_usage_that_is_not_token_counts_is_malformed(
    raw: tuple[_RawServer, asyncio.Server], usage: dict[str, Any]
) -> None:
    server, listener = raw
    server.answer = json.dumps(
        {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}], "usage": usage}
    ).encode()
    backend = OpenAICompatBackend(_url(listener), "m")
    with pytest.raises(MalformedResponse, match="usage is not token counts"):
        await backend.generate(_req())
    await backend.aclose()


async def test_a_finish_reason_that_is_not_text_is_dropped(raw: tuple[_RawServer, asyncio.Server]) -> None:
    server, listener = raw
    server.answer = json.dumps({"choices": [{"message": {"content": "ok"}, "finish_reason": 7}]}).encode()
    backend = OpenAICompatBackend(_url(listener), "m")
    response = await backend.generate(_req())
    await backend.aclose()
    assert response.text == "ok" and response.finish_reason is None


# -- the lean HTTP/1.1 path (plain http): framings, connection reuse and bytes that are not HTTP -----------------

OK_JSON = json.dumps({"choices": [{"message": {"content": "framed"}, "finish_reason": "stop"}]}).encode()


class _Scripted:
    """Answers request n with ``answers[n]`` (raw bytes), closing the connection after it when asked."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = answers
        self.served = 0
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                raw, close = self.answers[self.served]
                self.served += 1
                for i in range(0, len(raw), 7):  # in small pieces: the parser must join them
                    writer.write(raw[i : i + 7])
                    await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _serve(script: _Scripted) -> tuple[asyncio.Server, str]:
    listener = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    return listener, f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/v1"


def _chunked(body: bytes, size: int = 10) -> bytes:
    parts = b"".join(
        b"%x;ext=1\r\n%b\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    )
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + parts + b"0\r\nX-Trailer: t\r\n\r\n"


async def test_every_framing_of_an_answer_is_read_and_the_connection_reused_only_when_kept_alive() -> None:
    sized = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(OK_JSON), OK_JSON)
    script = _Scripted(
        [
            (b"HTTP/1.1 100 Continue\r\n\r\n" + sized, False),  # an interim answer first
            (_chunked(OK_JSON), False),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%b"
                % (len(OK_JSON), OK_JSON),
                True,
            ),
            (b"HTTP/1.0 200 OK\r\n\r\n" + OK_JSON, True),  # no length: the body ends with the connection
            (sized, False),
        ]
    )
    listener, url = await _serve(script)
    backend = OpenAICompatBackend(url, "m")
    try:
        texts = [(await backend.generate(_req())).text for _ in range(5)]
    finally:
        await backend.aclose()
        listener.close()
    assert texts == ["framed"] * 5
    # 1st and 2nd share a connection; the 3rd says close; the 4th ends at close; the 5th needs a new one.
    assert script.connections == 3


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    sized = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(OK_JSON), OK_JSON)
    script = _Scripted([(sized, True), (sized, False)])  # the server drops the connection after answering
    listener, url = await _serve(script)
    backend = OpenAICompatBackend(url, "m")
    try:
        assert (await backend.generate(_req())).text == "framed"
        await asyncio.sleep(0.05)  # the close reaches the client while the connection is idle
        assert (await backend.generate(_req())).text == "framed"
    finally:
        await backend.aclose()
        listener.close()
    assert script.connections == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ],
)
async def test_bytes_that_are_not_http_are_a_malformed_response(raw: bytes) -> None:
    listener, url = await _serve(_Scripted([(raw, False)]))
    backend = OpenAICompatBackend(url, "m")
    try:
        with pytest.raises(MalformedResponse, match="not an HTTP answer"):
            await backend.generate(_req())
    finally:
        await backend.aclose()
        listener.close()


async def test_a_connection_dropped_mid_answer_is_a_connection_failure() -> None:
    listener, url = await _serve(_Scripted([(b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"cho', True)]))
    backend = OpenAICompatBackend(url, "m")
    try:
        with pytest.raises(ConnectionFailed):
            await backend.generate(_req())
    finally:
        await backend.aclose()
        listener.close()


def test_header_values_cannot_inject_lines() -> None:
    with pytest.raises(ConfigError, match="line breaks"):
        OpenAICompatBackend("http://127.0.0.1:9/v1", "m", headers={"X-A": "1\r\nX-Evil: 2"})


def test_pools_close_with_their_event_loop() -> None:
    with StubOpenAIServer(reply="ok") as stub:
        backend = OpenAICompatBackend(stub.base_url, "m")
        for _ in range(2):
            assert backend.generate_sync(_req()).text == "ok"
        assert not backend._pools and not backend._clients


async def test_a_connection_idle_past_the_keepalive_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptkit.backends import _http1

    sized = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(OK_JSON), OK_JSON)
    script = _Scripted([(sized, False), (sized, False), (sized, False)])
    listener, url = await _serve(script)
    backend = OpenAICompatBackend(url, "m")
    try:
        await backend.generate(_req())
        await backend.generate(_req())
        assert script.connections == 1
        monkeypatch.setattr(_http1, "_KEEPALIVE_S", 0.0)  # as if it had sat idle for longer than allowed
        await backend.generate(_req())
    finally:
        await backend.aclose()
        listener.close()
    assert script.connections == 2
