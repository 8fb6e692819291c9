"""GPTCache's own benchmark (mock_data.json, 999 paraphrase pairs), GPTCache's protocol: cache every origin,
query every paraphrase; a hit on the right origin is correct, on another origin wrong, no hit a miss.

The threshold and margin are calibrated on a seeded half of the queries and reported on the other half.
GPTCache published 425/804/904 correct and 25/77/92 wrong of 999 at thresholds 0.95/0.9/0.8.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from promptkit.backends import GenerateResponse
from promptkit.cache import (
    SemanticCache,
    calibrate_protocol,
    cross_fitted_outcome,
    fit_protocol_scorer,
    protocol_candidates,
    protocol_outcome,
)
from promptkit.embeddings import EmbeddingCache
from tests.cache._semantic_support import minilm

MOCK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gptcache" / "mock_data.json"
NEEDS_MOCK = pytest.mark.skipif(
    not MOCK.is_file(), reason=f"{MOCK} is missing (shared/data is not beside the repository)"
)

# Embeds 1,998 sentences with the real model: about 10 s on 2 idle cores, minutes on a busy machine. The vectors
# are kept in an embedding cache in the temp folder (keyed by the model file's hash), so reruns are quick.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500), NEEDS_MOCK]


@pytest.fixture(scope="module")
def bench() -> dict:
    data = json.loads(MOCK.read_text())
    origins_all = [d["origin"] for d in data]
    queries = [d["similar"] for d in data]
    origins = list(dict.fromkeys(origins_all))  # 964 distinct: a repeated origin is one cache entry
    row = {text: i for i, text in enumerate(origins)}
    embedder = minilm()
    embedder.cache = EmbeddingCache(Path(tempfile.gettempdir()) / "promptkit-test-embeddings.sqlite")
    try:
        vectors = embedder.embed_array(origins), embedder.embed_array(queries)
    finally:
        embedder.cache.close()
        embedder.cache = None
    return {
        "origins": origins,
        "queries": queries,
        "expected": [row[o] for o in origins_all],
        "O": vectors[0],
        "Q": vectors[1],
    }


def _served(bench: dict, report: np.ndarray, tmp: str, **settings: object) -> dict[str, int]:
    """The real cache with these settings, on the reported queries only: correct/wrong/miss."""
    cache = SemanticCache(Path(tmp) / "semantic.sqlite", embedder=minilm(), **settings)
    cache.store_many(
        [(o, GenerateResponse(text=str(i))) for i, o in enumerate(bench["origins"])], vectors=bench["O"]
    )
    table = {"queries": len(report), "correct": 0, "wrong": 0, "miss": 0}
    for i in report:
        hit = cache.lookup(bench["queries"][i], vector=bench["Q"][i])
        if hit is None:
            table["miss"] += 1
        elif int(hit.response.text) == bench["expected"][i]:
            table["correct"] += 1
        else:
            table["wrong"] += 1
    cache.close()
    return table


def test_learned_scorer_fitted_on_one_half_measured_on_the_other(bench: dict) -> None:
    top, cosines = protocol_candidates(bench["O"], bench["Q"], 10)
    order = np.random.default_rng(0).permutation(len(bench["queries"]))
    calibration, report = order[: len(order) // 2], order[len(order) // 2 :]
    scorer = fit_protocol_scorer(
        bench["origins"], bench["queries"], bench["expected"], top, cosines, calibration
    )
    outcome = protocol_outcome(
        bench["origins"], bench["queries"], bench["expected"], top, cosines, scorer=scorer
    )
    result = calibrate_protocol(outcome, calibration, target_false_hit=0.01)
    assert result.threshold is not None and result.confidence is not None and result.margin is None
    with tempfile.TemporaryDirectory() as tmp:
        table = _served(
            bench, report, tmp, threshold=result.threshold, confidence=result.confidence, scorer=scorer
        )
    print(
        f"\npromptkit learned scorer (threshold {result.threshold}, confidence {result.confidence}): {table}"
    )
    # One implementation: the simulation the calibration used decides exactly as the cache does.
    assert table == outcome.table(result.threshold, result.confidence, report)
    assert table["wrong"] <= 0.01 * len(report)
    # Measured (seed 0): 461/3/36 of 500 (92.2%), against 444/2/54 for the blend + margin below. Seeds 0..4
    # average 91.5% (min 89.2%, bench/semantic_cache.py); the cross-validated test below is the sturdier one.
    assert table["correct"] >= 0.9 * len(report)
    blend = protocol_outcome(bench["origins"], bench["queries"], bench["expected"], top, cosines)
    plain = calibrate_protocol(blend, calibration, target_false_hit=0.01)
    assert table["correct"] > blend.table(plain.threshold, plain.margin, report)["correct"]  # type: ignore[arg-type]


def test_calibrated_on_one_half_measured_on_the_other(bench: dict) -> None:
    top, cosines = protocol_candidates(bench["O"], bench["Q"], 10)
    outcome = protocol_outcome(bench["origins"], bench["queries"], bench["expected"], top, cosines)
    order = np.random.default_rng(0).permutation(len(bench["queries"]))
    calibration, report = order[: len(order) // 2], order[len(order) // 2 :]
    result = calibrate_protocol(outcome, calibration, target_false_hit=0.01)
    assert result.threshold is not None and result.margin is not None

    # The real cache, on the reported half only, with the calibrated settings.
    with tempfile.TemporaryDirectory() as tmp:
        table = _served(bench, report, tmp, threshold=result.threshold, margin=result.margin)
    print(
        f"\npromptkit (threshold {result.threshold}, margin {result.margin}, calibrated on {len(calibration)}):"
        f" {table}\nGPTCache of 999: 0.95 -> 425/25/549, 0.9 -> 804/77/118, 0.8 -> 904/92/3 (correct/wrong/miss)"
    )
    # The simulation the calibration used decides exactly as the cache does.
    assert table == outcome.table(result.threshold, result.margin, report)
    assert table["wrong"] <= 0.01 * len(report)
    # Measured: 444/500 correct (88.8%), 2 wrong (the learned scorer above does better).
    assert table["correct"] >= 0.85 * len(report)


def test_five_fold_cross_validation_with_cross_fitted_calibration(bench: dict) -> None:
    """Every query reported once, by a scorer and settings fitted on the other four folds; inside those, the
    confidence is calibrated on queries each inner scorer did not see (in-sample confidences let through
    1.24% wrong out of fold: bench/semantic_cache.py)."""
    top, cosines = protocol_candidates(bench["O"], bench["Q"], 10)
    n = len(bench["queries"])
    args = (bench["origins"], bench["queries"], bench["expected"], top, cosines)
    parts = np.array_split(np.random.default_rng(0).permutation(n), 5)
    total = {"correct": 0, "wrong": 0, "miss": 0}
    for i, held in enumerate(parts):
        calibration = np.concatenate([p for j, p in enumerate(parts) if j != i])
        honest = cross_fitted_outcome(*args, calibration)
        assert not honest.hits(-1.0, 0.0)[held].any()  # the held-out fold is never scored while calibrating
        result = calibrate_protocol(honest, calibration, target_false_hit=0.01)
        assert result.threshold is not None and result.confidence is not None
        table = protocol_outcome(*args, scorer=honest.scorer).table(result.threshold, result.confidence, held)
        for key in total:
            total[key] += table[key]
    print(f"\n5-fold cross-validated, cross-fitted calibration (seed 0): {total}")
    assert sum(total.values()) == n
    # Measured (seed 0): 906/10/83 (90.7% correct, 10 wrong of 999). The target is >= 90% with <= 1%;
    # the bounds leave a few queries of room for floating-point differences in the embeddings across CPUs.
    assert total["wrong"] <= 0.012 * n
    assert total["correct"] >= 0.895 * n
