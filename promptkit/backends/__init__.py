"""Model backends: one typed boundary, local (llama.cpp), remote (litellm, or any OpenAI-compatible server over
a pooled HTTP client), scripted and function backends.

    from promptkit.backends import GenerateRequest, ScriptedBackend, resolve_model

Importing this package is cheap: llama_cpp, gguf, litellm and instructor load only when a backend that
needs them is first used. The local-model names, and the fault-injection server (``StubOpenAIServer``), are
resolved lazily through module ``__getattr__``.
"""

from __future__ import annotations

import importlib
import typing

from promptkit.backends._base import (
    Backend,
    BaseBackend,
    Capabilities,
    GenerateRequest,
    GenerateResponse,
    prefill_as_instruction,
    run_sync,
)
from promptkit.backends._scripted import FunctionBackend, ScriptedBackend, ScriptedReply

if typing.TYPE_CHECKING:
    from promptkit.backends._bench import LocalBenchResult, bench_local_model
    from promptkit.backends._errors import map_exception
    from promptkit.backends._fault_server import Fault, StubOpenAIServer
    from promptkit.backends._litellm import LiteLLMBackend
    from promptkit.backends._llama import LlamaBackend, TokenProgress, auto_threads, watch_tokens
    from promptkit.backends._openai_compat import OpenAICompatBackend
    from promptkit.backends._registry import ResolvedModel, parse_model, register_backend, resolve_model
    from promptkit.backends._tiny_gguf import make_tiny_gguf
    from promptkit.backends.llama_server import start_llama_server

__all__ = [
    "Backend",
    "BaseBackend",
    "Capabilities",
    "GenerateRequest",
    "GenerateResponse",
    "run_sync",
    "prefill_as_instruction",
    "ScriptedBackend",
    "ScriptedReply",
    "FunctionBackend",
    "StubOpenAIServer",
    "Fault",
    "LiteLLMBackend",
    "LlamaBackend",
    "TokenProgress",
    "watch_tokens",
    "auto_threads",
    "OpenAICompatBackend",
    "make_tiny_gguf",
    "start_llama_server",
    "parse_model",
    "resolve_model",
    "register_backend",
    "ResolvedModel",
    "map_exception",
    "bench_local_model",
    "LocalBenchResult",
]

# name -> module that defines it; loaded on first attribute access.
_LAZY = {
    "LiteLLMBackend": "promptkit.backends._litellm",
    "LlamaBackend": "promptkit.backends._llama",
    "TokenProgress": "promptkit.backends._llama",
    "watch_tokens": "promptkit.backends._llama",
    "auto_threads": "promptkit.backends._llama",
    "OpenAICompatBackend": "promptkit.backends._openai_compat",
    # the loopback OpenAI-compatible server with fault injection, for tests and benchmarks
    "StubOpenAIServer": "promptkit.backends._fault_server",
    "Fault": "promptkit.backends._fault_server",
    "make_tiny_gguf": "promptkit.backends._tiny_gguf",
    "start_llama_server": "promptkit.backends.llama_server",
    "parse_model": "promptkit.backends._registry",
    "resolve_model": "promptkit.backends._registry",
    "register_backend": "promptkit.backends._registry",
    "ResolvedModel": "promptkit.backends._registry",
    "map_exception": "promptkit.backends._errors",
    "bench_local_model": "promptkit.backends._bench",
    "LocalBenchResult": "promptkit.backends._bench",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'promptkit.backends' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
