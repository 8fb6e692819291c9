"""The small, composable policies a router is made of: retry/backoff, static rules and the call's features."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from promptkit.backends import Backend
from promptkit.errors import ConfigError, RateLimited, TransportError

__all__ = ["RetryPolicy", "Rule", "RouteFeatures", "StartTierPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transport faults on one deployment.

    The n-th retry waits ``base_delay_s * 2**n`` capped at ``max_delay_s``, shortened by up to ``jitter``
    (a fraction) at random so that many clients do not retry in lockstep. A ``Retry-After`` from a 429 is a
    floor on the wait, itself capped at ``max_retry_after_s`` so one server cannot park a call for an hour.
    """

    max_retries: int = 2
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    jitter: float = 0.2
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}", location="[router.retry]")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.max_retry_after_s < 0:
            raise ConfigError("retry delays must be >= 0", location="[router.retry]")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"jitter must be within [0, 1], got {self.jitter}", location="[router.retry]")

    def delay(self, retry: int, error: TransportError, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry`` (0-based) after ``error``."""
        backoff = min(self.base_delay_s * (2**retry), self.max_delay_s)
        backoff *= 1.0 - self.jitter * rand()
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return max(backoff, min(float(error.retry_after), self.max_retry_after_s))
        return backoff


@dataclass(frozen=True)
class RouteFeatures:
    """What static rules look at, and what the ledger keeps for a learned router later."""

    template: str | None = None
    tags: tuple[str, ...] = ()
    kind: str | None = None
    input_tokens: int = 0
    # The prompt (last user message) for text-reading learned policies; kept out of as_dict(), so the ledger
    # never stores prompt text.
    text: str | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "tags": list(self.tags),
            "kind": self.kind,
            "input_tokens": self.input_tokens,
        }


@dataclass(frozen=True)
class Rule:
    """A static routing rule: when every given condition holds, start at ``start_tier`` or pin ``model``.

    Conditions: ``tag`` (any of the template's technique/task tags), ``kind`` (the ``kind=`` hint given to
    generate), ``template`` (its name), ``min_input_tokens``/``max_input_tokens`` (the rendered size).
    The first matching rule wins.
    """

    tag: str | None = None
    kind: str | None = None
    template: str | None = None
    min_input_tokens: int | None = None
    max_input_tokens: int | None = None
    start_tier: str | int | None = None
    model: str | Backend | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        conditions = (self.tag, self.kind, self.template, self.min_input_tokens, self.max_input_tokens)
        if all(c is None for c in conditions):
            raise ConfigError(
                "a routing rule needs a condition: tag, kind, template, min_input_tokens or max_input_tokens",
                location="[[router.rules]]",
            )
        if (self.start_tier is None) == (self.model is None):
            raise ConfigError(
                "a routing rule needs exactly one action: start_tier or model", location="[[router.rules]]"
            )

    def matches(self, features: RouteFeatures) -> bool:
        if self.tag is not None and self.tag not in features.tags:
            return False
        if self.kind is not None and self.kind != features.kind:
            return False
        if self.template is not None and self.template != features.template:
            return False
        if self.min_input_tokens is not None and features.input_tokens < self.min_input_tokens:
            return False
        return not (self.max_input_tokens is not None and features.input_tokens > self.max_input_tokens)


@runtime_checkable
class StartTierPolicy(Protocol):
    """Picks where a call starts when no rule matched: a tier index or name, or None for the cheapest.

    ``promptkit.routing.learned.LearnedStartTier`` is one: it starts at the tier with the best predicted
    chance of an accepted answer minus λ·cost, learned from the ledger (or skips the cheap tier for calls a
    skip policy expects it to fail).
    """

    def start_tier(self, features: RouteFeatures, tiers: Sequence[Any]) -> int | str | None: ...
