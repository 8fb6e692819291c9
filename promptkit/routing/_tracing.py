"""Spans for the router's work: the route a call takes and each attempt (see :mod:`promptkit.tracing`).

An attempt that reaches a model is a GenAI inference span, ``chat {model}``, opened before the request leaves
and ended when generate() has judged the answer (``promptkit.outcome`` ok / invalid), or when the transport
failed. Attempts that never reach a model (a cache hit, a prompt too long for the tier, a budget refusal) are
``promptkit.attempt`` spans recorded when they happen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Protocol

import promptkit.tracing as tracing
from promptkit.ledger import scrub_secrets

if TYPE_CHECKING:
    from promptkit.backends import GenerateRequest, GenerateResponse, ResolvedModel
    from promptkit.routing._tiers import Deployment


# What the spans read of a call, a route and an attempt record (routing/_attempts and _router import this
# module, so it names their shapes instead of importing their classes).
class CallContext(Protocol):
    @property
    def template(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def call_id(self) -> str | None: ...


class _Tier(Protocol):
    @property
    def name(self) -> str: ...


class Route(Protocol):
    @property
    def index(self) -> int | None: ...
    @property
    def tier(self) -> _Tier: ...
    @property
    def reason(self) -> str | None: ...


class Attempt(Protocol):
    @property
    def attempt(self) -> int: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def accepted(self) -> bool | None: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def latency_s(self) -> float: ...
    @property
    def compute_s(self) -> float | None: ...
    @property
    def cache(self) -> str | None: ...
    @property
    def saved_usd(self) -> float: ...
    @property
    def usage(self) -> Any: ...
    @property
    def error(self) -> str | None: ...
    @property
    def model(self) -> str: ...
    @property
    def tier(self) -> int | None: ...
    @property
    def tier_name(self) -> str | None: ...
    @property
    def raw_output(self) -> str | None: ...


__all__ = ["open_attempt", "answered", "end_attempt", "trace_route"]

_FAILED = {"invalid", "transport_error", "error", "budget_refused", "too_long"}


def _provider(deployment: Deployment, resolved: ResolvedModel) -> str:
    """``gen_ai.provider.name``: the provider a litellm model names, else the backend kind."""
    if isinstance(deployment.model, str):
        scheme, _, target = resolved.alias.model.partition(":")
        if scheme == "litellm":
            return target.split("/", 1)[0] if "/" in target else "litellm"
        return {"local": "llama_cpp"}.get(scheme, scheme)
    kind = type(resolved.backend).__name__
    known = {"LlamaBackend": "llama_cpp", "OpenAICompatBackend": "openai", "LiteLLMBackend": "litellm"}
    return known.get(kind) or kind.removesuffix("Backend").lower() or "unknown"


def _model_name(model: str) -> str:
    """A local model's file name rather than its full path (which may name the user's folders)."""
    if model.endswith(".gguf") or model.startswith(("/", "~", "./", "../")):
        return PurePath(model).name
    return model


def _messages_json(messages: Sequence[Any]) -> str:
    """``gen_ai.input.messages``: the conversation as the GenAI conventions' JSON, scrubbed of secrets."""
    return json.dumps(
        [
            {"role": m.role, "parts": [{"type": "text", "content": scrub_secrets(str(m.content))}]}
            for m in messages
        ],
        ensure_ascii=False,
    )


def _output_json(text: str, finish_reason: str | None) -> str:
    message: dict[str, Any] = {
        "role": "assistant",
        "parts": [{"type": "text", "content": scrub_secrets(text)}],
    }
    if finish_reason:
        message["finish_reason"] = finish_reason
    return json.dumps([message], ensure_ascii=False)


def open_attempt(
    deployment: Deployment, resolved: ResolvedModel, request: GenerateRequest, route: Route, ctx: CallContext
) -> tracing.Span | None:
    """The span of one attempt about to be sent (None when tracing is off)."""
    model = _model_name(request.model or resolved.backend_model or deployment.name)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": _provider(deployment, resolved),
        "gen_ai.request.model": model,
        "gen_ai.request.temperature": request.temperature,
        "gen_ai.request.max_tokens": request.max_tokens,
        "gen_ai.request.top_p": request.top_p,
        "gen_ai.request.seed": request.seed,
        "gen_ai.output.type": "json" if request.output_model is not None else "text",
        "promptkit.deployment": deployment.name,
        "promptkit.tier": route.index,
        "promptkit.tier_name": route.tier.name,
        "promptkit.template": ctx.template,
        "promptkit.run_id": ctx.run_id,
        "promptkit.call_id": ctx.call_id,
    }
    if tracing.record_content():
        attributes["gen_ai.input.messages"] = _messages_json(request.messages)
    # Local models run in this process: INTERNAL, as the GenAI conventions allow; remote ones are CLIENT.
    kind = "internal" if deployment.is_local else "client"
    span = tracing.start(f"chat {model}", attributes, kind=kind)
    return span or None


def answered(span: tracing.Span, response: GenerateResponse) -> None:
    """What the model said about its answer, set as soon as it arrives."""
    span.set(
        {
            "gen_ai.response.model": _model_name(response.model) if response.model else None,
            "gen_ai.response.finish_reasons": [response.finish_reason] if response.finish_reason else None,
        }
    )
    if tracing.record_content():
        span.set({"gen_ai.output.messages": _output_json(response.text, response.finish_reason)})


def end_attempt(
    ctx: CallContext, record: Attempt, span: tracing.Span | None, similarity: float | None
) -> None:
    """End ``span`` with the attempt's outcome, or record a finished span for an attempt that had none."""
    attributes: dict[str, Any] = {
        "promptkit.attempt": record.attempt,
        "promptkit.reason": record.reason,
        "promptkit.outcome": record.outcome,
        "promptkit.accepted": record.accepted,
        "promptkit.cost_usd": record.cost_usd,
        "promptkit.latency_s": record.latency_s,
        "promptkit.compute_s": record.compute_s,
        "promptkit.cache": record.cache,
        "promptkit.cache.similarity": similarity,
        "promptkit.saved_usd": record.saved_usd or None,
        "gen_ai.usage.input_tokens": record.usage.input_tokens,
        "gen_ai.usage.output_tokens": record.usage.output_tokens,
    }
    content = tracing.record_content()
    if content and record.error:
        attributes["promptkit.error"] = record.error  # scrubbed by CallContext.record
    error = None
    if record.outcome in _FAILED:
        error = record.outcome
        if record.error and record.outcome in ("transport_error", "error"):
            head = record.error.partition(":")[0]
            error = head if head.isidentifier() else record.outcome
    if span is not None:
        if error is not None:
            span.fail(error, record.error if content else None)
        span.end(attributes)
        return
    # No span was opened: what open_attempt() would have set.
    attributes["promptkit.deployment"] = record.model
    attributes["promptkit.tier"] = record.tier
    attributes["promptkit.tier_name"] = record.tier_name
    attributes["promptkit.template"] = ctx.template
    attributes["promptkit.run_id"] = ctx.run_id
    attributes["promptkit.call_id"] = ctx.call_id
    if content and record.raw_output is not None:
        attributes["gen_ai.output.messages"] = _output_json(record.raw_output, None)
    tracing.record_span("promptkit.attempt", attributes, duration_s=record.latency_s, error=error)


def trace_route(features: Any, routes: Sequence[Route], rules: int) -> None:
    """A ``promptkit.route`` span: which tiers the call may use, and why it starts where it does."""
    first = routes[0] if routes else None
    tracing.record_span(
        "promptkit.route",
        {
            "promptkit.template": features.template,
            "promptkit.kind": features.kind,
            "promptkit.input_tokens": features.input_tokens,
            "promptkit.route.tiers": [r.tier.name for r in routes],
            "promptkit.route.start_tier": first.tier.name if first is not None else None,
            "promptkit.route.pinned": bool(first is not None and first.index is None) or None,
            "promptkit.route.reason": first.reason if first is not None else None,
            "promptkit.route.rules": rules or None,
        },
    )
