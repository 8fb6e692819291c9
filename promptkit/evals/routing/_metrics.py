"""RouteLLM's routing metrics, computed exactly on the full curve.

A router gives each query a score (higher = more in need of the strong model). Sending the top-scored share
``s`` of queries to the strong model gives quality ``q(s)``; ``PGR(s) = (q(s) - q_weak) / (q_strong - q_weak)``.
The curve is computed at every query (not 10 quantile bins), and tied scores are served together: within a
tie the curve is the straight line between its ends, which is the expectation over random tie-breaking, so a
constant-score router traces the diagonal (APGR 0.5) instead of an arbitrary order.

APGR is the area under PGR over s in [0, 1] (trapezoids on the breakpoints: exact for this piecewise-linear
curve), which is RouteLLM's (AUC - AUC_weak) / (AUC_strong - AUC_weak) over the full range.
CPT(x) is the smallest strong share whose PGR reaches x (linear between breakpoints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CPT_LEVELS",
    "RoutingCurve",
    "RouterMetrics",
    "routing_curve",
    "apgr",
    "cpt",
    "oracle_curve",
    "random_scores",
    "evaluate_scores",
    "bootstrap_metrics",
]

CPT_LEVELS: tuple[float, ...] = (0.2, 0.5, 0.8)


@dataclass(frozen=True)
class RoutingCurve:
    """Breakpoints of the quality-vs-strong-share curve: ``share`` rises from 0 to 1."""

    share: np.ndarray
    quality: np.ndarray
    pgr: np.ndarray
    weak_quality: float
    strong_quality: float

    def quality_at(self, share: float) -> float:
        import numpy as np

        return float(np.interp(share, self.share, self.quality))


def _groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order (highest score first, stable) and the start index of each run of tied scores in that order."""
    import numpy as np

    order = np.argsort(-scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return order, starts


def _check(scores: Any, weak: Any, strong: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    from promptkit.errors import EvalError

    s, w, t = (np.asarray(x, dtype=np.float64) for x in (scores, weak, strong))
    if not (s.ndim == w.ndim == t.ndim == 1 and len(s) == len(w) == len(t)):
        raise EvalError(
            f"scores, weak and strong must be 1-D and the same length, got {s.shape}, {w.shape}, {t.shape}",
            location="routing metrics",
        )
    if len(s) == 0:
        raise EvalError("no queries to evaluate", location="routing metrics")
    if np.isnan(s).any():
        raise EvalError("router scores contain NaN", location="routing metrics")
    return s, w, t


def routing_curve(scores: Any, weak: Any, strong: Any) -> RoutingCurve:
    """The curve for routing the highest-scored queries to the strong model first."""
    import numpy as np

    s, w, t = _check(scores, weak, strong)
    n = len(s)
    order, starts = _groups(s)
    gain = (t - w)[order]
    # Cumulative gain at the end of each tie group; the curve is linear inside a group.
    ends = np.r_[starts[1:], n]
    cum = np.r_[0.0, np.cumsum(gain)[ends - 1]]
    share = np.r_[0.0, ends / n]
    weak_q, strong_q = float(w.mean()), float(t.mean())
    quality = weak_q + cum / n
    total = strong_q - weak_q
    pgr = (quality - weak_q) / total if total != 0 else np.full_like(quality, np.nan)
    return RoutingCurve(share, quality, pgr, weak_q, strong_q)


def apgr(curve: RoutingCurve) -> float:
    """Area under PGR over the strong share from 0 to 1."""
    import numpy as np

    return float(np.trapezoid(curve.pgr, curve.share))


def cpt(curve: RoutingCurve, level: float) -> float:
    """Smallest strong-call share (0..1) at which PGR reaches ``level``; NaN if it never does."""
    import numpy as np

    pgr, share = curve.pgr, curve.share
    hit = np.flatnonzero(pgr >= level - 1e-12)
    if len(hit) == 0:
        return float("nan")
    i = int(hit[0])
    if i == 0:
        return 0.0
    p0, p1 = pgr[i - 1], pgr[i]
    frac = (level - p0) / (p1 - p0) if p1 != p0 else 1.0
    return float(share[i - 1] + frac * (share[i] - share[i - 1]))


def oracle_curve(weak: Any, strong: Any) -> RoutingCurve:
    """The best any router can do: queries with the largest strong-over-weak gain first, and never a query
    where the strong model is worse (at shares past the last positive gain the oracle keeps its best quality)."""
    import numpy as np

    w, t = np.asarray(weak, dtype=np.float64), np.asarray(strong, dtype=np.float64)
    gain = t - w
    # A unique score per query in gain order; non-positive gains get the lowest scores so they come last...
    curve = routing_curve(gain + np.linspace(0, 1e-9, len(gain))[::-1], w, t)
    # ...and the oracle may decline them: quality never drops as the allowed share grows.
    quality = np.maximum.accumulate(curve.quality)
    total = curve.strong_quality - curve.weak_quality
    pgr = (quality - curve.weak_quality) / total if total != 0 else np.full_like(quality, np.nan)
    return RoutingCurve(curve.share, quality, pgr, curve.weak_quality, curve.strong_quality)


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    import numpy as np

    return np.random.default_rng(seed).random(n)


@dataclass
class RouterMetrics:
    """APGR and CPTs (shares in 0..1) of one router, with bootstrap percentile intervals when computed."""

    apgr: float
    cpt: dict[float, float]
    apgr_ci: tuple[float, float] | None = None
    cpt_ci: dict[float, tuple[float, float]] = field(default_factory=dict)
    quality_weak: float = 0.0
    quality_strong: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        def pct(level: float) -> str:
            return f"cpt_{int(round(level * 100))}"

        out: dict[str, Any] = {"apgr": _finite(self.apgr)}
        out["apgr_ci"] = [_finite(x) for x in self.apgr_ci] if self.apgr_ci else None
        for level, value in self.cpt.items():
            out[pct(level)] = _finite(value)
            ci = self.cpt_ci.get(level)
            out[pct(level) + "_ci"] = [_finite(x) for x in ci] if ci else None
        out["quality_weak"] = self.quality_weak
        out["quality_strong"] = self.quality_strong
        return out


def _finite(value: float) -> float | None:
    import math

    return None if value is None or math.isnan(value) else float(value)


def evaluate_scores(
    scores: Any, weak: Any, strong: Any, levels: tuple[float, ...] = CPT_LEVELS
) -> RouterMetrics:
    curve = routing_curve(scores, weak, strong)
    return RouterMetrics(
        apgr=apgr(curve),
        cpt={lv: cpt(curve, lv) for lv in levels},
        quality_weak=curve.weak_quality,
        quality_strong=curve.strong_quality,
    )


def bootstrap_metrics(
    scores: Any,
    weak: Any,
    strong: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    levels: tuple[float, ...] = CPT_LEVELS,
    confidence: float = 0.95,
    oracle: bool = False,
) -> RouterMetrics:
    """Point estimates plus percentile CIs from resampling queries with replacement.

    Each resample reweights queries by how often they were drawn; the score order (and tie groups) does not
    change, so the curve of a resample is the weighted cumulative gain along the same order: one sort in all.
    ``oracle=True`` evaluates the oracle (re-ranked per resample is unnecessary: the gain order is the same).
    """
    import numpy as np

    s, w, t = _check(scores, weak, strong)
    if oracle:
        point_curve = oracle_curve(w, t)
        point = RouterMetrics(
            apgr(point_curve),
            {lv: cpt(point_curve, lv) for lv in levels},
            quality_weak=point_curve.weak_quality,
            quality_strong=point_curve.strong_quality,
        )
        s = (t - w) + np.linspace(0, 1e-9, len(w))[::-1]
    else:
        point = evaluate_scores(s, w, t, levels)
    if n_boot <= 0:
        return point
    n = len(s)
    order, starts = _groups(s)
    gain = (t - w)[order]
    rng = np.random.default_rng(seed)
    apgrs: list[np.ndarray] = []
    cpts: dict[float, list[np.ndarray]] = {lv: [] for lv in levels}
    chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))
    done = 0
    while done < n_boot:
        m = min(chunk, n_boot - done)
        draws = rng.integers(0, n, size=(m, n))
        offsets = (np.arange(m) * n)[:, None]
        counts = (
            np.bincount((draws + offsets).ravel(), minlength=m * n).reshape(m, n)[:, order].astype(np.float64)
        )
        gw = np.add.reduceat(counts * gain, starts, axis=1)
        cw = np.add.reduceat(counts, starts, axis=1)
        share = np.concatenate([np.zeros((m, 1)), np.cumsum(cw, axis=1) / n], axis=1)
        cum = np.concatenate([np.zeros((m, 1)), np.cumsum(gw, axis=1) / n], axis=1)
        total = cum[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            pgr = np.where(total != 0, cum / total, np.nan)
        if oracle:
            pgr = np.maximum.accumulate(np.nan_to_num(pgr, nan=-np.inf), axis=1)
            pgr[~np.isfinite(pgr)] = np.nan
        apgrs.append(np.trapezoid(pgr, share, axis=1))
        for lv in levels:
            cpts[lv].append(_cpt_rows(pgr, share, lv))
        done += m
    lo, hi = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    all_apgr = np.concatenate(apgrs)
    point.apgr_ci = _ci(all_apgr, lo, hi)
    point.cpt_ci = {lv: _ci(np.concatenate(v), lo, hi) for lv, v in cpts.items()}
    return point


def _ci(values: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    import numpy as np

    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return (float("nan"), float("nan"))
    # A resample where the level is never reached counts as needing every call.
    filled = np.where(np.isfinite(values), values, 1.0)
    return (float(np.percentile(filled, lo)), float(np.percentile(filled, hi)))


def _cpt_rows(pgr: np.ndarray, share: np.ndarray, level: float) -> np.ndarray:
    import numpy as np

    reached = pgr >= level - 1e-12
    any_hit = reached.any(axis=1)
    i = np.argmax(reached, axis=1)
    rows = np.arange(len(pgr))
    prev = np.maximum(i - 1, 0)
    p0, p1 = pgr[rows, prev], pgr[rows, i]
    s0, s1 = share[rows, prev], share[rows, i]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(p1 != p0, (level - p0) / (p1 - p0), 1.0)
    out = np.where(i == 0, 0.0, s0 + frac * (s1 - s0))
    return np.where(any_hit, out, np.nan)
