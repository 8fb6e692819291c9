"""Small learners in numpy whose fitted state is a few arrays: saved as JSON, applied in microseconds.

``LogisticModel`` (Newton's method, L2), ``RidgeModel`` (a graded target such as the MT-Bench grade gap),
``KNNModel`` (cosine neighbours, mean label). Features are standardised inside the model, so a saved model
carries its own scaling. ``l2="auto"`` picks the penalty by 3-fold validation on the training rows only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from promptkit.errors import RoutingError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LogisticModel", "RidgeModel", "KNNModel", "MLPModel", "model_from_dict", "L2_GRID"]

L2_GRID: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)


def _arr(values: Any) -> np.ndarray:
    import numpy as np

    return np.asarray(values, dtype=np.float64)


class _Scaled:
    mean: np.ndarray
    scale: np.ndarray

    def _fit_scale(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale = np.where(std > 1e-12, std, 1.0)
        return (X - self.mean) / self.scale

    def _apply(self, X: Any) -> np.ndarray:
        return (_arr(X) - self.mean) / self.scale


L = TypeVar("L", bound="_Linear")


class _Linear(_Scaled):
    """A linear model on standardised features: what its policy file stores and how it is read back."""

    kind: str
    l2: float | str
    coef: np.ndarray | None
    intercept: float

    def to_dict(self) -> dict[str, Any]:
        assert self.coef is not None
        return {
            "kind": self.kind,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "l2": getattr(self, "l2_used", self.l2),
        }

    @classmethod
    def from_dict(cls: type[L], data: dict[str, Any]) -> L:
        model = cls(l2=float(data.get("l2", 1.0)))
        model.mean, model.scale = _arr(data["mean"]), _arr(data["scale"])
        model.coef, model.intercept = _arr(data["coef"]), float(data["intercept"])
        if not (model.mean.shape == model.scale.shape == model.coef.shape):
            raise ValueError("mean, scale and coef differ in length")
        return model


def _inner_folds(n: int, seed: int, k: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, k)
    return [(np.concatenate([p for j, p in enumerate(parts) if j != i]), parts[i]) for i in range(k)]


class LogisticModel(_Linear):
    """P(y = 1 | x) with an L2-penalised logistic regression (intercept not penalised)."""

    kind = "logreg"

    def __init__(self, l2: float | str = "auto", *, max_iter: int = 25, seed: int = 0) -> None:
        self.l2 = l2
        self.max_iter = max_iter
        self.seed = seed
        self.coef: np.ndarray | None = None
        self.intercept = 0.0

    @staticmethod
    def _newton(
        Z: np.ndarray, y: np.ndarray, l2: float, max_iter: int, start: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        import numpy as np

        n, d = Z.shape
        A = np.hstack([Z, np.ones((n, 1))])
        w = np.zeros(d + 1) if start is None else start.copy()
        penalty = np.full(d + 1, l2)
        penalty[-1] = 0.0
        for _ in range(max_iter):
            p = 1.0 / (1.0 + np.exp(-np.clip(A @ w, -35, 35)))
            grad = A.T @ (p - y) + penalty * w
            hess = (A * (p * (1 - p))[:, None]).T @ A + np.diag(penalty + 1e-9)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.max(np.abs(step)) < 1e-6:
                break
        return w[:-1], float(w[-1])

    def fit(self, X: Any, y: Any) -> LogisticModel:
        import numpy as np

        Xa, ya = _arr(X), _arr(y)
        if len(np.unique(ya)) < 2:
            raise RoutingError("logistic regression needs both outcomes in the training data", location="fit")
        Z = self._fit_scale(Xa)
        l2 = self._choose(Z, ya) if self.l2 == "auto" else float(self.l2)
        self.l2_used = l2
        self.coef, self.intercept = self._newton(Z, ya, l2, self.max_iter)
        return self

    def _choose(self, Z: np.ndarray, y: np.ndarray) -> float:
        """The penalty with the best held-out log-loss over 3 inner folds (on at most 3,000 rows: the choice
        is stable by then, and it keeps fitting 14k MMLU rows fast). Strongest first, each fit warm-starting
        the next, so the weakly penalised (slow) fits begin near their answer."""
        import numpy as np

        if len(y) > 3000:
            keep = np.random.default_rng(self.seed).choice(len(y), size=3000, replace=False)
            Z, y = Z[keep], y[keep]
        folds = [(tr, te) for tr, te in _inner_folds(len(y), self.seed) if len(np.unique(y[tr])) == 2]
        if not folds:
            return 1.0
        starts: list[np.ndarray | None] = [None] * len(folds)
        best, best_loss = L2_GRID[-1], float("inf")
        for l2 in sorted(L2_GRID, reverse=True):
            loss = 0.0
            for i, (train, test) in enumerate(folds):
                coef, b = self._newton(Z[train], y[train], l2, self.max_iter, starts[i])
                starts[i] = np.r_[coef, b]
                p = np.clip(1.0 / (1.0 + np.exp(-(Z[test] @ coef + b))), 1e-6, 1 - 1e-6)
                loss -= float(np.sum(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p)))
            if loss < best_loss:
                best, best_loss = l2, loss
        return best

    def predict(self, X: Any) -> np.ndarray:
        import numpy as np

        if self.coef is None:
            raise RoutingError("the model is not fitted", location="LogisticModel.predict")
        z = self._apply(X) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


class RidgeModel(_Linear):
    """E[y | x] with ridge regression: for graded targets (the strong-minus-weak grade gap)."""

    kind = "ridge"

    def __init__(self, l2: float | str = "auto", *, seed: int = 0) -> None:
        self.l2 = l2
        self.seed = seed
        self.coef: np.ndarray | None = None
        self.intercept = 0.0

    @staticmethod
    def _solve(Z: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
        import numpy as np

        mu = float(y.mean())
        coef = np.linalg.solve(Z.T @ Z + l2 * np.eye(Z.shape[1]), Z.T @ (y - mu))
        return coef, mu

    def fit(self, X: Any, y: Any) -> RidgeModel:
        import numpy as np

        Z, ya = self._fit_scale(_arr(X)), _arr(y)
        if self.l2 == "auto":
            errors = []
            for l2 in L2_GRID:
                err = 0.0
                for train, test in _inner_folds(len(ya), self.seed):
                    c, b = self._solve(Z[train], ya[train], l2)
                    err += float(np.sum((Z[test] @ c + b - ya[test]) ** 2))
                errors.append(err)
            l2 = L2_GRID[int(np.argmin(errors))]
        else:
            l2 = float(self.l2)
        self.l2_used = l2
        self.coef, self.intercept = self._solve(Z, ya, l2)
        return self

    def predict(self, X: Any) -> np.ndarray:
        if self.coef is None:
            raise RoutingError("the model is not fitted", location="RidgeModel.predict")
        return self._apply(X) @ self.coef + self.intercept


class KNNModel:
    """Mean label of the ``k`` most cosine-similar training rows (shrunk toward the overall mean)."""

    kind = "knn"

    def __init__(self, k: int | None = None, *, prior_weight: float = 1.0) -> None:
        self.k = k
        self.prior_weight = prior_weight
        self.X: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.prior = 0.0

    @staticmethod
    def _unit(X: Any) -> np.ndarray:
        import numpy as np

        A = _arr(X)
        norms = np.linalg.norm(A, axis=1, keepdims=True)
        return A / np.where(norms > 0, norms, 1.0)

    def fit(self, X: Any, y: Any) -> KNNModel:
        import numpy as np

        self.X, self.y = self._unit(X), _arr(y)
        if len(self.y) == 0:
            raise RoutingError("kNN needs training rows", location="fit")
        self.prior = float(self.y.mean())
        if self.k is None:
            self.k = int(np.clip(round(np.sqrt(len(self.y))), 3, 50))
        return self

    def predict(self, X: Any) -> np.ndarray:
        import numpy as np

        if self.X is None or self.y is None or self.k is None:
            raise RoutingError("the model is not fitted", location="KNNModel.predict")
        sims = self._unit(X) @ self.X.T
        k = min(self.k, len(self.y))
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        # Ties between equal neighbour means are left to the metric, which serves tied queries together.
        return (self.y[top].sum(axis=1) + self.prior_weight * self.prior) / (k + self.prior_weight)

    def to_dict(self) -> dict[str, Any]:
        assert self.X is not None and self.y is not None
        return {
            "kind": self.kind,
            "k": self.k,
            "prior_weight": self.prior_weight,
            "prior": self.prior,
            "X": self.X.astype("float32").tolist(),
            "y": self.y.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KNNModel:
        model = cls(int(data["k"]), prior_weight=float(data.get("prior_weight", 1.0)))
        model.X, model.y, model.prior = _arr(data["X"]), _arr(data["y"]), float(data["prior"])
        if model.X.ndim != 2 or len(model.X) != len(model.y):
            raise ValueError("X and y differ in length")
        return model


class MLPModel:
    """A one-hidden-layer network (scikit-learn), for comparison; saved as its weight matrices."""

    kind = "mlp"

    def __init__(self, *, graded: bool = False, hidden: int = 64, alpha: float = 1e-2, seed: int = 0) -> None:
        self.graded = graded
        self.hidden = hidden
        self.alpha = alpha
        self.seed = seed
        self._net: Any = None

    def fit(self, X: Any, y: Any) -> MLPModel:
        try:
            from sklearn.neural_network import MLPClassifier, MLPRegressor
        except ImportError:
            from promptkit.errors import BackendUnavailable

            raise BackendUnavailable(
                "the mlp router needs scikit-learn: pip install scikit-learn", location="router 'mlp'"
            ) from None
        import warnings

        import numpy as np

        Xa, ya = _arr(X), _arr(y)
        self.mean = Xa.mean(axis=0)
        std = Xa.std(axis=0)
        self.scale = np.where(std > 1e-12, std, 1.0)
        cls = MLPRegressor if self.graded else MLPClassifier
        small = len(ya) < 2000
        # Small data: full-batch L-BFGS with a stronger penalty; large: Adam with early stopping.
        self._net = cls(
            hidden_layer_sizes=(self.hidden,),
            alpha=self.alpha * (100 if small else 1),
            solver="lbfgs" if small else "adam",
            max_iter=300,
            early_stopping=not small,
            random_state=self.seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._net.fit((Xa - self.mean) / self.scale, ya)
        return self

    def predict(self, X: Any) -> np.ndarray:
        if self._net is None:
            raise RoutingError("the model is not fitted", location="MLPModel.predict")
        Z = (_arr(X) - self.mean) / self.scale
        if self.graded:
            return self._net.predict(Z)  # type: ignore[no-any-return]
        return self._net.predict_proba(Z)[:, 1]  # type: ignore[no-any-return]


_KINDS: dict[str, Any] = {"logreg": LogisticModel, "ridge": RidgeModel, "knn": KNNModel}


def model_from_dict(data: dict[str, Any]) -> LogisticModel | RidgeModel | KNNModel:
    """Rebuild a saved model; ValueError/KeyError/TypeError on a malformed record (the caller names the file)."""
    kind = data.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(_KINDS)}")
    return _KINDS[kind].from_dict(data)  # type: ignore[no-any-return]
