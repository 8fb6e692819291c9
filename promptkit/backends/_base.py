"""The one typed boundary every model backend implements."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from promptkit.types import Message, Usage

__all__ = [
    "Capabilities",
    "GenerateRequest",
    "GenerateResponse",
    "Backend",
    "BaseBackend",
    "run_sync",
]


class Capabilities(BaseModel):
    """What a backend can do; the router and generate() consult these instead of guessing."""

    model_config = ConfigDict(frozen=True)

    structured_output: bool = False
    tools: bool = False
    streaming: bool = False
    embeddings: bool = False
    # Continues a trailing assistant message (a prefill) and returns it as the start of the answer.
    prefill: bool = False


class GenerateRequest(BaseModel):
    """A call to a model. Only the fields that change the output are part of ``cache_key()``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    messages: list[Message]
    model: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    # Structured output: the answer must be JSON valid against this pydantic model.
    output_model: type[BaseModel] | None = Field(default=None, exclude=True)
    # Provider parameters that change the output (e.g. frequency_penalty); never secrets.
    params: dict[str, Any] = Field(default_factory=dict)
    # Not part of the cache key: they change how we wait, not what comes back.
    timeout_s: float | None = None

    def output_schema(self) -> dict[str, Any] | None:
        return self.output_model.model_json_schema() if self.output_model is not None else None

    def cache_payload(self) -> dict[str, Any]:
        """The canonical content of this request, without transport settings."""
        payload = self.model_dump(exclude={"timeout_s", "output_model"}, exclude_none=True)
        schema = self.output_schema()
        if schema is not None:
            payload["output_schema"] = schema
        return payload

    def cache_key(self, *, extra: dict[str, Any] | None = None) -> str:
        payload = self.cache_payload()
        if extra:
            payload["extra"] = extra
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


class GenerateResponse(BaseModel):
    """What came back. For structured output, ``text`` is the raw JSON of the answer."""

    text: str
    model: str = ""
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    # Local backends report the seconds of compute spent; remote ones leave it None.
    compute_s: float | None = None
    # Set by backends that know the price (litellm's map); the router fills it from configured prices otherwise.
    cost_usd: float | None = None
    cached: bool = False


@runtime_checkable
class Backend(Protocol):
    """Anything with these members is a backend."""

    name: str
    capabilities: Capabilities

    async def generate(self, request: GenerateRequest) -> GenerateResponse: ...


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even when an event loop is already running here."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    box: dict[str, Any] = {}

    async def keep(awaitable: Any) -> None:
        # The value goes into ``box``, not out of asyncio.run: on the way out asyncio formats the main task's
        # repr, result included, which for a large eval log costs tens of milliseconds.
        box["value"] = await awaitable

    if not in_loop:  # outside the except block, so errors don't carry a "no running event loop" context
        asyncio.run(keep(coro))
        return box["value"]

    def target() -> None:
        try:
            asyncio.run(keep(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    # The caller's context goes along: its current trace span (promptkit.tracing) stays the parent.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,))
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class BaseBackend:
    """Shared conveniences: a sync wrapper and a default non-streaming ``stream``."""

    name: str = "backend"
    capabilities: ClassVar[Capabilities] = Capabilities()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:  # pragma: no cover - abstract
        raise NotImplementedError

    def generate_sync(self, request: GenerateRequest) -> GenerateResponse:
        return run_sync(self.generate(request))

    async def stream(self, request: GenerateRequest) -> AsyncIterator[str]:
        """Yield text chunks. Backends without streaming yield the whole answer once."""
        response = await self.generate(request)
        yield response.text

    async def aclose(self) -> None:
        """Release sockets, models, servers. Safe to call twice."""


def prefill_as_instruction(request: GenerateRequest) -> GenerateRequest:
    """``request`` for a backend that cannot continue a trailing assistant message: the prefill becomes an
    instruction to start the answer with it (providers differ: some continue, some answer anew or refuse)."""
    messages = request.messages
    if len(messages) < 2 or messages[-1].role != "assistant" or messages[-2].role != "user":
        return request
    start = messages[-1].content
    asked = messages[-2].model_copy(
        update={"content": f"{messages[-2].content}\n\nStart your answer with exactly this:\n{start}"}
    )
    return request.model_copy(update={"messages": [*messages[:-2], asked]})
