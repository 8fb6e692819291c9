"""A real OpenAI-compatible HTTP server on 127.0.0.1, with scripted latency and faults.

It runs an asyncio server in a background thread with a minimal HTTP/1.1 parser (keep-alive, Content-Length
and chunked bodies), so hundreds of concurrent connections cost nothing but sockets. With ``process=True`` the
same server runs in a child process instead, so that a benchmark's client does not share its GIL with the
server; the parent then reads counts and recorded requests, and pushes faults, over ``/_stub/*`` control
routes (which are neither recorded nor counted). Clients such as litellm
and the openai SDK talk to it exactly as they would to a provider, which lets tests put every transport fault
on the wire: 429 with Retry-After, 5xx, a slow answer, a dropped connection, a body that is not JSON.

The configured latency is kept to within a fraction of a millisecond: each answer is due at an absolute
deadline (the request's arrival plus ``latency_s``), and the server's event loop waits on its epoll with
``select()``'s microsecond timeout, because epoll itself rounds every timeout up to a whole millisecond (which
made a 100 ms answer take ~101-102 ms). ``RecordedRequest.latency_s`` is what each request really got.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.client
import json
import os
import select
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from promptkit.errors import BackendError

__all__ = ["Fault", "RecordedRequest", "StubOpenAIServer"]

_REDACTED_HEADERS = {"authorization", "api-key", "x-api-key", "proxy-authorization"}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_MAX_BODY = 32 * 1024 * 1024
_CONTROL = "/_stub/"
_START_TIMEOUT_S = 30.0

Reply = Callable[[dict[str, Any]], "str | dict[str, Any]"]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, applied to one request. Build them with the class methods."""

    kind: str
    status: int = 200
    retry_after: float | str | None = None
    seconds: float = 0.0
    message: str = ""

    @classmethod
    def rate_limit(cls, retry_after: float | str | None = 1.5) -> Fault:
        """HTTP 429, with a ``Retry-After`` header unless ``retry_after`` is None."""
        return cls("rate_limit", status=429, retry_after=retry_after, message="rate limit exceeded")

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("http_error", status=status, message="internal server error")

    @classmethod
    def client_error(cls, status: int = 400, message: str = "invalid request") -> Fault:
        """A 4xx other than 429: the provider rejects the request itself."""
        return cls("http_error", status=status, message=message)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` more."""
        return cls("slow", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Read the request, then close the connection without a byte of answer."""
        return cls("drop")

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200 whose body is not JSON (or, when streaming, not JSON events)."""
        return cls("malformed")


@dataclass
class RecordedRequest:
    """What the server received. Credential headers are replaced by ``REDACTED``."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    fault: Fault | None = None
    received_at: float = field(default_factory=time.time)
    # Seconds from the request's arrival (fully read) to its answer being written; None until answered.
    # (Taken just before the write, a syscall of microseconds, so that it is there when the client reads.)
    latency_s: float | None = None


class _Drop(Exception):
    """Close the connection now, without answering."""


# select() takes only descriptors below FD_SETSIZE; past it the loop falls back to epoll's own timeout.
_FD_SETSIZE = 1024


class _PreciseEpollSelector(selectors.EpollSelector):
    """epoll for readiness, but timers waited for with select()'s microsecond timeout.

    epoll_wait takes whole milliseconds and Python rounds up, so every asyncio timer fired up to 1 ms late
    (2 ms measured on a VM). An epoll descriptor is itself pollable: select() on it with the exact timeout
    wakes on the first ready socket or at the deadline (+~0.1 ms of kernel timer slack), then a zero-timeout
    epoll_wait collects the events.
    """

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0 and self.fileno() < _FD_SETSIZE:
            with contextlib.suppress(InterruptedError):
                select.select([self.fileno()], [], [], timeout)
            timeout = 0
        return super().select(timeout)


def _new_loop() -> asyncio.AbstractEventLoop:
    if hasattr(selectors, "EpollSelector"):
        return asyncio.SelectorEventLoop(_PreciseEpollSelector())
    return asyncio.new_event_loop()  # kqueue/select already take sub-millisecond timeouts


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    """Sleep until ``deadline`` (loop time), not for a delay measured from whenever this line runs."""
    if deadline <= loop.time():
        return
    waiter = loop.create_future()
    handle = loop.call_at(deadline, _wake, waiter)
    try:
        await waiter
    finally:
        handle.cancel()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _count_words(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):
            total += sum(len(str(p.get("text", "")).split()) for p in content if isinstance(p, dict))
    return total


def _default_reply(body: dict[str, Any]) -> str:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    last = messages[-1].get("content", "") if messages else ""
    return f"echo: {last}" if isinstance(last, str) else "echo"


def _tool_name(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return str(name)
    tools = body.get("tools") or []
    if tools and isinstance(tools[0], dict):
        return str((tools[0].get("function") or {}).get("name") or "") or None
    return None


class StubOpenAIServer:
    """An OpenAI-compatible server for tests and benchmarks.

    ``reply`` is a fixed text or ``fn(request_json) -> str | dict``; a dict is answered as a tool call when the
    request has ``tools`` (what instructor's TOOLS mode sends), and as JSON content otherwise. ``faults`` is
    a queue applied to successive requests, one fault per request; ``push_faults`` adds more. Every request is
    recorded in ``requests`` (credentials redacted) and counted in ``request_count``.

        with StubOpenAIServer(reply="hi", latency_s=0.1, faults=[Fault.rate_limit(2)]) as server:
            litellm.completion(model="openai/stub", api_base=server.base_url, api_key="x", ...)

    ``process=True`` serves from a child process (``reply`` must then be a string or None): use it when the
    client measures its own throughput, so that the server's CPU does not count against it.
    """

    def __init__(
        self,
        *,
        reply: str | Reply | None = None,
        latency_s: float = 0.0,
        faults: Iterable[Fault] = (),
        model: str = "stub",
        host: str = "127.0.0.1",
        port: int = 0,
        process: bool = False,
    ) -> None:
        if process and callable(reply):
            raise BackendError("a stub server in a child process needs a text reply, not a function")
        self.reply = reply
        self.process = process
        self._child: subprocess.Popen[str] | None = None
        self.latency_s = latency_s
        self.model = model
        self.host = host
        self._port = port
        self._faults: deque[Fault] = deque(faults)
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._active = 0
        self._max_active = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> StubOpenAIServer:
        if self.process:
            return self._start_child()
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = _new_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self._port, backlog=2048, limit=_MAX_BODY)
                )
                self._port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="promptkit-stub-openai", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise BackendError(
                f"stub server could not listen: {failure[0]}", location=f"{self.host}:{self._port}"
            )
        return self

    def _start_child(self) -> StubOpenAIServer:
        if self._child is not None:
            return self
        faults = [asdict(f) for f in self._faults]
        command = [
            sys.executable,
            "-c",
            "from promptkit.backends._fault_server import main; main()",
            "--host", self.host,
            "--port", str(self._port),
            "--latency", repr(self.latency_s),
            "--model", self.model,
            "--faults", json.dumps(faults),
        ]  # fmt: skip
        if self.reply is not None:
            command += ["--reply", str(self.reply)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        line = _read_line(child, _START_TIMEOUT_S)
        if not line.startswith("listening "):
            child.kill()
            child.wait()
            raise BackendError(
                f"stub server process did not start (exit code {child.poll()}): {line.strip() or 'no output'}",
                location=f"{self.host}:{self._port}",
            )
        self._port = int(line.split()[1])
        self._child = child
        self._faults.clear()  # the child owns them now
        return self

    def stop(self) -> None:
        """Close the listener and every open connection. Safe to call twice."""
        child = self._child
        if child is not None:
            self._child = None
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()
            return
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> StubOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- inspection

    @property
    def running(self) -> bool:
        return self._thread is not None or self._child is not None

    @property
    def port(self) -> int:
        if not self.running:
            raise BackendError("stub server is not running; call start() or use it as a context manager")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        if self._child is not None:
            rows = self._control("GET", "requests")
            return [
                RecordedRequest(**{**r, "fault": Fault(**r["fault"]) if r["fault"] else None}) for r in rows
            ]
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        if self._child is not None:
            return int(self._control("GET", "state")["request_count"])
        with self._lock:
            return len(self._requests)

    @property
    def pending_faults(self) -> int:
        if self._child is not None:
            return int(self._control("GET", "state")["pending_faults"])
        with self._lock:
            return len(self._faults)

    @property
    def max_active(self) -> int:
        """The most requests the server was answering at once."""
        if self._child is not None:
            return int(self._control("GET", "state")["max_active"])
        return self._max_active

    def push_faults(self, *faults: Fault) -> None:
        if self._child is not None:
            self._control("POST", "faults", [asdict(f) for f in faults])
            return
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        """Forget recorded requests and pending faults."""
        if self._child is not None:
            self._control("POST", "reset")
            return
        with self._lock:
            self._requests.clear()
            self._faults.clear()
        self._max_active = 0

    def _control(self, method: str, what: str, payload: Any = None) -> Any:
        """Ask the child process (over loopback HTTP) for its state, or change it."""
        conn = http.client.HTTPConnection(self.host, self._port, timeout=30)
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            conn.request(method, f"{_CONTROL}{what}", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        except OSError as exc:
            raise BackendError(
                f"stub server process does not answer: {exc}", location=f"{self.host}:{self._port}"
            ) from exc
        finally:
            conn.close()
        if response.status != 200:
            raise BackendError(
                f"stub control {what!r} failed with HTTP {response.status}",
                location=f"{self.host}:{self._port}",
            )
        return json.loads(data)

    def _control_answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Serve a ``/_stub/*`` route in the process that owns the state."""
        what = path[len(_CONTROL) :]
        with self._lock:
            if what == "state":
                return 200, {
                    "request_count": len(self._requests),
                    "pending_faults": len(self._faults),
                    "max_active": self._max_active,
                }
            if what == "requests":
                return 200, [asdict(r) for r in self._requests]
            if what == "faults" and method == "POST" and isinstance(body, list):
                self._faults.extend(Fault(**f) for f in body)
                return 200, {"pending_faults": len(self._faults)}
            if what == "reset" and method == "POST":
                self._requests.clear()
                self._faults.clear()
                self._max_active = 0
                return 200, {}
        return 404, {"error": {"message": f"no control route {method} {path}"}}

    # ---------------------------------------------------------------- HTTP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        loop = asyncio.get_running_loop()
        try:
            while True:
                parsed = await self._read_request(reader)
                if parsed is None:
                    break
                arrived = loop.time()
                method, path, headers, raw = parsed
                keep_alive = headers.get("connection", "").lower() != "close"
                self._active += 1
                self._max_active = max(self._max_active, self._active)
                try:
                    await self._respond(writer, method, path, headers, raw, keep_alive, arrived)
                finally:
                    self._active -= 1
                if not keep_alive:
                    break
        except (_Drop, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._handlers.discard(task)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, str, dict[str, str], bytes] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # the client closed an idle keep-alive connection
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                body += await reader.readexactly(size)
                await reader.readexactly(2)
            raw = bytes(body)
        else:
            length = int(headers.get("content-length", "0") or 0)
            if length > _MAX_BODY:
                raise ValueError("request body too large")
            raw = await reader.readexactly(length) if length else b""
        return method.upper(), target.split("?", 1)[0], headers, raw

    def _record(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[RecordedRequest, Fault | None]:
        safe = {k: ("REDACTED" if k in _REDACTED_HEADERS else v) for k, v in headers.items()}
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            record = RecordedRequest(method, path, safe, body, fault)
            self._requests.append(record)
        return record, fault

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        headers: dict[str, str],
        raw: bytes,
        keep_alive: bool,
        arrived: float,
    ) -> None:
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        if path.startswith(_CONTROL):
            status, answer = self._control_answer(method, path, body)
            await self._send(writer, status, json.dumps(answer).encode(), keep_alive)
            return
        record, fault = self._record(method, path, headers, body)
        # The answer is built before the wait, so that its CPU does not push the reply past the deadline.
        status, payload, extra = self._reply(method, path, body, fault)
        deadline = (
            arrived + self.latency_s + (fault.seconds if fault is not None and fault.kind == "slow" else 0)
        )
        loop = asyncio.get_running_loop()
        await _sleep_until(loop, deadline)
        if fault is not None and fault.kind == "drop":
            raise _Drop
        # Set before writing: once the bytes are out, a client may read the record before this line runs.
        record.latency_s = loop.time() - arrived
        if isinstance(payload, list):
            await self._send_stream(writer, payload, keep_alive)
        else:
            await self._send(writer, status, payload, keep_alive, extra)

    def _reply(
        self, method: str, path: str, body: Any, fault: Fault | None
    ) -> tuple[int, bytes | list[bytes], dict[str, str] | None]:
        """(status, body or stream events, extra headers) for one recorded request."""
        streaming = isinstance(body, dict) and bool(body.get("stream"))
        if fault is not None and fault.kind == "malformed":
            return 200, [b"data: {this is not json\n\n"] if streaming else b"<html>this is not json{", None
        if fault is not None and fault.kind in ("rate_limit", "http_error"):
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            kind = "rate_limit_error" if fault.status == 429 else "server_error"
            if 400 <= fault.status < 500 and fault.status != 429:
                kind = "invalid_request_error"
            return fault.status, _error_body(fault.status, fault.message, kind), extra
        if method == "GET" and path.rstrip("/") in ("/v1/models", "/models"):
            listing = {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "promptkit"}],
            }
            return 200, json.dumps(listing).encode(), None
        if path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return 404, _error_body(404, f"no route {method} {path}"), None
        if method != "POST":
            return 405, _error_body(405, f"{method} not allowed on {path}"), None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return 400, _error_body(400, "body must be a JSON object with 'messages'"), None
        try:
            if streaming:
                return 200, self._stream_events(body), None
            return 200, self._completion(body), None
        except Exception as exc:  # a broken reply function is a server error, as it would be for real
            return 500, _error_body(500, f"reply function raised {type(exc).__name__}: {exc}"), None

    # ---------------------------------------------------------------- answers

    def _answer(self, body: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        """(content, tool call) for this request."""
        value = self.reply(body) if callable(self.reply) else self.reply
        if value is None:
            value = _default_reply(body)
        if isinstance(value, dict):
            name = _tool_name(body)
            if name and body.get("tools"):
                call = {
                    "id": f"call_{int(time.time() * 1e6)}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(value)},
                }
                return None, call
            return json.dumps(value), None
        return str(value), None

    def _usage(
        self, body: dict[str, Any], content: str | None, call: dict[str, Any] | None
    ) -> dict[str, int]:
        out = len((content or "").split()) + (len(call["function"]["arguments"].split()) if call else 0)
        prompt = _count_words(body)
        return {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}

    def _completion(self, body: dict[str, Any]) -> bytes:
        """The JSON of a chat.completion, assembled around its few variable parts (no json.dumps of a tree)."""
        content, call = self._answer(body)
        if call is None:
            message, finish = f'{{"role":"assistant","content":{_json_text(content or "")}}}', "stop"
        else:
            tool_calls = {"role": "assistant", "content": None, "tool_calls": [call]}
            message, finish = json.dumps(tool_calls), "tool_calls"
        usage = self._usage(body, content, call)
        return (
            f'{{"id":"chatcmpl-stub{self.request_count}","object":"chat.completion",'
            f'"created":{int(time.time())},"model":{_json_text(str(body.get("model") or self.model))},'
            f'"choices":[{{"index":0,"message":{message},"finish_reason":"{finish}"}}],'
            f'"usage":{{"prompt_tokens":{usage["prompt_tokens"]},'
            f'"completion_tokens":{usage["completion_tokens"]},"total_tokens":{usage["total_tokens"]}}}}}'
        ).encode()

    def _stream_events(self, body: dict[str, Any]) -> list[bytes]:
        content, call = self._answer(body)
        base = {
            "id": f"chatcmpl-stub{self.request_count}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": str(body.get("model") or self.model),
        }

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(chunk)}\n\n".encode()

        events = [event({"role": "assistant", "content": ""})]
        if call is not None:
            args = call["function"]["arguments"]
            head = {
                "index": 0,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            events.append(event({"tool_calls": [head]}))
            for i in range(0, len(args), 8):
                piece = {"index": 0, "function": {"arguments": args[i : i + 8]}}
                events.append(event({"tool_calls": [piece]}))
            events.append(event({}, "tool_calls"))
        else:
            words = (content or "").split(" ")
            for i, word in enumerate(words):
                events.append(event({"content": word if i == 0 else " " + word}))
            events.append(event({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage_chunk = {**base, "choices": [], "usage": self._usage(body, content, call)}
            events.append(f"data: {json.dumps(usage_chunk)}\n\n".encode())
        events.append(b"data: [DONE]\n\n")
        return events

    # ---------------------------------------------------------------- wire

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: bytes,
        keep_alive: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        head = _head(status, keep_alive) + b"%d\r\n" % len(payload)
        if extra:
            head += "".join(f"{k}: {v}\r\n" for k, v in extra.items()).encode("latin-1")
        writer.write(head + b"\r\n" + payload)
        await writer.drain()

    async def _send_stream(self, writer: asyncio.StreamWriter, events: list[bytes], keep_alive: bool) -> None:
        head = [
            "HTTP/1.1 200 OK",
            "Content-Type: text/event-stream",
            "Cache-Control: no-cache",
            "Transfer-Encoding: chunked",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for data in events:
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self.running else "stopped"
        return (
            f"StubOpenAIServer({where}, requests={self.request_count}, pending_faults={self.pending_faults})"
        )


def _error_body(status: int, message: str, kind: str = "invalid_request_error") -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": str(status)}}).encode()


@functools.lru_cache(maxsize=256)
def _json_text(text: str) -> str:
    """A JSON string literal; the reply and model name repeat, so each is encoded once."""
    return json.dumps(text)


@functools.lru_cache(maxsize=64)
def _head(status: int, keep_alive: bool) -> bytes:
    """The constant start of a JSON answer's head, up to the Content-Length value."""
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: application/json\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\nContent-Length: "
    ).encode("latin-1")


def _read_line(child: subprocess.Popen[str], timeout: float) -> str:
    """The child's first line of output, or "" when it exits or says nothing in time."""
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(child.stdout.readline() if child.stdout else ""))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    return found[0] if found else ""


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT: the child side of ``StubOpenAIServer(process=True)``.

    Prints ``listening <port>`` once the socket is open.
    """
    parser = argparse.ArgumentParser(description="promptkit's OpenAI-compatible stub server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--reply", default=None)
    parser.add_argument("--model", default="stub")
    parser.add_argument("--faults", default="[]", help="a JSON list of Fault fields")
    args = parser.parse_args(argv)
    faults = [Fault(**f) for f in json.loads(args.faults)]
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    server = StubOpenAIServer(
        reply=args.reply,
        latency_s=args.latency,
        faults=faults,
        model=args.model,
        host=args.host,
        port=args.port,
    ).start()
    print(f"listening {server.port}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
