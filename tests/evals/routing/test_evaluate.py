"""evaluate_benchmark on recorded data: baselines, cascades, learned routers (on given embeddings), skips."""

from __future__ import annotations

import numpy as np
import pytest

from promptkit.errors import EvalError
from promptkit.evals.routing import ROUTERS, evaluate_benchmark, load_routellm


def _by_name(report):
    return {r.name: r for r in report.results}


def test_gsm8k_baselines_and_cascades(routellm_dir):
    data = load_routellm("gsm8k", routellm_dir, limit=400, seed=0)
    report = evaluate_benchmark(
        data,
        routers=["random", "always-weak", "always-strong", "oracle", "cascade-heuristic", "cascade"],
        folds=4,
        bootstrap=100,
    )
    r = _by_name(report)
    assert (
        r["always-weak"].quality == pytest.approx(data.weak.mean()) and r["always-weak"].strong_share == 0.0
    )
    assert (
        r["always-strong"].quality == pytest.approx(data.strong.mean())
        and r["always-strong"].strong_share == 1.0
    )
    assert abs(r["random"].metrics.apgr - 0.5) < 0.12
    oracle = r["oracle"].metrics.apgr
    assert oracle > 1.0
    for name in ("random", "cascade-heuristic", "cascade"):
        assert r[name].metrics.apgr < oracle
    # Reading the weak answer is worth a lot on GSM8K: far better than random.
    assert r["cascade"].metrics.apgr > 0.65 and r["cascade-heuristic"].metrics.apgr > 0.65
    assert r["cascade"].metrics.apgr_ci[0] < r["cascade"].metrics.apgr < r["cascade"].metrics.apgr_ci[1]
    assert report.reference["apgr"] == 0.622 and "in-domain" in report.note
    assert len(r["cascade"].curve) == 101 and r["cascade"].curve[0][1] == pytest.approx(data.weak.mean())


def test_mmlu_has_no_answers_to_cascade_on(routellm_dir):
    data = load_routellm("mmlu", routellm_dir, limit=200)
    report = evaluate_benchmark(data, routers=["random", "cascade", "knn"], bootstrap=0)
    assert [r.name for r in report.results] == ["random"]
    assert "no weak-model answer" in report.skipped["cascade"]
    assert "embeddings" in report.skipped["knn"]


def _signal_embeddings(data, seed=0):
    """Stand-in embeddings whose first column carries the weak model's outcome, plus noise."""
    X = np.random.default_rng(seed).normal(size=(len(data), 24))
    X[:, 0] += 2.0 * (1 - data.weak)
    return X


def test_prompt_routers_learn_from_embeddings(routellm_dir):
    data = load_routellm("gsm8k", routellm_dir, limit=300, seed=1)
    report = evaluate_benchmark(
        data, routers=["knn", "logreg", "cascade+prompt"], embeddings=_signal_embeddings(data), bootstrap=0
    )
    for result in report.results:
        assert result.metrics.apgr > 0.6, result.name


@pytest.mark.slow
def test_mlp_router_learns_from_embeddings(routellm_dir):
    data = load_routellm("gsm8k", routellm_dir, limit=200, seed=1)
    report = evaluate_benchmark(
        data, routers=["mlp"], embeddings=_signal_embeddings(data), folds=3, bootstrap=0
    )
    assert report.results[0].metrics.apgr > 0.6


def test_graded_benchmark(routellm_dir):
    data = load_routellm("mt_bench", routellm_dir)
    X = np.random.default_rng(0).normal(size=(len(data), 8))
    report = evaluate_benchmark(
        data, routers=["oracle", "random", "logreg", "cascade"], embeddings=X, bootstrap=50
    )
    r = _by_name(report)
    # Graded: the oracle reaches the strong model's mean with few calls (0.967 on this data) and beats all.
    assert r["oracle"].metrics.apgr > 0.9
    assert all(r[n].metrics.apgr < r["oracle"].metrics.apgr for n in ("random", "logreg", "cascade"))
    assert all(np.isfinite(r[n].metrics.apgr) for n in ("random", "logreg", "cascade"))


def test_unknown_router_and_bad_embeddings(routellm_dir):
    data = load_routellm("gsm8k", routellm_dir, limit=30)
    with pytest.raises(EvalError, match="unknown router"):
        evaluate_benchmark(data, routers=["nope"])
    with pytest.raises(EvalError, match="embeddings for"):
        evaluate_benchmark(data, routers=["knn"], embeddings=np.zeros((3, 4)))
    assert set(ROUTERS) >= {"random", "oracle", "knn", "logreg", "mlp", "cascade", "cascade+prompt"}
