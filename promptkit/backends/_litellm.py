"""Remote models through litellm: OpenAI, Anthropic, Ollama, any OpenAI-compatible server.

litellm does the wire protocol and the price map; promptkit keeps the policy. So litellm's own retries are
off (retries and fallback belong to promptkit's router) and, for structured output, instructor only builds
the request (TOOLS mode: a forced tool call whose arguments are the answer) and never re-asks on its own:
the raw JSON goes back in ``GenerateResponse.text`` and promptkit's one re-ask loop validates it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable
from typing import Any, ClassVar

from pydantic import BaseModel

from promptkit.backends._base import BaseBackend, Capabilities, GenerateRequest, GenerateResponse
from promptkit.backends._errors import map_exception
from promptkit.errors import BackendUnavailable, ConfigError, MalformedResponse, RequestTimeout
from promptkit.types import Usage

__all__ = ["LiteLLMBackend", "INSTRUCTOR_MODES", "missing_key_variables"]

# promptkit mode name -> instructor.Mode member name. TOOLS is the default because it also works against
# llama-cpp-python's server, which rejects response_format of type json_schema (see the offline notes).
INSTRUCTOR_MODES = {
    "tools": "TOOLS",
    "json": "JSON",
    "md_json": "MD_JSON",
    "json_schema": "JSON_SCHEMA",
}
_TOOL_MODES = {"tools"}
_OWN_OPTIONS = {
    "api_base",
    "api_key",
    "api_key_env",
    "timeout_s",
    "max_concurrency",
    "instructor_mode",
    "name",
}
# litellm's timeout is per read; this margin lets it report first, with the better message.
_GUARD_MARGIN_S = 2.0

_litellm: Any = None


def _import_litellm() -> Any:
    global _litellm
    if _litellm is not None:
        return _litellm
    # Before the first import: no price-map download and no telemetry from import time on.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    try:
        import litellm
    except ImportError as exc:
        raise BackendUnavailable(
            "litellm is not installed; install promptkit[remote] (pip install 'promptkit[remote]')"
        ) from exc
    litellm.telemetry = False
    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on stderr
    _litellm = litellm
    return litellm


def _handle_response_model() -> Any:
    try:
        from instructor.processing.response import handle_response_model
    except ImportError:
        try:  # instructor < 1.9 kept it here
            from instructor.process_response import handle_response_model  # type: ignore[no-redef]
        except ImportError as exc:
            raise BackendUnavailable(
                "instructor is not installed; structured output over litellm needs promptkit[remote]"
            ) from exc
    return handle_response_model


class _Secret:
    """Holds an API key without ever showing it in a repr, a log line or a pickle of the config."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


async def _within(awaitable: Awaitable[Any], seconds: float) -> Any:
    """Await with a deadline, in this task: ``wait_for`` on 3.11 runs it in a new task, and re-raising from
    that task overwrites the exception's ``__context__``, which hides the transport cause from the mapping."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:  # Python 3.10
        return await asyncio.wait_for(awaitable, seconds)
    async with timeout(seconds):
        return await awaitable


# litellm's validate_environment also lists endpoints and regions (AZURE_API_BASE, VERTEXAI_PROJECT...); only
# these name a key, and a key is the one thing every call of those providers needs.
_KEY_SUFFIXES = ("_API_KEY", "_API_TOKEN", "_AUTH_TOKEN")


def missing_key_variables(
    litellm: Any, model: str, api_base: str | None = None
) -> tuple[str, list[str]] | None:
    """``(provider, variables)`` when litellm's provider for ``model`` reads its API key from the environment
    and none of those variables is set; None when a key is there, or litellm cannot tell."""
    try:
        provider = str(litellm.get_llm_provider(model=model, api_base=api_base)[1])
        found = litellm.validate_environment(model=model, api_base=api_base)
    except Exception:  # an unknown provider, or a litellm without the check: let the call speak for itself
        return None
    if found.get("keys_in_environment"):
        return None
    # A key set in code (litellm.api_key, litellm.openai_key...) serves every call too.
    if getattr(litellm, "api_key", None) or getattr(litellm, f"{provider}_key", None):
        return None
    names = [
        k for k in found.get("missing_keys") or [] if k.endswith(_KEY_SUFFIXES) and not os.environ.get(k)
    ]
    return (provider, names) if names else None


def _env_secrets() -> list[str]:
    # litellm may read provider keys from the environment itself; scrub those from messages too.
    return [v for k, v in os.environ.items() if k.endswith(("_API_KEY", "_KEY", "_TOKEN")) and len(v) >= 8]


class LiteLLMBackend(BaseBackend):
    """A model reached through ``litellm.acompletion``.

    ``model`` is litellm's string: ``"openai/gpt-4o-mini"``, ``"anthropic/claude-3-5-haiku-latest"``,
    ``"ollama/llama3"``, or ``"openai/<alias>"`` with ``api_base`` for any OpenAI-compatible server.
    ``api_key_env`` names an environment variable read at call time; ``extra_params`` go to every call.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(structured_output=True, tools=True, streaming=True)

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        max_concurrency: int = 16,
        extra_params: dict[str, Any] | None = None,
        instructor_mode: str = "tools",
        name: str | None = None,
    ) -> None:
        if not model:
            raise ConfigError("LiteLLMBackend needs a model string such as 'openai/gpt-4o-mini'")
        if instructor_mode not in INSTRUCTOR_MODES:
            raise ConfigError(
                f"unknown instructor_mode {instructor_mode!r}; use one of {', '.join(INSTRUCTOR_MODES)}",
                location=f"model {model!r}",
            )
        if max_concurrency < 1:
            raise ConfigError("max_concurrency must be at least 1", location=f"model {model!r}")
        self.model = model
        self.name = name or f"litellm:{model}"
        self.api_base = api_base
        self.api_key_env = api_key_env
        self._api_key = _Secret(api_key) if api_key else None
        self.timeout_s = float(timeout_s)
        self.max_concurrency = max_concurrency
        self.extra_params = dict(extra_params or {})
        self.instructor_mode = instructor_mode
        self._key_found = False  # the provider's key variable was seen once: no need to look again
        # One semaphore per event loop: asyncio primitives cannot be shared across loops (run_sync makes new ones).
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_spec(cls, target: str, options: dict[str, Any]) -> LiteLLMBackend:
        """Build from a registry entry: known options are arguments, every other one goes to litellm."""
        own = {k: v for k, v in options.items() if k in _OWN_OPTIONS}
        extra = dict(options.get("extra_params") or {})
        extra.update({k: v for k, v in options.items() if k not in _OWN_OPTIONS and k != "extra_params"})
        return cls(target, extra_params=extra, **own)

    def __repr__(self) -> str:
        key = "api_key='***', " if self._api_key else ""
        return (
            f"LiteLLMBackend(model={self.model!r}, api_base={self.api_base!r}, {key}"
            f"api_key_env={self.api_key_env!r}, timeout_s={self.timeout_s})"
        )

    # ---------------------------------------------------------------- request building

    @property
    def _location(self) -> str:
        return f"model {self.model!r}"

    def _api_key_value(self, litellm: Any) -> str | None:
        """The key to send, or None when litellm's provider reads it from the environment itself. A key that
        is nowhere is a ConfigError naming the variable, before any request: the provider's client would
        only fail later, as a transport error retried like a server fault."""
        if self._api_key is not None:
            return self._api_key.get()
        if self.api_key_env:
            value = os.environ.get(self.api_key_env)
            if not value:
                raise ConfigError(
                    f"no API key: api_key_env names the environment variable {self.api_key_env}, which is "
                    "not set",
                    location=self._location,
                )
            return value
        if not self._key_found and "api_key" not in self.extra_params:
            missing = missing_key_variables(litellm, self.model, self.api_base)
            if missing is not None:
                provider, names = missing
                which = names[0] if len(names) == 1 else "one of " + ", ".join(names)
                raise ConfigError(
                    f"no API key: litellm's {provider!r} provider reads it from {which}, which is not set; "
                    "export it, or name the variable that holds the key with api_key_env in the model's "
                    "[models.<alias>] table",
                    location=self._location,
                )
            self._key_found = True
        return None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.max_concurrency)
            self._semaphores[loop] = semaphore
        return semaphore

    def _timeout(self, request: GenerateRequest) -> float:
        return float(request.timeout_s) if request.timeout_s is not None else self.timeout_s

    def build_kwargs(self, request: GenerateRequest, *, stream: bool = False) -> dict[str, Any]:
        """The exact keyword arguments given to ``litellm.acompletion`` (without the API key)."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump(exclude_none=True) for m in request.messages],
        }
        for field in ("temperature", "max_tokens", "top_p", "stop", "seed"):
            value = getattr(request, field)
            if value is not None:
                kwargs[field] = value
        kwargs.update(self.extra_params)
        kwargs.update(request.params)
        if request.output_model is not None:
            kwargs = self._structured_kwargs(request.output_model, kwargs)
        if self.api_base:
            kwargs["api_base"] = self.api_base
        kwargs["timeout"] = self._timeout(request)
        # Retries and fallback are the router's job: one call here is one request on the wire.
        kwargs["num_retries"] = 0
        kwargs["max_retries"] = 0
        if stream:
            kwargs["stream"] = True
        return kwargs

    def _structured_kwargs(self, output_model: type[BaseModel], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.instructor_mode in _TOOL_MODES:
            # Tool modes only add tools/tool_choice, which depend on the model class alone; instructor takes
            # ~4 ms to build them, so they are built once per class (a fresh copy per call: callers may mutate).
            return {**kwargs, **json.loads(_tool_kwargs_json(output_model, self.instructor_mode))}
        new_kwargs = _instructor_kwargs(output_model, self.instructor_mode, kwargs)
        # instructor would re-ask by itself with max_retries; promptkit's loop owns re-asking.
        new_kwargs.pop("max_retries", None)
        return new_kwargs

    # ---------------------------------------------------------------- calls

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        litellm = _import_litellm()
        kwargs = self.build_kwargs(request)
        api_key = self._api_key_value(litellm)
        if api_key is not None:
            kwargs["api_key"] = api_key
        timeout = kwargs["timeout"]
        async with self._semaphore():
            start = time.perf_counter()
            try:
                response = await _within(litellm.acompletion(**kwargs), timeout + _GUARD_MARGIN_S)
            except asyncio.TimeoutError:
                raise RequestTimeout(f"no answer within {timeout:g} s", location=self._location) from None
            except Exception as exc:
                raise map_exception(
                    exc, secrets=[api_key, *_env_secrets()], location=self._location, what="completion"
                ) from None
            latency = time.perf_counter() - start
        return self._to_response(litellm, request, response, latency)

    def _to_response(
        self, litellm: Any, request: GenerateRequest, response: Any, latency: float
    ) -> GenerateResponse:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise MalformedResponse("the response has no choices", location=self._location)
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = self._answer_text(request, message)
        usage_obj = getattr(response, "usage", None)
        usage = Usage(
            input_tokens=int(getattr(usage_obj, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage_obj, "completion_tokens", 0) or 0),
        )
        return GenerateResponse(
            text=text,
            model=str(getattr(response, "model", None) or self.model),
            finish_reason=getattr(choice, "finish_reason", None),
            usage=usage,
            latency_s=latency,
            cost_usd=self._cost(litellm, response),
        )

    def _answer_text(self, request: GenerateRequest, message: Any) -> str:
        if message is None:
            raise MalformedResponse("the first choice has no message", location=self._location)
        if request.output_model is not None and self.instructor_mode in _TOOL_MODES:
            for call in getattr(message, "tool_calls", None) or []:
                function = getattr(call, "function", None)
                arguments = getattr(function, "arguments", None)
                if isinstance(arguments, str):
                    return arguments
                if isinstance(arguments, dict):  # some providers hand back parsed arguments
                    return json.dumps(arguments, ensure_ascii=False)
        # No tool call: hand back whatever text came, and let the re-ask loop judge it.
        content = getattr(message, "content", None)
        return content if isinstance(content, str) else ""

    def _cost(self, litellm: Any, response: Any) -> float | None:
        # litellm's price map only; an unmapped model has no price, and we do not guess one.
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, dict) and "response_cost" in hidden:
            # litellm already priced this response (None when unmapped): pricing it again costs ~1 ms.
            cost = hidden["response_cost"]
            return float(cost) if cost is not None else None
        try:
            cost = litellm.completion_cost(completion_response=response, model=self.model)
        except Exception:
            return None
        return float(cost) if cost is not None else None

    async def stream(self, request: GenerateRequest) -> AsyncIterator[str]:
        """Yield text chunks as they arrive (tool-call argument pieces, for structured output)."""
        litellm = _import_litellm()
        kwargs = self.build_kwargs(request, stream=True)
        api_key = self._api_key_value(litellm)
        if api_key is not None:
            kwargs["api_key"] = api_key
        timeout = kwargs["timeout"]
        structured = request.output_model is not None and self.instructor_mode in _TOOL_MODES
        secrets = [api_key, *_env_secrets()]
        async with self._semaphore():
            deadline = time.monotonic() + timeout + _GUARD_MARGIN_S
            try:
                response = await _within(litellm.acompletion(**kwargs), timeout + _GUARD_MARGIN_S)
                iterator = response.__aiter__()
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise asyncio.TimeoutError
                    try:
                        chunk = await _within(iterator.__anext__(), remaining)
                    except StopAsyncIteration:
                        break
                    piece = _chunk_text(chunk, structured)
                    if piece:
                        yield piece
            except asyncio.TimeoutError:
                raise RequestTimeout(
                    f"stream not finished within {timeout:g} s", location=self._location
                ) from None
            except Exception as exc:
                raise map_exception(exc, secrets=secrets, location=self._location, what="stream") from None


_tool_kwargs_cache: weakref.WeakKeyDictionary[type[BaseModel], dict[str, str]] = weakref.WeakKeyDictionary()


def _instructor_kwargs(
    output_model: type[BaseModel], mode_name: str, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """instructor's request for ``mode_name``: the kwargs, with the schema turned into tools or a prompt."""
    from instructor import Mode

    handle_response_model = _handle_response_model()
    _, new_kwargs = handle_response_model(output_model, mode=Mode[INSTRUCTOR_MODES[mode_name]], **kwargs)
    return dict(new_kwargs)


def _tool_kwargs_json(output_model: type[BaseModel], mode_name: str) -> str:
    per_mode = _tool_kwargs_cache.setdefault(output_model, {})
    cached = per_mode.get(mode_name)
    if cached is None:
        built = _instructor_kwargs(output_model, mode_name, {})
        cached = json.dumps({k: v for k, v in built.items() if k in ("tools", "tool_choice")})
        per_mode[mode_name] = cached
    return cached


def _chunk_text(chunk: Any, structured: bool) -> str:
    choices = getattr(chunk, "choices", None) or []
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    if delta is None:
        return ""
    if structured:
        parts = []
        for call in getattr(delta, "tool_calls", None) or []:
            arguments = getattr(getattr(call, "function", None), "arguments", None)
            if arguments:
                parts.append(arguments)
        if parts:
            return "".join(parts)
    content = getattr(delta, "content", None)
    return content if isinstance(content, str) else ""
