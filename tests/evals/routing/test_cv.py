"""Cross-validation: the folds partition the queries and no model scores a query it was trained on."""

from __future__ import annotations

import numpy as np
import pytest

from promptkit.errors import EvalError
from promptkit.evals.routing import cross_val_scores, evaluate_scores, kfold_indices
from promptkit.routing.learned import KNNModel


def test_folds_partition_and_are_seeded():
    splits = kfold_indices(103, 5, seed=3)
    tests = [t for _, t in splits]
    assert sorted(np.concatenate(tests).tolist()) == list(range(103))
    for train, test in splits:
        assert not set(train.tolist()) & set(test.tolist())
        assert len(train) + len(test) == 103
    again = kfold_indices(103, 5, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(splits, again, strict=True))
    assert any((a[1] != b[1]).any() for a, b in zip(splits, kfold_indices(103, 5, seed=4), strict=True))
    with pytest.raises(EvalError, match="folds"):
        kfold_indices(3, 5)


def test_each_query_is_scored_once_by_a_model_that_never_saw_it():
    seen: list[tuple[set[int], set[int]]] = []

    def spy(train, test):
        seen.append((set(train.tolist()), set(test.tolist())))
        return np.zeros(len(test))

    scores, fold_of = cross_val_scores(spy, 50, k=5, seed=0)
    assert len(seen) == 5 and not np.isnan(scores).any()
    for fold, (train, test) in enumerate(seen):
        assert not train & test
        assert set(np.flatnonzero(fold_of == fold).tolist()) == test


def test_a_memorising_model_gains_nothing_out_of_fold():
    """1-NN on unique random points memorises perfectly; scored in-sample it would be the oracle."""
    rng = np.random.default_rng(0)
    n = 600
    X = rng.normal(size=(n, 16))
    weak = (rng.random(n) < 0.6).astype(float)
    strong = np.ones(n)
    y = 1 - weak

    def fit_predict(train, test):
        return KNNModel(k=1, prior_weight=0.0).fit(X[train], y[train]).predict(X[test])

    in_sample = KNNModel(k=1, prior_weight=0.0).fit(X, y).predict(X)
    assert evaluate_scores(in_sample, weak, strong).apgr > 0.75
    held_out, _ = cross_val_scores(fit_predict, n, k=5, seed=0)
    assert abs(evaluate_scores(held_out, weak, strong).apgr - 0.5) < 0.08
