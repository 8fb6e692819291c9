"""``LearnedStartTier``: before the cascade, pick the tier a call starts at from a learned policy.

    router = Router(tiers, start_policy=LearnedStartTier("policy.json"))

With a tier policy (``promptkit route train --ledger``), the call starts at the tier maximising
P(accepted) − λ·cost over the configured tiers; with a skip policy (``--policy skip`` or ``--routellm``), it
skips the cheap tier when P(cheap passes) < threshold.

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
from promptkit.routing._rules import RouteFeatures
from promptkit.routing.learned._skip_policy import RoutingPolicy
from promptkit.routing.learned._tier_policy import TierPolicy, load_policy

__all__ = ["LearnedStartTier", "LEARNED_SKIP"]

LEARNED_SKIP = "learned_skip"


class LearnedStartTier:
    """Tier policy: start at the tier maximising P(accepted) − ``cost_weight``·cost (default: the policy's λ).
    Skip policy: start at ``skip_to`` (default: the second tier) when P(cheap passes) < ``threshold``.

    ``explore`` is the share of would-be skips that still start at the cheapest tier, so the ledger keeps
    learning whether that kind of call has become easy (0 = never).
    """

    def __init__(
        self,
        policy: RoutingPolicy | TierPolicy | str | Path,
        *,
        threshold: float | None = None,
        skip_to: int | str | None = None,
        cost_weight: float | None = None,
        explore: float = 0.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy if isinstance(policy, (RoutingPolicy, TierPolicy)) else load_policy(policy)
        self.tiered = isinstance(self.policy, TierPolicy)
        if self.tiered:
            if threshold is not None or skip_to is not None:
                raise ConfigError(
                    "threshold and skip_to apply to a skip policy; a tier policy chooses among all tiers "
                    "(set cost_weight to trade quality for dollars)",
                    location="LearnedStartTier",
                )
        elif cost_weight is not None:
            raise ConfigError(
                "cost_weight applies to a tier policy (`promptkit route train --ledger`); this is a skip policy",
                location="LearnedStartTier",
            )
        if cost_weight is not None and (cost_weight < 0 or cost_weight != cost_weight):
            raise ConfigError(f"cost_weight must be >= 0, got {cost_weight}", location="LearnedStartTier")
        self.cost_weight = cost_weight
        if isinstance(self.policy, TierPolicy):
            self.threshold = 0.0
            self.skip_to: int | str = 1
            self._init_common(explore, rand)
            return
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
        self.skip_to = 1 if skip_to is None else skip_to
        self._init_common(explore, rand)

    def _init_common(self, explore: float, rand: Callable[[], float]) -> None:
        if not 0.0 <= explore <= 1.0:
            raise ConfigError(f"explore must be within [0, 1], got {explore}", location="LearnedStartTier")
        self.explore = explore
        self.rand = rand
        self.warned_no_text = False

    def __repr__(self) -> str:
        if self.tiered:
            return f"LearnedStartTier(tier policy, cost_weight={self.cost_weight}, explore={self.explore})"
        return (
            f"LearnedStartTier(threshold={self.threshold}, skip_to={self.skip_to!r}, explore={self.explore})"
        )

    def pass_probability(self, features: RouteFeatures) -> float:
        """P(the cheapest tier's answer is accepted)."""
        if isinstance(self.policy, TierPolicy):
            return self.policy.pass_probabilities(features)[0]
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
        if isinstance(self.policy, TierPolicy):
            start = self.policy.choose(features, cost_weight=self.cost_weight, n_tiers=len(tiers))
            if start == 0 or (self.explore and self.rand() < self.explore):
                return None
            return start
        if self.pass_probability(features) >= self.threshold:
            return None
        if self.explore and self.rand() < self.explore:
            return None
        return self.skip_to
