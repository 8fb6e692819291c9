"""The numpy learners fit what they should and survive a JSON round trip unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptkit.errors import RoutingError
from promptkit.routing.learned import KNNModel, LogisticModel, RidgeModel
from promptkit.routing.learned._learners import model_from_dict


def _data(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.arange(1, d + 1)
    true = np.zeros(d)
    true[:2] = [1.5 / 1, -2.0 / 2]
    p = 1 / (1 + np.exp(-(X @ true + 0.3)))
    return X, (rng.random(n) < p).astype(float), true


def test_logistic_recovers_the_signal_and_round_trips():
    X, y, true = _data()
    model = LogisticModel(seed=0).fit(X, y)
    assert np.sign(model.coef[:2]).tolist() == [1.0, -1.0]
    assert np.abs(model.coef[:2]).min() > 3 * np.abs(model.coef[2:]).max()
    p = model.predict(X)
    assert ((p > 0.5) == y).mean() > 0.75
    again = model_from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.allclose(again.predict(X), p)


def test_logistic_needs_both_outcomes():
    with pytest.raises(RoutingError, match="both outcomes"):
        LogisticModel().fit(np.ones((5, 2)), np.ones(5))


def test_ridge_fits_a_graded_gap():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = 2.0 * X[:, 0] + rng.normal(0, 0.1, 300)
    model = RidgeModel(seed=0).fit(X, y)
    assert np.corrcoef(model.predict(X), y)[0, 1] > 0.99
    assert np.allclose(model_from_dict(model.to_dict()).predict(X), model.predict(X))


def test_knn_averages_neighbour_labels():
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    model = KNNModel(k=2, prior_weight=0.0).fit(X, y)
    assert model.predict([[1.0, 0.05], [0.05, 1.0]]).tolist() == pytest.approx([1.0, 0.0])
    assert np.allclose(model_from_dict(model.to_dict()).predict(X), model.predict(X))


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown model kind"):
        model_from_dict({"kind": "pickle"})
