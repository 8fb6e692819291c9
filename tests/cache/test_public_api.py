"""The public surface of promptkit.cache and promptkit.ledger, and that importing them stays light."""

from __future__ import annotations

import subprocess
import sys

import promptkit.cache
import promptkit.ledger


def test_cache_all_is_the_documented_api():
    assert set(promptkit.cache.__all__) == {
        "CACHE_FILE",
        "CacheEntry",
        "CacheStats",
        "ExactCache",
        "default_cache",
        # the opt-in semantic cache
        "SEMANTIC_FILE",
        "SemanticCache",
        "SemanticDecision",
        "SemanticHit",
        "SemanticSettings",
        "SemanticStats",
        "GUARDS",
        "guard_conflict",
        "lexical_similarity",
        "default_semantic_cache",
        "semantic_settings",
        "VectorIndex",
        "BruteForceIndex",
        "HNSWIndex",
        "make_index",
        "load_index",
        "CalibrationResult",
        "CurvePoint",
        "LabelledPairs",
        "load_pairs",
        "calibrate_pairs",
        "calibrate_protocol",
        "protocol_candidates",
        "protocol_outcome",
        "write_semantic_config",
        "PairScorer",
        "fit_pair_scorer",
        "fit_protocol_scorer",
        "cross_fitted_outcome",
        "HeldOut",
        "MATCH_FEATURES",
        "PairClassifier",
        "fit_pair_classifier",
        "pair_similarities",
        "split_pairs",
    }
    assert all(hasattr(promptkit.cache, name) for name in promptkit.cache.__all__)


def test_ledger_all_is_the_documented_api():
    expected = {"Ledger", "LedgerEntry", "LedgerTotals", "RunSummary", "default_ledger", "scrub_secrets"}
    assert expected <= set(promptkit.ledger.__all__)
    assert all(hasattr(promptkit.ledger, name) for name in promptkit.ledger.__all__)


def test_importing_cache_ledger_and_their_commands_pulls_in_nothing_heavy():
    code = (
        "import sys, promptkit.cache, promptkit.ledger, promptkit.cli.cache, promptkit.cli.ledger\n"
        "heavy = ('litellm', 'llama_cpp', 'instructor', 'gguf', 'scipy', 'openai', 'rich')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
