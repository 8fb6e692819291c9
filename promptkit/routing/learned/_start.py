"""``LearnedStartTier``: before the cascade, skip the cheap tier for calls it is very likely to fail.

    policy = RoutingPolicy.load("policy.json")
    router = Router([cheap, strong], start_policy=LearnedStartTier(policy, threshold=0.2))

The cascade stays the safety net: a call that does start cheap still escalates when its answer fails. The
first attempt of a skipped call is recorded with reason ``"learned_skip"`` in the ledger.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from promptkit.errors import ConfigError
from promptkit.routing._policy import RouteFeatures
from promptkit.routing.learned._policy import RoutingPolicy

__all__ = ["LearnedStartTier", "LEARNED_SKIP"]

LEARNED_SKIP = "learned_skip"


class LearnedStartTier:
    """Start at ``skip_to`` (default: the second tier) when P(cheap passes) < ``threshold``.

    ``threshold`` defaults to the policy's own. ``explore`` is the share of would-be skips that still try the
    cheap tier, so the ledger keeps learning whether that kind of call has become easy (0 = never).
    """

    def __init__(
        self,
        policy: RoutingPolicy | str | Path,
        *,
        threshold: float | None = None,
        skip_to: int | str = 1,
        explore: float = 0.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy if isinstance(policy, RoutingPolicy) else RoutingPolicy.load(policy)
        if not self.policy.uses_router_features_only:
            raise ConfigError(
                "this policy needs more than the router sees (template, kind, tags, input size, prompt text): "
                "train it from a ledger (`promptkit route train --ledger`) or on lexical features "
                "(`--routellm ... --features lexical`), or call policy.predict_pass() yourself",
                location="LearnedStartTier",
            )
        self.threshold = self.policy.threshold if threshold is None else float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(
                f"threshold must be within [0, 1], got {self.threshold}", location="LearnedStartTier"
            )
        if not 0.0 <= explore <= 1.0:
            raise ConfigError(f"explore must be within [0, 1], got {explore}", location="LearnedStartTier")
        self.skip_to = skip_to
        self.explore = explore
        self.rand = rand
        self.warned_no_text = False

    def __repr__(self) -> str:
        return (
            f"LearnedStartTier(threshold={self.threshold}, skip_to={self.skip_to!r}, explore={self.explore})"
        )

    def pass_probability(self, features: RouteFeatures) -> float:
        return self.policy.predict_pass(features)

    def _no_text(self) -> None:
        # A caller that builds RouteFeatures without the prompt (not generate()) cannot be judged on it: start
        # cheap as with no policy (the cascade still escalates), and say so once rather than fail the call.
        if not self.warned_no_text:
            self.warned_no_text = True
            warnings.warn(
                "LearnedStartTier: this lexical policy reads RouteFeatures.text, which this call lacks; "
                "starting at the cheapest tier",
                RuntimeWarning,
                stacklevel=3,
            )

    def start_tier(self, features: RouteFeatures, tiers: Sequence[Any]) -> int | str | None:
        """The tier to start at, or None to start at the cheapest (the Router validates the reference)."""
        if len(tiers) < 2:
            return None
        if self.policy.needs_text and features.text is None:
            self._no_text()
            return None
        if self.pass_probability(features) >= self.threshold:
            return None
        if self.explore and self.rand() < self.explore:
            return None
        return self.skip_to
