"""Deterministic backends for tests: a replayed script and a plain function.

They ship in the library so that users can test their own prompts and pipelines without a model,
the way DSPy's DummyLM or pydantic-ai's TestModel are used.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from promptkit.backends._base import BaseBackend, Capabilities, GenerateRequest, GenerateResponse
from promptkit.errors import BackendError, PromptkitError
from promptkit.types import Usage

__all__ = ["ScriptedReply", "ScriptedBackend", "FunctionBackend", "word_count"]

_DEFAULT_CAPABILITIES = Capabilities(structured_output=True, streaming=True)
_CHUNK = re.compile(r"\s*\S+|\s+")


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted answer with optional usage, delay and price."""

    text: str | dict[str, Any]
    usage: Usage | None = None
    delay_s: float = 0.0
    cost_usd: float | None = None
    finish_reason: str = "stop"


ScriptItem: TypeAlias = "str | dict[str, Any] | BaseException | ScriptedReply"


def word_count(text: str) -> int:
    """The deterministic token count the fake backends report: whitespace-separated words."""
    return len(text.split())


def _as_text(value: str | dict[str, Any]) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _usage_for(request: GenerateRequest, text: str) -> Usage:
    return Usage(
        input_tokens=sum(word_count(m.content) for m in request.messages),
        output_tokens=word_count(text),
    )


def _chunks(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is exactly ``text``."""
    return _CHUNK.findall(text) or [text]


class ScriptedBackend(BaseBackend):
    """Replays queued outputs in order.

    A ``dict`` is sent as its JSON text; an exception instance is raised (script transport faults with
    ``RateLimited(...)``); a :class:`ScriptedReply` carries usage, a delay and a price. When the queue is
    empty the ``default`` text is returned, or a :class:`BackendError` says the script ran out.
    """

    def __init__(
        self,
        outputs: Iterable[ScriptItem] = (),
        *,
        name: str = "scripted",
        default: str | None = None,
        capabilities: Capabilities = _DEFAULT_CAPABILITIES,
    ) -> None:
        self.name = name
        self.capabilities = capabilities  # type: ignore[misc]  # per instance on purpose
        self.default = default
        self.history: list[GenerateRequest] = []
        self.calls = 0
        self._queue: deque[ScriptItem] = deque(outputs)
        self._consumed = 0
        self._lock = threading.Lock()

    def push(self, *outputs: ScriptItem) -> None:
        """Append outputs to the end of the script."""
        with self._lock:
            self._queue.extend(outputs)

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def _next(self, request: GenerateRequest) -> ScriptItem:
        with self._lock:
            self.history.append(request)
            self.calls += 1
            if self._queue:
                self._consumed += 1
                return self._queue.popleft()
            consumed = self._consumed
        if self.default is not None:
            return self.default
        raise BackendError(
            f"the script ran out: all {consumed} scripted output(s) were consumed and no default is set "
            f"(call {self.calls}); push() more outputs or pass default=",
            location=f"backend {self.name!r}",
        )

    async def _reply(self, request: GenerateRequest) -> ScriptedReply:
        item = self._next(request)
        if isinstance(item, BaseException):
            raise item
        reply = item if isinstance(item, ScriptedReply) else ScriptedReply(text=item)
        if reply.delay_s > 0:
            await asyncio.sleep(reply.delay_s)
        return reply

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        start = time.perf_counter()
        reply = await self._reply(request)
        text = _as_text(reply.text)
        return GenerateResponse(
            text=text,
            model=request.model or self.name,
            finish_reason=reply.finish_reason,
            usage=reply.usage if reply.usage is not None else _usage_for(request, text),
            latency_s=time.perf_counter() - start,
            cost_usd=reply.cost_usd,
        )

    async def stream(self, request: GenerateRequest) -> AsyncIterator[str]:
        reply = await self._reply(request)
        for piece in _chunks(_as_text(reply.text)):
            yield piece

    def __repr__(self) -> str:
        return f"ScriptedBackend(name={self.name!r}, remaining={self.remaining}, calls={self.calls})"


FunctionResult: TypeAlias = "str | dict[str, Any] | GenerateResponse"


class FunctionBackend(BaseBackend):
    """Answers each request with ``fn(request)``, which may be sync or async.

    ``fn`` returns the answer text, a dict (sent as JSON) or a full :class:`GenerateResponse`.
    Exceptions that are not promptkit errors are wrapped in :class:`BackendError`.
    """

    def __init__(
        self,
        fn: Callable[[GenerateRequest], FunctionResult | Awaitable[FunctionResult]],
        *,
        name: str = "function",
        capabilities: Capabilities = _DEFAULT_CAPABILITIES,
    ) -> None:
        self.fn = fn
        self.name = name
        self.capabilities = capabilities  # type: ignore[misc]
        self.history: list[GenerateRequest] = []
        self.calls = 0
        self._lock = threading.Lock()

    async def _call(self, request: GenerateRequest) -> FunctionResult:
        with self._lock:
            self.history.append(request)
            self.calls += 1
        try:
            result = self.fn(request)
            if inspect.isawaitable(result):
                result = await result
        except PromptkitError:
            raise
        except Exception as exc:
            raise BackendError(
                f"function raised {type(exc).__name__}: {exc}", location=f"backend {self.name!r}"
            ) from exc
        if not isinstance(result, (str, dict, GenerateResponse)):
            raise BackendError(
                f"function returned {type(result).__name__}; expected str, dict or GenerateResponse",
                location=f"backend {self.name!r}",
            )
        return result

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        start = time.perf_counter()
        result = await self._call(request)
        if isinstance(result, GenerateResponse):
            return result
        text = _as_text(result)
        return GenerateResponse(
            text=text,
            model=request.model or self.name,
            finish_reason="stop",
            usage=_usage_for(request, text),
            latency_s=time.perf_counter() - start,
        )

    async def stream(self, request: GenerateRequest) -> AsyncIterator[str]:
        result = await self._call(request)
        text = result.text if isinstance(result, GenerateResponse) else _as_text(result)
        for piece in _chunks(text):
            yield piece

    def __repr__(self) -> str:
        return f"FunctionBackend(name={self.name!r}, calls={self.calls})"
