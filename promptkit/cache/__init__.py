"""The response caches: exact (SQLite, WAL, keyed by the canonical hash of a request) and, opt-in, semantic.

with default_cache() as cache:
    key = ExactCache.key_for(request, template_hash=template.hash, model=resolved)
    if (hit := cache.get(key)) is not None:
        return hit.response                      # cached=True
    cache.set(key, response, template=template.name, model=resolved)

The semantic cache (``SemanticCache``) serves the answer of a similar question only when the scope, the
template's ``must_match`` inputs, a calibrated threshold, an ambiguity margin (or, with a learned
``PairScorer``, a minimum confidence) and opposite-meaning guards all agree; see ``promptkit cache calibrate``.
Fitted on labelled pairs, a ``PairClassifier`` replaces the blended similarity by its probability that two
questions ask the same; calibration and lookup score a pair through the same function (``_score.choose``).
"""

from promptkit.cache._calibrate import (
    CalibrationResult,
    CurvePoint,
    HeldOut,
    LabelledPairs,
    calibrate_pairs,
    calibrate_protocol,
    cross_fitted_outcome,
    fit_protocol_scorer,
    load_pairs,
    pair_similarities,
    protocol_candidates,
    protocol_outcome,
    split_pairs,
    write_semantic_config,
)
from promptkit.cache._defaults import CACHE_FILE, default_cache
from promptkit.cache._entries import CacheEntry, CacheStats
from promptkit.cache._exact import ExactCache
from promptkit.cache._index import BruteForceIndex, HNSWIndex, VectorIndex, load_index, make_index
from promptkit.cache._match import GUARDS, guard_conflict, lexical_similarity
from promptkit.cache._score import (
    MATCH_FEATURES,
    PairClassifier,
    PairScorer,
    fit_pair_classifier,
    fit_pair_scorer,
)
from promptkit.cache._semantic import (
    SEMANTIC_FILE,
    SemanticCache,
    SemanticDecision,
    SemanticHit,
    SemanticSettings,
    SemanticStats,
)
from promptkit.cache._semantic_defaults import default_semantic_cache, semantic_settings

__all__ = [
    "CACHE_FILE",
    "CacheEntry",
    "CacheStats",
    "ExactCache",
    "default_cache",
    # semantic cache (appended)
    "BruteForceIndex",
    "CalibrationResult",
    "CurvePoint",
    "GUARDS",
    "HNSWIndex",
    "LabelledPairs",
    "SEMANTIC_FILE",
    "SemanticCache",
    "SemanticDecision",
    "SemanticHit",
    "SemanticSettings",
    "SemanticStats",
    "VectorIndex",
    "calibrate_pairs",
    "calibrate_protocol",
    "default_semantic_cache",
    "guard_conflict",
    "lexical_similarity",
    "load_index",
    "load_pairs",
    "make_index",
    "protocol_candidates",
    "protocol_outcome",
    "semantic_settings",
    "write_semantic_config",
    # the learned second stage (appended)
    "PairScorer",
    "fit_pair_scorer",
    "fit_protocol_scorer",
    "cross_fitted_outcome",
    # labelled pairs: held-out figures and the learned match scorer (appended)
    "HeldOut",
    "MATCH_FEATURES",
    "PairClassifier",
    "fit_pair_classifier",
    "pair_similarities",
    "split_pairs",
]
