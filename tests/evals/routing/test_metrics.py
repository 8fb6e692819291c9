"""APGR, CPT, the oracle and bootstrap CIs against curves computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from promptkit.errors import EvalError
from promptkit.evals.routing import (
    apgr,
    bootstrap_metrics,
    cpt,
    evaluate_scores,
    oracle_curve,
    random_scores,
    routing_curve,
)

# Four queries: gains (strong - weak) are 0, +1, +1, -1; weak quality 0.5, strong 0.75.
WEAK = [1.0, 0.0, 0.0, 1.0]
STRONG = [1.0, 1.0, 1.0, 0.0]


def test_curve_by_hand():
    curve = routing_curve([0.1, 0.9, 0.8, 0.0], WEAK, STRONG)
    # Order: q2 (+1), q3 (+1), q1 (0), q4 (-1): cumulative gain 0, 1, 2, 2, 1 over a total gain of 1.
    assert curve.share.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve.quality.tolist() == pytest.approx([0.5, 0.75, 1.0, 1.0, 0.75])
    assert curve.pgr.tolist() == pytest.approx([0.0, 1.0, 2.0, 2.0, 1.0])
    # Trapezoids: 0.25 * (0.5 + 1.5 + 2 + 1.5)
    assert apgr(curve) == pytest.approx(1.375)
    assert cpt(curve, 0.2) == pytest.approx(0.05)
    assert cpt(curve, 0.5) == pytest.approx(0.125)
    assert cpt(curve, 0.8) == pytest.approx(0.2)
    assert np.isnan(cpt(curve, 2.5))


def test_oracle_never_takes_a_losing_query():
    curve = oracle_curve(WEAK, STRONG)
    assert curve.pgr.tolist() == pytest.approx([0.0, 1.0, 2.0, 2.0, 2.0])
    assert apgr(curve) == pytest.approx(1.5)


def test_worst_order_is_below_random():
    curve = routing_curve([0.5, 0.0, 0.1, 0.9], WEAK, STRONG)  # the losing query first
    assert curve.pgr.tolist() == pytest.approx([0.0, -1.0, -1.0, 0.0, 1.0])
    assert apgr(curve) < 0.5


def test_tied_scores_trace_the_diagonal():
    metrics = evaluate_scores(np.zeros(4), WEAK, STRONG)
    assert metrics.apgr == pytest.approx(0.5)
    assert [metrics.cpt[x] for x in (0.2, 0.5, 0.8)] == pytest.approx([0.2, 0.5, 0.8])


def test_every_curve_ends_at_the_strong_model():
    rng = np.random.default_rng(3)
    w, s = rng.random(50) < 0.6, rng.random(50) < 0.8
    curve = routing_curve(rng.random(50), w, s)
    assert curve.pgr[0] == 0.0 and curve.pgr[-1] == pytest.approx(1.0)
    assert curve.quality[-1] == pytest.approx(s.mean())


def test_random_router_apgr_is_about_half():
    rng = np.random.default_rng(12345)  # not one of the router's seeds: its scores must be independent
    w = (rng.random(2000) < 0.65).astype(float)
    s = (rng.random(2000) < 0.85).astype(float)
    values = [evaluate_scores(random_scores(2000, seed), w, s).apgr for seed in range(100, 120)]
    assert abs(np.mean(values) - 0.5) < 0.03
    assert all(0.3 < v < 0.7 for v in values)


def test_apgr_matches_routellm_formula_on_a_fine_grid():
    """RouteLLM: (AUC - AUC_weak) / (AUC_strong - AUC_weak) with np.trapz over the threshold sweep."""
    rng = np.random.default_rng(7)
    n = 500
    w = (rng.random(n) < 0.6).astype(float)
    s = np.clip(w + (rng.random(n) < 0.3), 0, 1)
    scores = rng.random(n) + 0.5 * (s - w)
    order = np.argsort(-scores)
    shares, accs = [0.0], [w.mean()]
    for k in range(1, n + 1):
        routed = np.zeros(n, dtype=bool)
        routed[order[:k]] = True
        shares.append(k / n)
        accs.append(np.where(routed, s, w).mean())
    auc = np.trapezoid(accs, shares)
    expected = (auc - w.mean()) / (s.mean() - w.mean())
    assert apgr(routing_curve(scores, w, s)) == pytest.approx(expected)


def test_graded_quality():
    weak, strong = [8.0, 6.0, 9.0], [9.0, 9.0, 9.0]  # gains 1, 3, 0
    curve = routing_curve([0.2, 0.9, 0.1], weak, strong)
    assert curve.quality.tolist() == pytest.approx([23 / 3, 26 / 3, 27 / 3, 27 / 3])
    assert curve.pgr.tolist() == pytest.approx([0.0, 0.75, 1.0, 1.0])


def test_bootstrap_ci_brackets_the_point_and_is_seeded():
    rng = np.random.default_rng(1)
    w = (rng.random(800) < 0.6).astype(float)
    s = (rng.random(800) < 0.85).astype(float)
    scores = (s - w) + rng.normal(0, 1.0, 800)
    a = bootstrap_metrics(scores, w, s, n_boot=300, seed=5)
    b = bootstrap_metrics(scores, w, s, n_boot=300, seed=5)
    assert a.apgr_ci == b.apgr_ci and a.cpt_ci == b.cpt_ci
    lo, hi = a.apgr_ci
    assert lo < a.apgr < hi and hi - lo < 0.3
    for level, (clo, chi) in a.cpt_ci.items():
        assert clo <= a.cpt[level] <= chi
    assert bootstrap_metrics(scores, w, s, n_boot=0).apgr_ci is None


def test_bootstrap_of_the_oracle():
    rng = np.random.default_rng(2)
    w = (rng.random(400) < 0.6).astype(float)
    s = (rng.random(400) < 0.85).astype(float)
    m = bootstrap_metrics(np.zeros(400), w, s, n_boot=200, oracle=True)
    assert m.apgr == pytest.approx(apgr(oracle_curve(w, s)))
    assert m.apgr > 1.0 and m.apgr_ci[0] < m.apgr < m.apgr_ci[1]


def test_bad_inputs_raise_eval_error():
    with pytest.raises(EvalError, match="same length"):
        routing_curve([0.1, 0.2], WEAK, STRONG)
    with pytest.raises(EvalError, match="NaN"):
        routing_curve([0.1, np.nan, 0.2, 0.3], WEAK, STRONG)
    with pytest.raises(EvalError, match="no queries"):
        routing_curve([], [], [])
