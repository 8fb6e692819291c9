"""Seeded k-fold cross-validation: every query is scored by a model that never saw it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from promptkit.errors import EvalError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["kfold_indices", "cross_val_scores", "FitPredict", "single_threaded_blas"]

# (train indices, test indices) -> scores for the test indices, in their order
FitPredict = Callable[["np.ndarray", "np.ndarray"], "np.ndarray"]


def kfold_indices(n: int, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, test) splits of a seeded permutation of ``range(n)``; the test folds partition it."""
    import numpy as np

    if k < 2 or k > n:
        raise EvalError(f"need 2 <= folds <= queries, got folds={k} for {n} queries", location="--folds")
    parts = np.array_split(np.random.default_rng(seed).permutation(n), k)
    return [
        (np.sort(np.concatenate([p for j, p in enumerate(parts) if j != i])), np.sort(parts[i]))
        for i in range(k)
    ]


def cross_val_scores(
    fit_predict: FitPredict, n: int, *, k: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores for all ``n`` queries, and the fold each was scored in.

    Scores from the k fold models are pooled into one curve (as scikit-learn's ``cross_val_predict``); the
    models are all probability or gap estimates on one scale, so their scores are comparable.
    """
    import numpy as np

    scores = np.full(n, np.nan)
    fold_of = np.full(n, -1, dtype=np.int64)
    for fold, (train, test) in enumerate(kfold_indices(n, k, seed)):
        out = np.asarray(fit_predict(train, test), dtype=np.float64)
        if out.shape != (len(test),):
            raise EvalError(
                f"fold {fold}: expected {len(test)} scores, got shape {out.shape}", location="router"
            )
        scores[test] = out
        fold_of[test] = fold
    return scores, fold_of


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """One BLAS thread while fitting: these models are small, and on a busy 2-core machine OpenBLAS's thread
    barriers make them 10x slower (measured). A no-op without threadpoolctl (it ships with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield
