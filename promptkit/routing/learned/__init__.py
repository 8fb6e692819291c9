"""Routing that learns from outcomes: RouteLLM-style evaluation, learned routers, cascades, ledger policies.

Evaluate routers on RouteLLM's recorded outcomes (held-out queries, APGR/CPT with bootstrap CIs)::

    data = load_routellm("gsm8k")
    report = evaluate_benchmark(data, routers=["random", "oracle", "cascade"], folds=5, bootstrap=1000)

Learn from promptkit's own ledger, and let the router skip the cheap tier for calls it would fail::

    policy = train_from_ledger(ledger.entries(), threshold=0.2)
    policy.save("policy.json")
    router = Router(tiers, start_policy=LearnedStartTier(RoutingPolicy.load("policy.json")))

A policy on lexical prompt features needs no embedding model: it decides from ``RouteFeatures.text`` (which
``generate()`` fills from the last user message) in a fraction of a millisecond::

    policy = train_from_routellm(load_routellm("gsm8k"), features="lexical")
    router = Router(tiers, start_policy=LearnedStartTier(policy))

numpy (and scikit-learn for the MLP router, matplotlib for plots) are imported only when used.
"""

from __future__ import annotations

from promptkit.routing.learned._answer import (
    ANSWER_FEATURES,
    answer_feature_vector,
    answer_features,
    arithmetic_errors,
    final_answer,
    heuristic_risk,
)
from promptkit.routing.learned._cv import cross_val_scores, kfold_indices
from promptkit.routing.learned._data import (
    BENCHMARKS,
    STRONG_MODEL,
    WEAK_MODEL,
    RouteLLMData,
    default_data_dir,
    load_routellm,
    load_routellm_csv,
)
from promptkit.routing.learned._embed import (
    EMBEDDING_CACHE_FILE,
    default_embedding_cache,
    embed_texts,
    load_router_embedder,
)
from promptkit.routing.learned._evaluate import (
    DEFAULT_ROUTERS,
    IN_DOMAIN_NOTE,
    REFERENCE,
    ROUTERS,
    BenchmarkReport,
    RouterResult,
    RouterSpec,
    answer_matrix,
    evaluate_benchmark,
)
from promptkit.routing.learned._lexical import LEXICAL_DIM, LEXICAL_STATS, LexicalFeaturizer
from promptkit.routing.learned._metrics import (
    CPT_LEVELS,
    RouterMetrics,
    RoutingCurve,
    apgr,
    bootstrap_metrics,
    cpt,
    evaluate_scores,
    oracle_curve,
    random_scores,
    routing_curve,
)
from promptkit.routing.learned._models import KNNModel, LogisticModel, MLPModel, RidgeModel
from promptkit.routing.learned._policy import (
    POLICY_FORMAT,
    POLICY_SCHEMA_VERSION,
    LedgerExamples,
    RoutingPolicy,
    ledger_examples,
    train_from_ledger,
    train_from_routellm,
)
from promptkit.routing.learned._report import markdown_report, plot_report, report_rows, write_json
from promptkit.routing.learned._start import LEARNED_SKIP, LearnedStartTier

__all__ = [
    "load_routellm_csv",
    "markdown_report",
    "plot_report",
    "report_rows",
    "write_json",
    "ANSWER_FEATURES",
    "BENCHMARKS",
    "CPT_LEVELS",
    "DEFAULT_ROUTERS",
    "EMBEDDING_CACHE_FILE",
    "IN_DOMAIN_NOTE",
    "LEXICAL_DIM",
    "LEXICAL_STATS",
    "LEARNED_SKIP",
    "POLICY_FORMAT",
    "POLICY_SCHEMA_VERSION",
    "REFERENCE",
    "ROUTERS",
    "STRONG_MODEL",
    "WEAK_MODEL",
    "BenchmarkReport",
    "KNNModel",
    "LearnedStartTier",
    "LedgerExamples",
    "LexicalFeaturizer",
    "LogisticModel",
    "MLPModel",
    "RidgeModel",
    "RouteLLMData",
    "RouterMetrics",
    "RouterResult",
    "RouterSpec",
    "RoutingCurve",
    "RoutingPolicy",
    "answer_feature_vector",
    "answer_features",
    "answer_matrix",
    "apgr",
    "arithmetic_errors",
    "bootstrap_metrics",
    "cpt",
    "cross_val_scores",
    "default_data_dir",
    "default_embedding_cache",
    "embed_texts",
    "evaluate_benchmark",
    "evaluate_scores",
    "final_answer",
    "heuristic_risk",
    "kfold_indices",
    "ledger_examples",
    "load_routellm",
    "load_router_embedder",
    "oracle_curve",
    "random_scores",
    "routing_curve",
    "train_from_ledger",
    "train_from_routellm",
]
