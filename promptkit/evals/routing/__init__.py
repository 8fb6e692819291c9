"""Offline routing evaluation: recorded outcomes of many models, routers scored on held-out prompts.

One entry point, used by ``promptkit route eval`` and ``bench/route_eval.py``::

    result = run_route_eval("../shared/data/routellm")          # RouteLLM: APGR/CPT, plus dollars (estimated)
    result = run_route_eval("routerbench/", out=Path("report"))  # N models with real prices: AIQ, hull, plots

The data model is an outcome matrix (prompt x model -> score, dollars, optional answer; a domain per prompt),
read from JSONL/CSV/Parquet in a long or RouterBench's wide layout (``load_outcomes``), or built from RouteLLM's
two-model data (``outcomes_from_routellm``). Predictive routers (kNN, linear, MLP) choose per prompt the model
maximising predicted quality − λ·cost; cascades try models cheapest first; baselines are each single model,
random mixes and the oracle. Metrics: the quality–cost curve in dollars, its non-decreasing convex hull and area
(AIQ), with bootstrap CIs, in-domain and cross-domain; APGR/CPT for two models.

What decides a live call (start policies, learners, lexical features) stays in ``promptkit.routing.learned``.
"""

from __future__ import annotations

from promptkit.evals.routing._answer import (
    ANSWER_FEATURES,
    answer_feature_vector,
    answer_features,
    arithmetic_errors,
    final_answer,
    heuristic_risk,
)
from promptkit.evals.routing._cost_eval import (
    COST_ROUTERS,
    DEFAULT_COST_ROUTERS,
    SPLITS,
    CostReport,
    CostRouterResult,
    CostRouterSpec,
    area_under_hull,
    cascade_outcomes,
    cost_to_reach,
    evaluate_outcomes,
    lambda_grid,
    nondecreasing_hull,
)
from promptkit.evals.routing._cost_report import (
    COST_HEADERS,
    CROSS_DOMAIN_NOTE,
    cost_rows,
    markdown_cost_report,
    plot_cost_report,
)
from promptkit.evals.routing._cv import cross_val_scores, kfold_indices
from promptkit.evals.routing._embed import (
    EMBEDDING_CACHE_FILE,
    default_embedding_cache,
    embed_texts,
    load_router_embedder,
)
from promptkit.evals.routing._evaluate import (
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
from promptkit.evals.routing._metrics import (
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
from promptkit.evals.routing._outcomes import (
    COLUMNS,
    OUTCOME_SUFFIXES,
    ROUTELLM_PRICES_PER_MTOK,
    OutcomeMatrix,
    load_outcomes,
    outcomes_from_routellm,
)
from promptkit.evals.routing._report import markdown_report, plot_report, report_rows, write_json
from promptkit.evals.routing._routellm import (
    BENCHMARKS,
    STRONG_MODEL,
    WEAK_MODEL,
    RouteLLMData,
    default_data_dir,
    load_routellm,
    load_routellm_csv,
)
from promptkit.evals.routing._run import RouteEvalResult, is_routellm_folder, run_route_eval, two_model_view
from promptkit.evals.routing._train import train_from_routellm

__all__ = [
    "ANSWER_FEATURES",
    "BENCHMARKS",
    "COLUMNS",
    "COST_HEADERS",
    "COST_ROUTERS",
    "CPT_LEVELS",
    "CROSS_DOMAIN_NOTE",
    "DEFAULT_COST_ROUTERS",
    "DEFAULT_ROUTERS",
    "EMBEDDING_CACHE_FILE",
    "IN_DOMAIN_NOTE",
    "OUTCOME_SUFFIXES",
    "REFERENCE",
    "ROUTELLM_PRICES_PER_MTOK",
    "ROUTERS",
    "SPLITS",
    "STRONG_MODEL",
    "WEAK_MODEL",
    "BenchmarkReport",
    "CostReport",
    "CostRouterResult",
    "CostRouterSpec",
    "OutcomeMatrix",
    "RouteEvalResult",
    "RouteLLMData",
    "RouterMetrics",
    "RouterResult",
    "RouterSpec",
    "RoutingCurve",
    "answer_feature_vector",
    "answer_features",
    "answer_matrix",
    "apgr",
    "area_under_hull",
    "arithmetic_errors",
    "bootstrap_metrics",
    "cascade_outcomes",
    "cost_rows",
    "cost_to_reach",
    "cpt",
    "cross_val_scores",
    "default_data_dir",
    "default_embedding_cache",
    "embed_texts",
    "evaluate_benchmark",
    "evaluate_outcomes",
    "evaluate_scores",
    "final_answer",
    "heuristic_risk",
    "is_routellm_folder",
    "kfold_indices",
    "lambda_grid",
    "load_outcomes",
    "load_routellm",
    "load_routellm_csv",
    "load_router_embedder",
    "markdown_cost_report",
    "markdown_report",
    "nondecreasing_hull",
    "oracle_curve",
    "outcomes_from_routellm",
    "plot_cost_report",
    "plot_report",
    "random_scores",
    "report_rows",
    "routing_curve",
    "run_route_eval",
    "train_from_routellm",
    "two_model_view",
    "write_json",
]
