"""The ``promptkit.generate`` span around each ``agenerate()`` call (see :mod:`promptkit.tracing`).

A decorator, so that ``agenerate`` itself stays one readable function: with tracing off it costs one flag
check and one extra coroutine frame.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import promptkit.tracing as tracing
from promptkit.ledger import scrub_secrets

__all__ = ["traced_generate"]

P = ParamSpec("P")
R = TypeVar("R")


def _template_name(template: Any) -> str:
    return str(getattr(template, "name", template))


def _result_attributes(result: Any) -> dict[str, Any]:
    attempts = list(getattr(result, "attempts", ()) or ())
    usage = getattr(result, "usage", None)
    return {
        "promptkit.model": result.model,
        "promptkit.tier": result.tier,
        "promptkit.tier_name": result.tier_name,
        "promptkit.attempts": len(attempts),
        "promptkit.reasks": sum(1 for a in attempts if a.reason == "reask"),
        "promptkit.escalations": sum(1 for a in attempts if a.reason == "escalation"),
        "promptkit.cached": result.cached,
        "promptkit.cost_usd": result.cost_usd,
        "promptkit.saved_usd": result.saved_usd,
        "promptkit.run_id": result.run_id,
        "promptkit.call_id": result.call_id,
        "promptkit.template_hash": result.template_hash,
        "gen_ai.usage.input_tokens": getattr(usage, "input_tokens", None),
        "gen_ai.usage.output_tokens": getattr(usage, "output_tokens", None),
    }


async def _traced(fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    template = args[0] if args else kwargs.get("template")
    name = _template_name(template)
    model = kwargs.get("model")
    feedback = kwargs.get("feedback") or ()
    attributes = {
        "promptkit.operation": "generate",
        "promptkit.template": name,
        "promptkit.requested_model": model if isinstance(model, str) else getattr(model, "name", None),
        "promptkit.kind": kwargs.get("kind"),
        "promptkit.feedback_turns": len(feedback) or None,
    }
    with tracing.span(f"promptkit.generate {name}", attributes, owner=True) as span:
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            attempts = getattr(exc, "attempts", None)
            if attempts is not None:
                span.set({"promptkit.attempts": len(attempts)})
            message = scrub_secrets(str(exc))[:1000] if tracing.record_content() else None
            span.fail(exc, message)
            raise
        span.set(_result_attributes(result))
        return result


def traced_generate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Wrap ``agenerate`` in a ``promptkit.generate {template}`` span when tracing is on."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not tracing.enabled():
            return await fn(*args, **kwargs)
        return await _traced(fn, args, kwargs)  # type: ignore[no-any-return]

    return wrapper
