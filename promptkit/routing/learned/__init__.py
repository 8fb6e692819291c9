"""What decides a live call from learned outcomes: start policies, their learners and call-time features.

Learn from promptkit's own ledger (real outcomes and prices) which tier a call should start at::

    policy, warnings = train_tier_policy(ledger.entries())
    policy.save("policy.json")
    router = Router(tiers, start_policy=LearnedStartTier("policy.json"))

The call starts at the tier maximising P(accepted) − λ·(its mean cost); the cascade still escalates from there.
A skip policy (``train_from_ledger``) only decides whether to skip the cheap tier. A policy on lexical prompt
features needs no embedding model: it decides from ``RouteFeatures.text`` in a fraction of a millisecond.

Offline evaluation (RouteLLM and RouterBench data, quality–cost curves, training from recorded benchmarks)
lives in ``promptkit.evals.routing``. numpy is imported only when used.
"""

from __future__ import annotations

from promptkit.routing.learned._learners import KNNModel, LogisticModel, MLPModel, RidgeModel
from promptkit.routing.learned._lexical import LEXICAL_DIM, LEXICAL_STATS, LexicalFeaturizer
from promptkit.routing.learned._skip_policy import (
    POLICY_FORMAT,
    POLICY_SCHEMA_VERSION,
    LedgerExamples,
    RoutingPolicy,
    fit_pass_model,
    ledger_examples,
    router_feature_spec,
    train_from_ledger,
)
from promptkit.routing.learned._start import LEARNED_SKIP, LearnedStartTier
from promptkit.routing.learned._tier_policy import (
    MIN_CALLS_PER_TIER,
    TIER_POLICY_FORMAT,
    TIER_POLICY_SCHEMA_VERSION,
    TierPolicy,
    TierStats,
    load_policy,
    tier_summary,
    train_tier_policy,
)

__all__ = [
    "LEARNED_SKIP",
    "LEXICAL_DIM",
    "LEXICAL_STATS",
    "MIN_CALLS_PER_TIER",
    "POLICY_FORMAT",
    "POLICY_SCHEMA_VERSION",
    "TIER_POLICY_FORMAT",
    "TIER_POLICY_SCHEMA_VERSION",
    "KNNModel",
    "LearnedStartTier",
    "LedgerExamples",
    "LexicalFeaturizer",
    "LogisticModel",
    "MLPModel",
    "RidgeModel",
    "RoutingPolicy",
    "TierPolicy",
    "TierStats",
    "fit_pass_model",
    "ledger_examples",
    "load_policy",
    "router_feature_spec",
    "tier_summary",
    "train_from_ledger",
    "train_tier_policy",
]
