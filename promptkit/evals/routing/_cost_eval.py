"""Routers over N models with dollar costs, scored the way RouterBench scores them.

Each router yields operating points (mean dollars per prompt, mean quality) on held-out prompts: a predictive
router one point per willingness-to-pay λ (each prompt goes to the model maximising predicted quality − λ·cost),
a cascade one point per ordered subset of models, the oracle one point per λ on the true outcomes. Mixing two
operating points at random reaches any point between them, so a router's curve is the non-decreasing convex
hull of its points; AIQ is the hull's mean quality over the cost range from the cheapest to the dearest single
model (RouterBench, arXiv 2403.12031). Every router includes the "always the cheapest model" point, which needs
no router.

In-domain: k-fold cross-validation over all prompts. Cross-domain: each domain (benchmark) is scored by
predictors trained on the other domains only, which is what a router meets on a new workload.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from promptkit.errors import EvalError
from promptkit.evals.routing._cv import kfold_indices, single_threaded_blas
from promptkit.evals.routing._outcomes import OutcomeMatrix
from promptkit.routing.learned import LexicalFeaturizer, LogisticModel, MLPModel, RidgeModel

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "COST_ROUTERS",
    "DEFAULT_COST_ROUTERS",
    "SPLITS",
    "CostRouterSpec",
    "CostRouterResult",
    "CostReport",
    "nondecreasing_hull",
    "area_under_hull",
    "cost_to_reach",
    "evaluate_outcomes",
    "lambda_grid",
    "cascade_outcomes",
]

Split = Literal["in-domain", "cross-domain"]
SPLITS: tuple[Split, ...] = ("in-domain", "cross-domain")
CostKind = Literal["baseline", "oracle", "predictive", "cascade"]


@dataclass(frozen=True)
class CostRouterSpec:
    name: str
    kind: CostKind
    description: str


COST_ROUTERS: dict[str, CostRouterSpec] = {
    s.name: s
    for s in (
        CostRouterSpec("random-mix", "baseline", "random mixes of single models (their hull; no router)"),
        CostRouterSpec("oracle", "oracle", "knows every outcome: per prompt, best quality − λ·cost"),
        CostRouterSpec("knn", "predictive", "k nearest neighbours' scores per model, then quality − λ·cost"),
        CostRouterSpec(
            "linear", "predictive", "logistic (ridge when graded) per model, then quality − λ·cost"
        ),
        CostRouterSpec(
            "mlp", "predictive", "one-hidden-layer MLP (scikit-learn) for all models, then − λ·cost"
        ),
        CostRouterSpec(
            "cascade",
            "cascade",
            "cheapest first, escalate while the recorded score fails (a perfect verifier: an upper bound)",
        ),
    )
}
DEFAULT_COST_ROUTERS: tuple[str, ...] = tuple(COST_ROUTERS)


# -- the curve ----------------------------------------------------------------------------------------------


def nondecreasing_hull(costs: Sequence[float], qualities: Sequence[float]) -> tuple[list[float], list[float]]:
    """The upper convex hull of the points, cut at its best quality (paying more never lowers quality)."""
    best: dict[float, float] = {}
    for c, q in zip(costs, qualities, strict=True):
        c, q = float(c), float(q)
        if c not in best or q > best[c]:
            best[c] = q
    points = sorted(best.items())
    if not points:
        raise EvalError("no operating points", location="routing curve")
    hull: list[tuple[float, float]] = []
    for p in points:
        # Drop the last point while it lies on or under the segment from its predecessor to p.
        while len(hull) >= 2:
            (ox, oy), (ax, ay) = hull[-2], hull[-1]
            if (ax - ox) * (p[1] - oy) - (ay - oy) * (p[0] - ox) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    top = max(range(len(hull)), key=lambda i: (hull[i][1], -i))
    hull = hull[: top + 1]
    return [c for c, _ in hull], [q for _, q in hull]


def _hull_at(hc: Sequence[float], hq: Sequence[float], c: float) -> float:
    import numpy as np

    return float(np.interp(c, hc, hq, left=hq[0], right=hq[-1]))


def area_under_hull(hc: Sequence[float], hq: Sequence[float], lo: float, hi: float) -> float:
    """Mean of the hull's quality over costs [lo, hi] (exact: the hull is piecewise linear). AIQ."""
    import numpy as np

    if hi <= lo:
        return _hull_at(hc, hq, lo)
    xs = np.unique(np.r_[lo, hi, [c for c in hc if lo < c < hi]])
    ys = np.interp(xs, hc, hq, left=hq[0], right=hq[-1])
    return float(np.trapezoid(ys, xs) / (hi - lo))


def cost_to_reach(hc: Sequence[float], hq: Sequence[float], quality: float) -> float:
    """The least mean cost at which the hull reaches ``quality``; NaN if it never does."""
    if hq[0] >= quality - 1e-12:
        return float(hc[0])
    for i in range(1, len(hc)):
        if hq[i] >= quality - 1e-12:
            q0, q1, c0, c1 = hq[i - 1], hq[i], hc[i - 1], hc[i]
            return float(c0 + (quality - q0) / (q1 - q0) * (c1 - c0))
    return float("nan")


def lambda_grid(costs: np.ndarray, points: int = 41) -> np.ndarray:
    """λ from 0 (quality only) to infinity (cost only), geometric around 1 / the mean cost in between."""
    import numpy as np

    scale = 1.0 / max(float(costs.mean()), 1e-12)
    return np.r_[0.0, scale * np.geomspace(1e-3, 1e3, points), np.inf]


# -- predictors ---------------------------------------------------------------------------------------------


def _knn_predict(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Mean scores of the k most cosine-similar training prompts (k = sqrt(n), 3..50), shrunk to the mean."""
    import numpy as np

    def unit(A: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(A, axis=1, keepdims=True)
        return A / np.where(norms > 0, norms, 1.0)

    Xtr, ytr = unit(X[train]), y[train]
    k = int(np.clip(round(math.sqrt(len(train))), 3, 50))
    k = min(k, len(train))
    prior = ytr.mean(axis=0)
    out = np.empty((len(test), y.shape[1]))
    for start in range(0, len(test), 1024):  # a block of similarities at a time: n_test x n_train is large
        rows = test[start : start + 1024]
        sims = unit(X[rows]) @ Xtr.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        out[start : start + len(rows)] = (ytr[top].sum(axis=1) + prior) / (k + 1)
    return out


def _linear_predict(
    X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, binary: bool, seed: int
) -> np.ndarray:
    """Per model: logistic regression (0/1 scores) or ridge (graded), the penalty chosen by 3-fold CV on the
    training rows. scikit-learn's L-BFGS when installed (measured on GSM8K's lexical features: 1.2 s and a
    better held-out AUC than the numpy Newton fallback's 7 s, which stalls when features outnumber rows)."""
    import warnings

    import numpy as np

    try:
        from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    except ImportError:
        LogisticRegressionCV = RidgeCV = None  # noqa: N806
    out = np.empty((len(test), y.shape[1]))
    for j in range(y.shape[1]):
        col = y[train, j]
        if binary and len(np.unique(col)) < 2:
            out[:, j] = col.mean()  # one outcome in the training rows: its rate is all there is to learn
        elif binary and LogisticRegressionCV is not None and min(np.bincount(col.astype(int))) >= 3:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = LogisticRegressionCV(
                    Cs=[0.01, 0.1, 1.0, 10.0], cv=3, scoring="neg_log_loss", max_iter=500, random_state=seed
                ).fit(X[train], col)
            out[:, j] = net.predict_proba(X[test])[:, 1]
        elif binary:
            out[:, j] = LogisticModel(seed=seed).fit(X[train], col).predict(X[test])
        elif RidgeCV is not None:
            out[:, j] = RidgeCV(alphas=(0.1, 1.0, 10.0, 100.0)).fit(X[train], col).predict(X[test])
        else:
            out[:, j] = RidgeModel(seed=seed).fit(X[train], col).predict(X[test])
    return out


def _mlp_predict(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    import numpy as np

    pred = MLPModel(graded=True, seed=seed).fit(X[train], y[train]).predict(X[test])
    return np.asarray(pred, dtype=np.float64).reshape(len(test), y.shape[1])


def _features(
    matrix: OutcomeMatrix, embeddings: np.ndarray | None
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Features for a split: the given embeddings, or lexical features whose IDF and scaling are fitted on
    the training rows only (held-out prompts never shape their own features)."""
    import numpy as np

    if embeddings is not None:
        X = np.asarray(embeddings, dtype=np.float64)
        return lambda train, test: X
    featurizer = LexicalFeaturizer()
    counts, stats = featurizer.raw(matrix.prompts)

    def build(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        featurizer.fit_raw(counts[train], stats[train])
        X = np.zeros((len(matrix), featurizer.width))
        X[train] = featurizer.apply_raw(counts[train], stats[train])
        X[test] = featurizer.apply_raw(counts[test], stats[test])
        return X

    return build


def _splits(
    matrix: OutcomeMatrix, split: Split, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    import numpy as np

    if split == "in-domain":
        return kfold_indices(len(matrix), min(folds, len(matrix)), seed)
    # Leave domains out: one per split when there are at most ``folds`` of them, else ``folds`` seeded groups
    # of domains (MMLU's 57 subjects), so no prompt is scored by a model trained on its own domain.
    domains = sorted(set(matrix.domains))
    order = (
        np.random.default_rng(seed).permutation(len(domains)) if len(domains) > folds else range(len(domains))
    )
    groups = np.array_split(np.asarray([domains[i] for i in order], dtype=object), min(folds, len(domains)))
    labels = np.asarray(matrix.domains, dtype=object)
    out = []
    for group in groups:
        held = np.isin(labels, group)
        out.append((np.flatnonzero(~held), np.flatnonzero(held)))
    return out


# -- choosing -----------------------------------------------------------------------------------------------


def _choose(quality: np.ndarray, cost: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Per λ and prompt, the model maximising quality − λ·cost (ties to the cheaper model); shape (L, n)."""
    import numpy as np

    # A tie-break far below any real difference: the cheaper model wins equal values.
    tie = cost * 1e-9 / max(float(np.abs(cost).max()), 1e-30)
    out = np.empty((len(lambdas), quality.shape[0]), dtype=np.int64)
    for i, lam in enumerate(lambdas):
        value = -cost if math.isinf(lam) else quality - lam * cost - tie
        out[i] = np.argmax(value, axis=1)
    return out


def cascade_outcomes(
    scores: np.ndarray, costs: np.ndarray, order: Sequence[int], threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt, the quality and dollars of trying ``order`` in turn until a score reaches ``threshold``."""
    import numpy as np

    n = scores.shape[0]
    quality = np.zeros(n)
    spent = np.zeros(n)
    open_ = np.ones(n, dtype=bool)
    for j in order:
        spent[open_] += costs[open_, j]
        quality[open_] = scores[open_, j]
        open_ &= scores[:, j] < threshold
    return quality, spent


def _cascade_orders(mean_costs: np.ndarray, max_models: int = 10) -> list[list[int]]:
    """Every ordered subset (cheapest first) for up to ``max_models`` models; else prefixes and pairs."""
    from itertools import combinations

    by_cost = [int(j) for j in sorted(range(len(mean_costs)), key=lambda j: mean_costs[j])]
    m = len(by_cost)
    if m <= max_models:
        return [list(c) for r in range(1, m + 1) for c in combinations(by_cost, r)]
    orders = {tuple(by_cost[:r]) for r in range(1, m + 1)} | set(combinations(by_cost, 2))
    return [list(o) for o in sorted(orders)]


# -- results ------------------------------------------------------------------------------------------------


@dataclass
class CostRouterResult:
    name: str
    kind: CostKind
    description: str
    points: list[tuple[float, float]]
    hull: list[tuple[float, float]]
    aiq: float
    aiq_ci: tuple[float, float] | None
    best_quality: float
    cost_to_best_single: float
    seconds: float = 0.0

    def as_dict(self, *, curves: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "router": self.name,
            "kind": self.kind,
            "description": self.description,
            "aiq": self.aiq,
            "aiq_ci": list(self.aiq_ci) if self.aiq_ci else None,
            "best_quality": self.best_quality,
            "cost_to_best_single": None if math.isnan(self.cost_to_best_single) else self.cost_to_best_single,
            "seconds": round(self.seconds, 3),
        }
        if curves:
            out["hull"] = [[c, q] for c, q in self.hull]
            out["points"] = [[c, q] for c, q in self.points]
        return out


@dataclass
class CostReport:
    name: str
    split: Split
    data: dict[str, Any]
    singles: list[tuple[str, float, float]]
    cost_range: tuple[float, float]
    results: list[CostRouterResult]
    folds: int
    bootstrap: int
    seed: int
    features: str
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def best_single(self) -> tuple[str, float, float]:
        return max(self.singles, key=lambda s: (s[2], -s[1]))

    def as_dict(self, *, curves: bool = False) -> dict[str, Any]:
        return {
            "name": self.name,
            "split": self.split,
            "data": self.data,
            "features": self.features,
            "single_models": [{"model": m, "cost_usd": c, "quality": q} for m, c, q in self.singles],
            "cost_range": list(self.cost_range),
            "folds": self.folds,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "routers": [r.as_dict(curves=curves) for r in self.results],
            "skipped": self.skipped,
        }


def _summarise(
    spec: CostRouterSpec,
    S: np.ndarray,
    C: np.ndarray,
    matrix: OutcomeMatrix,
    bootstrap: int,
    seed: int,
    started: float,
) -> CostRouterResult:
    """Operating points from per-prompt quality ``S`` and cost ``C`` (one row per operating point)."""
    import numpy as np

    scores, costs = matrix.scores, matrix.costs
    cheapest = int(np.argmin(costs.mean(axis=0)))
    # Every router may fall back to "always the cheapest model", which needs no router.
    S = np.vstack([S, scores[:, cheapest]])
    C = np.vstack([C, costs[:, cheapest]])
    qs, cs = S.mean(axis=1), C.mean(axis=1)
    hc, hq = nondecreasing_hull(cs, qs)
    single_c, single_q = costs.mean(axis=0), scores.mean(axis=0)
    lo, hi = float(single_c.min()), float(single_c.max())
    aiq = area_under_hull(hc, hq, lo, hi)
    ci = None
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        n = S.shape[1]
        values = []
        for start in range(0, bootstrap, 100):
            m = min(100, bootstrap - start)
            counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(m)]).astype(
                float
            )
            bq, bc = counts @ S.T / n, counts @ C.T / n
            sc = counts @ costs / n
            for b in range(m):
                h = nondecreasing_hull(bc[b], bq[b])
                values.append(area_under_hull(*h, float(sc[b].min()), float(sc[b].max())))
        ci = (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
    target = float(single_q.max())
    return CostRouterResult(
        spec.name,
        spec.kind,
        spec.description,
        points=[(float(c), float(q)) for c, q in zip(cs, qs, strict=True)],
        hull=list(zip(hc, hq, strict=True)),
        aiq=aiq,
        aiq_ci=ci,
        best_quality=float(hq[-1]),
        cost_to_best_single=cost_to_reach(hc, hq, target),
        seconds=time.perf_counter() - started,
    )


def evaluate_outcomes(
    matrix: OutcomeMatrix,
    *,
    routers: Sequence[str] = DEFAULT_COST_ROUTERS,
    split: Split = "in-domain",
    embeddings: np.ndarray | None = None,
    folds: int = 5,
    bootstrap: int = 1000,
    seed: int = 0,
    accept_threshold: float | None = None,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> CostReport:
    """Quality–cost curves, AIQ with bootstrap CIs and the cost to match the best single model, per router.

    Predictive routers are scored on held-out prompts only (``split``); the cascade accepts a model's answer
    when its recorded score reaches ``accept_threshold`` (default 0.5 for 0/1 scores, else the midpoint of the
    score range).
    """
    import numpy as np

    unknown = [r for r in routers if r not in COST_ROUTERS]
    if unknown:
        raise EvalError(
            f"unknown router(s) {unknown}; expected some of {list(COST_ROUTERS)}", location="--routers"
        )
    if split not in SPLITS:
        raise EvalError(f"unknown split {split!r}; expected one of {list(SPLITS)}", location="--split")
    if embeddings is not None and len(embeddings) != len(matrix):
        raise EvalError(f"{len(embeddings)} embeddings for {len(matrix)} prompts", location="embeddings")
    scores, costs = matrix.scores, matrix.costs
    n = len(matrix)
    if n < 2:
        raise EvalError("need at least two prompts", location=matrix.source)
    skipped: dict[str, str] = {}
    splits: list[tuple[np.ndarray, np.ndarray]] = []
    if any(COST_ROUTERS[r].kind == "predictive" for r in routers):
        if split == "cross-domain" and len(set(matrix.domains)) < 2:
            for r in routers:
                if COST_ROUTERS[r].kind == "predictive":
                    skipped[r] = "cross-domain needs at least two domains (benchmarks); the data has one"
        else:
            splits = _splits(matrix, split, folds, seed)
    lambdas = lambda_grid(costs)
    binary = matrix.binary
    if accept_threshold is None:
        accept_threshold = 0.5 if binary else float(scores.min() + scores.max()) / 2
    rows = np.arange(n)
    build = _features(matrix, embeddings) if splits else None
    predictions: dict[str, np.ndarray] = {}
    results: list[CostRouterResult] = []
    for r in routers:
        spec = COST_ROUTERS[r]
        if r in skipped:
            continue
        if progress:
            progress(f"{name or matrix.source} ({split}): {r}")
        started = time.perf_counter()
        if spec.kind == "baseline":
            # One operating point per model; the hull of those is what random mixing reaches.
            S, C = scores.T.copy(), costs.T.copy()
        elif spec.kind == "oracle":
            choice = _choose(scores, costs, lambdas)
            S, C = scores[rows, choice], costs[rows, choice]
        elif spec.kind == "cascade":
            outs = [
                cascade_outcomes(scores, costs, order, accept_threshold)
                for order in _cascade_orders(costs.mean(axis=0))
            ]
            S = np.stack([q for q, _ in outs])
            C = np.stack([c for _, c in outs])
        else:
            assert build is not None
            predicted = np.full(scores.shape, np.nan)
            expected_cost = np.full(costs.shape, np.nan)
            with single_threaded_blas():
                for train, test in splits:
                    X = build(train, test)
                    if r == "knn":
                        predicted[test] = _knn_predict(X, scores, train, test)
                    elif r == "linear":
                        predicted[test] = _linear_predict(X, scores, train, test, binary, seed)
                    else:
                        predicted[test] = _mlp_predict(X, scores, train, test, seed)
                    # What a model costs is learned from the training prompts too (its mean there).
                    expected_cost[test] = costs[train].mean(axis=0)
            predictions[r] = predicted
            choice = _choose(predicted, expected_cost, lambdas)
            S, C = scores[rows, choice], costs[rows, choice]
        results.append(_summarise(spec, S, C, matrix, bootstrap, seed, started))
    single_c, single_q = costs.mean(axis=0), scores.mean(axis=0)
    return CostReport(
        name=name or matrix.source,
        split=split,
        data=matrix.summary(),
        singles=[(m, float(single_c[j]), float(single_q[j])) for j, m in enumerate(matrix.models)],
        cost_range=(float(single_c.min()), float(single_c.max())),
        results=results,
        folds=len(splits) if splits else 0,
        bootstrap=bootstrap,
        seed=seed,
        features="prompt embeddings"
        if embeddings is not None
        else "lexical (hashed n-grams + prompt statistics)",
        skipped=skipped,
    )
