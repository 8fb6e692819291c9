"""``route eval``: every router scored on held-out queries of RouteLLM's recorded data.

Learned routers are trained and scored with seeded k-fold cross-validation on the benchmark itself
(in-domain), unlike RouteLLM's published routers, which were trained on Chatbot Arena data: a report says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from promptkit.errors import EvalError
from promptkit.evals.routing._answer import ANSWER_FEATURES, answer_feature_vector, heuristic_risk
from promptkit.evals.routing._cv import cross_val_scores, single_threaded_blas
from promptkit.evals.routing._metrics import (
    RouterMetrics,
    bootstrap_metrics,
    oracle_curve,
    random_scores,
    routing_curve,
)
from promptkit.evals.routing._routellm import RouteLLMData
from promptkit.routing.learned._learners import KNNModel, LogisticModel, MLPModel, RidgeModel
from promptkit.routing.learned._lexical import LexicalFeaturizer

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ROUTERS",
    "DEFAULT_ROUTERS",
    "REFERENCE",
    "IN_DOMAIN_NOTE",
    "RouterSpec",
    "RouterResult",
    "BenchmarkReport",
    "evaluate_benchmark",
    "answer_matrix",
]

RouterKind = Literal["baseline", "oracle", "prompt", "cascade"]

IN_DOMAIN_NOTE = (
    "Learned routers here are trained in-domain: 5-fold cross-validation on the benchmark's own queries (every "
    "figure is on held-out queries). RouteLLM's published routers were trained on Chatbot Arena preference data "
    "and evaluated out-of-domain, so the comparison favours ours. Cascades also read the weak model's answer, "
    "which a prompt-only router never sees, and pay for that weak call on every query."
)

# arXiv 2406.18665 v4, Tables 1-3: the best published router per benchmark (CPT as a share of calls).
REFERENCE: dict[str, dict[str, Any]] = {
    "mt_bench": {"router": "RouteLLM MF", "apgr": 0.802, "cpt_50": 0.1340, "cpt_80": 0.3131},
    "mmlu": {"router": "RouteLLM SW ranking", "apgr": 0.603, "cpt_50": 0.3540},
    "gsm8k": {"router": "RouteLLM causal LLM", "apgr": 0.622, "cpt_50": 0.3364},
}


@dataclass(frozen=True)
class RouterSpec:
    name: str
    kind: RouterKind
    description: str
    needs_embeddings: bool = False
    needs_answers: bool = False


ROUTERS: dict[str, RouterSpec] = {
    spec.name: spec
    for spec in (
        RouterSpec("random", "baseline", "uniform random scores (seeded); APGR about 0.5"),
        RouterSpec(
            "always-weak", "baseline", "every query to the weak model (an operating point, not a curve)"
        ),
        RouterSpec("always-strong", "baseline", "every query to the strong model (an operating point)"),
        RouterSpec("oracle", "oracle", "knows both outcomes: the upper bound"),
        RouterSpec(
            "knn", "prompt", "k nearest neighbours on MiniLM prompt embeddings", needs_embeddings=True
        ),
        RouterSpec(
            "logreg",
            "prompt",
            "logistic regression on MiniLM embeddings (ridge on the grade gap when graded)",
            needs_embeddings=True,
        ),
        RouterSpec(
            "mlp", "prompt", "one-hidden-layer MLP on MiniLM embeddings (scikit-learn)", needs_embeddings=True
        ),
        RouterSpec(
            "lexical-logreg",
            "prompt",
            "logistic regression on hashed TF-IDF words/char-trigrams + prompt statistics (no embedding model)",
        ),
        RouterSpec(
            "lexical-knn", "prompt", "k nearest neighbours on the lexical features (no embedding model)"
        ),
        RouterSpec(
            "cascade-heuristic",
            "cascade",
            "fixed-weight risk score of the weak answer, no training",
            needs_answers=True,
        ),
        RouterSpec("cascade", "cascade", "the logreg router on weak-answer features", needs_answers=True),
        RouterSpec(
            "cascade+prompt",
            "cascade",
            "the logreg router on weak-answer features + MiniLM prompt embeddings",
            needs_embeddings=True,
            needs_answers=True,
        ),
    )
}
DEFAULT_ROUTERS: tuple[str, ...] = tuple(ROUTERS)


@dataclass
class RouterResult:
    name: str
    kind: RouterKind
    description: str
    metrics: RouterMetrics | None
    strong_share: float | None = None  # for fixed policies
    quality: float | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"router": self.name, "kind": self.kind, "description": self.description}
        if self.metrics is not None:
            out.update(self.metrics.as_dict())
        else:
            out.update({"apgr": None, "strong_share": self.strong_share, "quality": self.quality})
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class BenchmarkReport:
    benchmark: str
    data: dict[str, Any]
    results: list[RouterResult]
    folds: int
    bootstrap: int
    seed: int
    reference: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    note: str = IN_DOMAIN_NOTE

    def as_dict(self, *, curves: bool = False) -> dict[str, Any]:
        routers = []
        for r in self.results:
            row = r.as_dict()
            if curves:
                row["curve"] = [[round(s, 4), round(q, 5)] for s, q in r.curve]
            routers.append(row)
        return {
            "benchmark": self.benchmark,
            "data": self.data,
            "folds": self.folds,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "reference": self.reference,
            "routers": routers,
            "skipped": self.skipped,
            "note": self.note,
        }

    def best(self, kinds: Sequence[RouterKind] = ("prompt", "cascade")) -> RouterResult | None:
        ranked = [r for r in self.results if r.kind in kinds and r.metrics is not None]
        return max(ranked, key=lambda r: r.metrics.apgr) if ranked else None  # type: ignore[union-attr]


def answer_matrix(data: RouteLLMData) -> np.ndarray:
    """The weak-answer feature matrix (``ANSWER_FEATURES`` columns) for every query."""
    import numpy as np

    if data.weak_answers is None:
        raise EvalError(
            f"{data.benchmark} has no weak-model answers for a cascade", location=str(data.source)
        )
    rows = [answer_feature_vector(a, q) for a, q in zip(data.weak_answers, data.prompts, strict=True)]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(ANSWER_FEATURES))


def _gain(data: RouteLLMData) -> np.ndarray:
    """What the routers rank by: the strong model's quality minus the weak one's (RouteLLM's objective)."""
    return data.strong - data.weak


def _curve_points(curve: Any, points: int = 101) -> list[tuple[float, float]]:
    import numpy as np

    grid = np.linspace(0.0, 1.0, points)
    return [
        (float(s), float(q)) for s, q in zip(grid, np.interp(grid, curve.share, curve.quality), strict=True)
    ]


def _probability(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    import numpy as np

    if len(np.unique(y[train])) < 2:  # one outcome in this fold: its rate is the whole model
        return np.full(len(test), float(y[train].mean()))
    return LogisticModel(seed=seed).fit(X[train], y[train]).predict(X[test])


def _learned(
    name: str, X: np.ndarray, data: RouteLLMData, seed: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A fold's fit-and-score: expected gain of the strong model. Binary data: logistic regression gives
    P(strong right) - P(weak right) (measured on GSM8K prompt embeddings: APGR 0.635, against 0.597 for
    P(weak fails) alone, since queries both models miss are not worth a strong call); kNN and the MLP
    regress the gain directly; graded data (MT-Bench): ridge/kNN/MLP on the grade gap."""
    gain = _gain(data)

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        if name == "knn":
            return KNNModel().fit(X[train], gain[train]).predict(X[test])
        if name == "mlp":
            return MLPModel(graded=True, seed=seed).fit(X[train], gain[train]).predict(X[test])
        if data.graded:
            return RidgeModel(seed=seed).fit(X[train], gain[train]).predict(X[test])
        return _probability(X, data.strong, train, test, seed) - _probability(X, data.weak, train, test, seed)

    return fit_predict


def _lexical(name: str, data: RouteLLMData, seed: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Like ``_learned`` on lexical features, whose IDF and statistics scaling are fitted on each training
    fold only (the held-out queries' words never shape their own features)."""
    featurizer = LexicalFeaturizer()
    counts, stats = featurizer.raw(data.prompts)
    base = name.removeprefix("lexical-")

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        import numpy as np

        featurizer.fit_raw(counts[train], stats[train])
        X = np.empty((len(data), featurizer.width))
        X[train] = featurizer.apply_raw(counts[train], stats[train])
        X[test] = featurizer.apply_raw(counts[test], stats[test])
        return _learned(base, X, data, seed)(train, test)

    return fit_predict


def evaluate_benchmark(
    data: RouteLLMData,
    *,
    routers: Sequence[str] = DEFAULT_ROUTERS,
    embeddings: np.ndarray | None = None,
    folds: int = 5,
    bootstrap: int = 1000,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> BenchmarkReport:
    """Score each router on held-out queries and compute APGR/CPT with bootstrap CIs.

    Routers that need what the data lacks (embeddings not given; no weak answers, as on MMLU) are listed in
    ``skipped`` with the reason, never silently dropped.
    """
    import time

    import numpy as np

    unknown = [r for r in routers if r not in ROUTERS]
    if unknown:
        raise EvalError(
            f"unknown router(s) {unknown}; expected some of {list(ROUTERS)}", location="--routers"
        )
    n = len(data)
    if embeddings is not None and len(embeddings) != n:
        raise EvalError(f"{len(embeddings)} embeddings for {n} queries", location="embeddings")
    w, s = data.weak, data.strong
    answers: np.ndarray | None = None
    results: list[RouterResult] = []
    skipped: dict[str, str] = {}
    for name in routers:
        spec = ROUTERS[name]
        if spec.needs_answers and data.weak_answers is None:
            skipped[name] = f"{data.benchmark} records no weak-model answer text"
            continue
        if spec.needs_embeddings and embeddings is None:
            skipped[name] = "no prompt embeddings (the MiniLM embedder is unavailable)"
            continue
        if progress:
            progress(f"{data.benchmark}: {name}")
        started = time.perf_counter()
        if name in ("always-weak", "always-strong"):
            strong_side = name == "always-strong"
            results.append(
                RouterResult(
                    name,
                    spec.kind,
                    spec.description,
                    None,
                    strong_share=1.0 if strong_side else 0.0,
                    quality=float(s.mean() if strong_side else w.mean()),
                    seconds=time.perf_counter() - started,
                )
            )
            continue
        if name == "oracle":
            metrics = bootstrap_metrics(np.zeros(n), w, s, n_boot=bootstrap, seed=seed, oracle=True)
            curve = oracle_curve(w, s)
        else:
            if name == "random":
                scores = random_scores(n, seed)
            elif name == "cascade-heuristic":
                assert data.weak_answers is not None
                scores = np.asarray(
                    [heuristic_risk(a, q) for a, q in zip(data.weak_answers, data.prompts, strict=True)]
                )
            elif name.startswith("lexical-"):
                with single_threaded_blas():
                    scores, _ = cross_val_scores(_lexical(name, data, seed), n, k=folds, seed=seed)
            else:
                if spec.needs_answers and answers is None:
                    answers = answer_matrix(data)
                if name == "cascade":
                    X = answers
                elif name == "cascade+prompt":
                    X = np.hstack([embeddings, answers])  # type: ignore[list-item]
                else:
                    X = embeddings
                assert X is not None
                with single_threaded_blas():
                    scores, _ = cross_val_scores(_learned(name, X, data, seed), n, k=folds, seed=seed)
            metrics = bootstrap_metrics(scores, w, s, n_boot=bootstrap, seed=seed)
            curve = routing_curve(scores, w, s)
        results.append(
            RouterResult(
                name,
                spec.kind,
                spec.description,
                metrics,
                curve=_curve_points(curve),
                seconds=time.perf_counter() - started,
            )
        )
    return BenchmarkReport(
        benchmark=data.benchmark,
        data=data.summary(),
        results=results,
        folds=folds,
        bootstrap=bootstrap,
        seed=seed,
        reference=REFERENCE.get(data.benchmark, {}),
        skipped=skipped,
    )
