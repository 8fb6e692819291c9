"""promptkit: typed prompt templates, verified generation, cost-aware routing and real A/B statistics.

    import promptkit

    debug = promptkit.load_template("debug")
    prompt = debug.render(language="python", code=src, error=err, expected=exp, actual=act)
    result = promptkit.generate("debug", inputs, model="local:models/coder.gguf")
    fix = promptkit.generate("debug", inputs, model="cheap", output=MyFix).output  # typed: a MyFix

Names are loaded on first use, so ``import promptkit`` stays fast and never imports litellm or llama_cpp.
"""

from __future__ import annotations

import importlib
import typing

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # values and errors
    "Message": "promptkit.types",
    "Usage": "promptkit.types",
    "Embedder": "promptkit.types",
    "PromptkitError": "promptkit.errors",
    "load_config": "promptkit.config",
    "Config": "promptkit.config",
    # templates
    "Template": "promptkit.prompts",
    "RenderedPrompt": "promptkit.prompts",
    "ExampleSelection": "promptkit.prompts",
    "TemplateRegistry": "promptkit.prompts",
    "load_template": "promptkit.prompts",
    "list_templates": "promptkit.prompts",
    "count_tokens": "promptkit.prompts",
    "template": "promptkit.prompts",
    # models
    "GenerateRequest": "promptkit.backends",
    "GenerateResponse": "promptkit.backends",
    "ScriptedBackend": "promptkit.backends",
    "FunctionBackend": "promptkit.backends",
    "LlamaBackend": "promptkit.backends",
    "LiteLLMBackend": "promptkit.backends",
    "resolve_model": "promptkit.backends",
    "ExactCache": "promptkit.cache",
    "Ledger": "promptkit.ledger",
    "Router": "promptkit.routing",
    "Tier": "promptkit.routing",
    "Rule": "promptkit.routing",
    "Budget": "promptkit.routing",
    "RetryPolicy": "promptkit.routing",
    "generate": "promptkit.generation",
    "agenerate": "promptkit.generation",
    "GenerateResult": "promptkit.generation",
}

__all__ = [
    "Message",
    "Usage",
    "Embedder",
    "PromptkitError",
    "load_config",
    "Config",
    "Template",
    "RenderedPrompt",
    "ExampleSelection",
    "TemplateRegistry",
    "load_template",
    "list_templates",
    "count_tokens",
    "template",
    "GenerateRequest",
    "GenerateResponse",
    "ScriptedBackend",
    "FunctionBackend",
    "LlamaBackend",
    "LiteLLMBackend",
    "resolve_model",
    "ExactCache",
    "Ledger",
    "Router",
    "Tier",
    "Rule",
    "Budget",
    "RetryPolicy",
    "generate",
    "agenerate",
    "GenerateResult",
    "__version__",
]


def __getattr__(name: str) -> typing.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'promptkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if typing.TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from promptkit.backends import (
        FunctionBackend,
        GenerateRequest,
        GenerateResponse,
        LiteLLMBackend,
        LlamaBackend,
        ScriptedBackend,
        resolve_model,
    )
    from promptkit.cache import ExactCache
    from promptkit.config import Config, load_config
    from promptkit.errors import PromptkitError
    from promptkit.generation import GenerateResult, agenerate, generate
    from promptkit.ledger import Ledger
    from promptkit.prompts import (
        ExampleSelection,
        RenderedPrompt,
        Template,
        TemplateRegistry,
        count_tokens,
        list_templates,
        load_template,
        template,
    )
    from promptkit.routing import Budget, RetryPolicy, Router, Rule, Tier
    from promptkit.types import Embedder, Message, Usage
