"""Any OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, LM Studio...) over a pooled HTTP client.

litellm spends several milliseconds of CPU per call on routing, logging and response objects; against a local
or self-hosted server that is most of the call. This backend speaks ``POST {base_url}/chat/completions``
directly: one pooled ``aiohttp.ClientSession`` per event loop (HTTP/1.1 keep-alive, as many connections as
calls in flight), structured output as a forced tool call (the same contract as ``LiteLLMBackend``'s TOOLS mode:
the raw JSON arguments come back in ``GenerateResponse.text``), streaming over server-sent events, and the
same mapping of faults to promptkit errors.

Why aiohttp and not httpx: at 32 calls in flight against a loopback server, httpx 0.28 / httpcore 1.0 spent
~5 ms of CPU per request (its pool re-checks every connection on each request, under anyio locks), capping
this machine at ~75 requests/s; aiohttp spent ~0.25 ms (encode/httpx#3215, openai/openai-python#1596).
aiohttp comes with litellm, so promptkit[remote] already installs it.

Per request the client does as little as it can. Against a plain ``http://`` server a non-streaming call goes
through a lean HTTP/1.1 keep-alive pool (``_http1``): the request leaves in one write from the calling task,
with a head built once. Streams and ``https://`` use aiohttp: one session per event loop, our own User-Agent,
no Accept-Encoding (answers come uncompressed), no cookie jar (an API needs none). Measured at 32 calls in
flight, 100 ms stub latency, 2 cores: ~340 µs of client CPU per call with aiohttp alone, ~165 µs now.

Model strings:

    openai:http://127.0.0.1:8000/v1#qwen2.5-7b     base URL and model name in one string
    openai:qwen2.5-7b                              with ``api_base = "http://..."`` in the alias

    [models.fast]
    model = "openai:qwen2.5-7b"
    api_base = "http://127.0.0.1:8000/v1"
    api_key_env = "VLLM_API_KEY"      # optional: sent as "Authorization: Bearer ..."
    timeout_s = 30
    max_concurrency = 64              # connections in the pool and calls in flight
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.parse
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel

from promptkit.backends._base import BaseBackend, Capabilities, GenerateRequest, GenerateResponse
from promptkit.backends._errors import map_exception
from promptkit.backends._http1 import H1Pool, HTTPProtocolError
from promptkit.errors import BackendUnavailable, ConfigError, MalformedResponse, RequestTimeout
from promptkit.types import Usage

if TYPE_CHECKING:
    import aiohttp

__all__ = ["OpenAICompatBackend"]

T = TypeVar("T")

_OWN_OPTIONS = {"api_base", "base_url", "api_key_env", "timeout_s", "max_concurrency", "name", "headers"}
# Body fields the backend owns; params may not override them.
_RESERVED = {"model", "messages", "stream"}
_TRANSPORT_PARAMS = {"api_key", "api_base", "base_url", "timeout", "num_retries", "max_retries", "headers"}
_CONNECT_TIMEOUT_S = 10.0
_USER_AGENT = "promptkit"


def _import_aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError as exc:
        raise BackendUnavailable(
            "aiohttp is not installed; the openai: backend needs promptkit[remote] (pip install 'promptkit[remote]')"
        ) from exc
    return aiohttp


def _tool_name(model: type[BaseModel]) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in model.__name__)[:64] or "answer"


_tools_cache: weakref.WeakKeyDictionary[type[BaseModel], str] = weakref.WeakKeyDictionary()


def _tools_json(model: type[BaseModel]) -> str:
    """``tools`` + ``tool_choice`` forcing one function whose parameters are the model's JSON schema.

    Built once per class (JSON schema generation is the slow part) and copied per call: callers may mutate.
    """
    cached = _tools_cache.get(model)
    if cached is None:
        name = _tool_name(model)
        description = (model.__doc__ or "").strip() or f"Answer with a valid {name}."
        cached = json.dumps(
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": name,
                            "description": description,
                            "parameters": model.model_json_schema(),
                        },
                    }
                ],
                "tool_choice": {"type": "function", "function": {"name": name}},
            }
        )
        _tools_cache[model] = cached
    return cached


class _HTTPStatus(Exception):
    """A non-2xx answer; ``map_exception`` reads ``status_code`` and ``headers`` (Retry-After) off it."""

    def __init__(self, message: str, status: int, headers: Any) -> None:
        super().__init__(message)
        self.status_code = status
        self.headers = dict(headers)


def _error_detail(status: int, body: bytes) -> str:
    try:
        data = json.loads(body)
        message = data.get("error", {}).get("message") if isinstance(data, dict) else None
        if isinstance(data, dict) and message is None:
            message = data.get("detail") or data.get("message")
    except ValueError:
        message = None
    text = message if isinstance(message, str) else body[:300].decode("utf-8", "replace")
    return f"HTTP {status}: {text}".strip()


class OpenAICompatBackend(BaseBackend):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint, without litellm.

    ``base_url`` ends with the API root (``http://host:8000/v1``); ``api_key_env`` names an environment
    variable read at call time (never stored); ``max_concurrency`` bounds calls in flight per event loop and
    sizes the connection pool; ``extra_params`` go into every request body.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(structured_output=True, tools=True, streaming=True)

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        max_concurrency: int = 64,
        extra_params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        location = f"model {model!r}"
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url must start with http:// or https://, got {base_url!r}", location=location
            )
        if not model:
            raise ConfigError("OpenAICompatBackend needs a model name", location=f"base_url {base_url!r}")
        if max_concurrency < 1:
            raise ConfigError("max_concurrency must be at least 1", location=location)
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s}", location=location)
        if headers and any(k.lower() == "authorization" for k in headers):
            raise ConfigError("put the key in api_key_env, not in headers", location=location)
        for key, value in (headers or {}).items():
            if any(c in f"{key}{value}" for c in "\r\n") or ":" in key:
                raise ConfigError(
                    f"header {key!r}: no line breaks, and no colon in the name", location=location
                )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or f"openai:{model}"
        self.api_key_env = api_key_env
        self.timeout_s = float(timeout_s)
        self.max_concurrency = max_concurrency
        self.extra_params = {k: v for k, v in (extra_params or {}).items() if k not in _TRANSPORT_PARAMS}
        self.headers = dict(headers or {})
        self._url = f"{self.base_url}/chat/completions"
        self._parsed_url: Any = None  # a yarl.URL, built on first use (yarl comes with aiohttp)
        # Plain http: calls go through the lean HTTP/1.1 pool (see _http1); https and streams through aiohttp.
        parts = urllib.parse.urlsplit(self._url)
        self._h1: tuple[str, int] | None = None
        self._h1_head = b""
        if parts.scheme == "http" and parts.hostname:
            self._h1 = (parts.hostname, parts.port or 80)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            fixed = {
                "Host": parts.netloc,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": _USER_AGENT,
                **self.headers,
            }
            lines = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
            self._h1_head = f"POST {target} HTTP/1.1\r\n{lines}".encode("latin-1")
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, H1Pool] = (
            weakref.WeakKeyDictionary()
        )
        # Sessions and asyncio semaphores belong to one event loop (run_sync makes fresh ones).
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_spec(cls, target: str, options: dict[str, Any]) -> OpenAICompatBackend:
        """``url#model`` or ``model`` with ``api_base``/``base_url`` in the options; other options go in the body."""
        own = {k: v for k, v in options.items() if k in _OWN_OPTIONS}
        base = own.pop("api_base", None) or own.pop("base_url", None)
        own.pop("base_url", None)
        if "#" in target:
            url, _, model = target.rpartition("#")
            if base is not None and base.rstrip("/") != url.rstrip("/"):
                raise ConfigError(
                    f"openai:{target} names a base URL and api_base says {base!r}; give only one",
                    location=f"model {model!r}",
                )
            base = url
        else:
            model = target
        if not base:
            raise ConfigError(
                f"openai:{target} needs a server: write 'openai:http://host:port/v1#{target}' "
                "or set api_base in the alias",
                location=f"model {target!r}",
            )
        extra = dict(options.get("extra_params") or {})
        extra.update({k: v for k, v in options.items() if k not in _OWN_OPTIONS and k != "extra_params"})
        return cls(base, model, extra_params=extra, **own)

    def __repr__(self) -> str:
        return (
            f"OpenAICompatBackend(base_url={self.base_url!r}, model={self.model!r}, "
            f"api_key_env={self.api_key_env!r}, timeout_s={self.timeout_s})"
        )

    @property
    def _location(self) -> str:
        return f"model {self.model!r} at {self.base_url}"

    # ---------------------------------------------------------------- request building

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise ConfigError(
                f"no API key: api_key_env names the environment variable {self.api_key_env}, which is not set",
                location=self._location,
            )
        return value

    def build_body(self, request: GenerateRequest, *, stream: bool = False) -> dict[str, Any]:
        """The JSON body sent to ``/chat/completions``."""
        body: dict[str, Any] = {
            # Our own model name: the router puts the registry target (maybe "url#model") in request.model.
            "model": self.model,
            "messages": [
                {"role": m.role, "content": m.content, **({"name": m.name} if m.name else {})}
                for m in request.messages
            ],
        }
        for field in ("temperature", "max_tokens", "top_p", "stop", "seed"):
            value = getattr(request, field)
            if value is not None:
                body[field] = value
        body.update(self.extra_params)
        body.update(
            {k: v for k, v in request.params.items() if k not in _TRANSPORT_PARAMS and k not in _RESERVED}
        )
        if request.output_model is not None:
            body.update(json.loads(_tools_json(request.output_model)))
        if stream:
            body["stream"] = True
        return body

    async def _client(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is not None and not client.closed:
            return client, self._semaphores[loop]
        return await self._open(loop)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        client = self._clients.get(loop)
        if client is None or client.closed:
            aiohttp = _import_aiohttp()
            if self._parsed_url is None:
                import yarl

                self._parsed_url = yarl.URL(self._url)
            connector = aiohttp.TCPConnector(
                limit=self.max_concurrency, limit_per_host=self.max_concurrency, keepalive_timeout=30.0
            )
            client = aiohttp.ClientSession(
                connector=connector,
                # The call's deadline is enforced around each request; this only bounds connecting.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=min(self.timeout_s, _CONNECT_TIMEOUT_S)
                ),
                headers={
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "User-Agent": _USER_AGENT,
                    **self.headers,
                },
                # Identity encoding: JSON answers are small, and inflating them costs more than it saves.
                skip_auto_headers=("Accept-Encoding",),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # a loopback or in-house server: no proxy from the environment
            )
            self._clients[loop] = client
            self._semaphores[loop] = asyncio.Semaphore(self.max_concurrency)
            pool = None
            if self._h1 is not None:
                pool = self._pools[loop] = H1Pool(
                    *self._h1, connect_timeout_s=min(self.timeout_s, _CONNECT_TIMEOUT_S)
                )
            # asyncio.run() (and so run_sync) closes live async generators before it closes the loop: this one
            # closes the pool then, so no socket outlives its loop and aiohttp never warns of an open session.
            keeper = _close_at_loop_end(client, pool, lambda: self._forget(loop))
            await keeper.__anext__()
            self._keepers[loop] = keeper
        return client, self._semaphores[loop]

    def _headers(self, api_key: str | None) -> dict[str, str] | None:
        if not api_key:
            return None
        return {"Authorization": f"Bearer {api_key}"}  # built per call: the key is never kept on the backend

    def _raise_if_key_wanted(self, exc: BaseException) -> None:
        """HTTP 401 from a server we sent no key to: a configuration error (no retry, no escalation helps),
        saying where the key goes."""
        if isinstance(exc, _HTTPStatus) and exc.status_code == 401 and not self.api_key_env:
            raise ConfigError(
                "no API key: the server answered HTTP 401 (unauthorized) and none was sent; set api_key_env "
                "in the model's [models.<alias>] table to the environment variable that holds the key",
                location=self._location,
            ) from None

    def _timeout(self, request: GenerateRequest) -> float:
        return float(request.timeout_s) if request.timeout_s is not None else self.timeout_s

    # ---------------------------------------------------------------- calls

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        api_key = self._api_key()
        content = json.dumps(self.build_body(request), ensure_ascii=False).encode()
        timeout = self._timeout(request)
        client, semaphore = await self._client()
        async with semaphore:
            start = time.perf_counter()
            try:
                pool = self._pools.get(asyncio.get_running_loop())
                if pool is not None:
                    exchange = pool.request(self._h1_request(content, api_key))
                else:
                    exchange = self._post(client, content, self._headers(api_key))
                status, headers, data = await _within(exchange, timeout)
                if status >= 300:
                    raise _HTTPStatus(_error_detail(status, data), status, headers)
                payload = json.loads(data)
            except asyncio.TimeoutError:
                raise RequestTimeout(f"no answer within {timeout:g} s", location=self._location) from None
            except HTTPProtocolError as exc:
                raise MalformedResponse(f"not an HTTP answer: {exc}", location=self._location) from None
            except Exception as exc:
                self._raise_if_key_wanted(exc)
                raise map_exception(
                    exc, secrets=[api_key], location=self._location, what="completion"
                ) from None
            latency = time.perf_counter() - start
        return self._to_response(request, payload, latency)

    def _h1_request(self, content: bytes, api_key: str | None) -> bytes:
        auth = b""
        if api_key:
            if "\r" in api_key or "\n" in api_key:
                raise ConfigError(
                    f"the key in {self.api_key_env} has a line break in it", location=self._location
                )
            auth = f"Authorization: Bearer {api_key}\r\n".encode("latin-1")
        return b"%b%bContent-Length: %d\r\n\r\n%b" % (self._h1_head, auth, len(content), content)

    async def _post(self, client: Any, content: bytes, headers: Any) -> tuple[int, Any, bytes]:
        async with client.post(self._parsed_url, data=content, headers=headers) as response:
            return response.status, response.headers, await response.read()

    def _to_response(self, request: GenerateRequest, payload: Any, latency: float) -> GenerateResponse:
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not choices or not isinstance(choices[0], dict):
            raise MalformedResponse("the response has no choices", location=self._location)
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedResponse("the first choice has no message", location=self._location)
        usage = payload.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        finish = choice.get("finish_reason")
        try:
            tokens = Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
            )
        except (TypeError, ValueError):
            raise MalformedResponse(
                f"usage is not token counts: {usage!r:.200}", location=self._location
            ) from None
        return GenerateResponse(
            text=self._answer_text(request, message),
            model=str(payload.get("model") or self.model),
            finish_reason=finish if isinstance(finish, str) else None,
            usage=tokens,
            latency_s=latency,
        )

    def _answer_text(self, request: GenerateRequest, message: dict[str, Any]) -> str:
        if request.output_model is not None:
            for call in message.get("tool_calls") or []:
                arguments = (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
                if isinstance(arguments, str):
                    return arguments
                if isinstance(arguments, dict):  # some servers hand back parsed arguments
                    return json.dumps(arguments, ensure_ascii=False)
        # No tool call: hand back whatever text came, and let the re-ask loop judge it.
        content = message.get("content")
        return content if isinstance(content, str) else ""

    async def stream(self, request: GenerateRequest) -> AsyncIterator[str]:
        """Yield text chunks as they arrive (tool-call argument pieces, for structured output)."""
        api_key = self._api_key()
        content = json.dumps(self.build_body(request, stream=True), ensure_ascii=False).encode()
        timeout = self._timeout(request)
        structured = request.output_model is not None
        client, semaphore = await self._client()
        async with semaphore:
            deadline = time.monotonic() + timeout
            try:
                # A deadline per step, in this task: a timeout scope around the yields would cancel the consumer.
                response = await _within(
                    client.post(self._parsed_url, data=content, headers=self._headers(api_key)), timeout
                )
                async with response:
                    if response.status >= 300:
                        body = await _within(response.read(), _left(deadline))
                        raise _HTTPStatus(
                            _error_detail(response.status, body), response.status, response.headers
                        )
                    while True:
                        raw = await _within(response.content.readline(), _left(deadline))
                        if not raw:
                            break
                        line = raw.decode("utf-8").strip()
                        if not line.startswith("data:"):
                            continue  # blank separators, comments, "event:" lines
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        piece = _chunk_text(json.loads(data), structured)
                        if piece:
                            yield piece
            except asyncio.TimeoutError:
                raise RequestTimeout(
                    f"stream not finished within {timeout:g} s", location=self._location
                ) from None
            except Exception as exc:
                self._raise_if_key_wanted(exc)
                raise map_exception(exc, secrets=[api_key], location=self._location, what="stream") from None

    def _forget(self, loop: asyncio.AbstractEventLoop) -> None:
        self._clients.pop(loop, None)
        self._pools.pop(loop, None)
        self._semaphores.pop(loop, None)
        self._keepers.pop(loop, None)

    async def aclose(self) -> None:
        """Close this event loop's connection pool. Safe to call twice."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose is a coroutine, so a loop runs
            return
        client = self._clients.pop(loop, None)
        self._semaphores.pop(loop, None)
        keeper = self._keepers.pop(loop, None)
        pool = self._pools.pop(loop, None)
        if pool is not None:
            pool.close()
        if client is not None:
            await client.close()
        if keeper is not None:
            await keeper.aclose()


async def _close_at_loop_end(
    client: Any, pool: H1Pool | None, forget: Callable[[], None]
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        forget()  # the session refers to its loop: left in the weak dicts, it would keep the loop alive
        if pool is not None:
            pool.close()
        if not client.closed:
            await client.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise asyncio.TimeoutError
    return left


async def _within(awaitable: Awaitable[T], seconds: float) -> T:
    """Await with a deadline in this task (``wait_for`` on 3.11 would run it in a new task)."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:  # Python 3.10
        return await asyncio.wait_for(awaitable, seconds)
    async with timeout(seconds):
        return await awaitable


def _chunk_text(chunk: Any, structured: bool) -> str:
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta") or {}
    if structured:
        parts = [
            (call.get("function") or {}).get("arguments") or ""
            for call in delta.get("tool_calls") or []
            if isinstance(call, dict)
        ]
        if any(parts):
            return "".join(parts)
    content = delta.get("content")
    return content if isinstance(content, str) else ""
