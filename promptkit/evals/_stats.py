"""Paired statistics for prompt A/B evals: intervals, tests, multiplicity, flakiness and sample size.

Every function here is pure: arrays in, small frozen results out, no I/O. Variants are always compared
on the *same* items, so everything is paired: ``a[i]`` and ``b[i]`` are the scores of variants A and B
on item ``i``. Differences are always ``b - a`` (positive means B is better).

numpy and scipy are imported inside the functions so that importing promptkit stays light.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from statistics import NormalDist
from typing import TYPE_CHECKING, Literal

from promptkit.errors import EvalError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "BootstrapCI",
    "McNemarResult",
    "WilcoxonResult",
    "HolmResult",
    "Comparison",
    "paired_bootstrap",
    "mcnemar_exact",
    "wilcoxon_signed_rank",
    "holm",
    "flip_rate",
    "per_item_majority",
    "required_pairs_mcnemar",
    "power_mcnemar",
    "required_pairs_paired_mean",
    "power_paired_mean",
    "compare_paired",
    "compare_many",
]

Kind = Literal["binary", "graded"]

_NORMAL = NormalDist()
# Largest bootstrap block (resamples x items) held in memory at once.
_BLOCK_CELLS = 2_000_000
# Above this many non-zero pairs the exact signed-rank distribution is not worth its cost.
_EXACT_WILCOXON_AUTO_MAX = 50
_EXACT_WILCOXON_MAX = 300
# Wilcoxon's asymptotic relative efficiency against the paired t-test for normal differences.
_WILCOXON_ARE = 3.0 / math.pi
_SIZING_POWER = 0.8


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class BootstrapCI:
    """A bootstrap confidence interval for ``statistic(b - a)``.

    ``method`` is the interval actually used: ``"bca"`` falls back to ``"percentile"`` when the bias
    correction is undefined (every resample on one side of the estimate), and both collapse to
    ``"degenerate"`` when every paired difference is the same number.
    """

    diff: float
    low: float
    high: float
    confidence: float
    n: int
    method: Literal["bca", "percentile", "degenerate"] = "bca"
    statistic: Literal["mean", "median"] = "mean"
    n_resamples: int = 0


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """Exact McNemar test. ``b01``: items A failed and B passed; ``b10``: A passed and B failed.

    ``statistic`` is ``min(b01, b10)``, the binomial count the exact test is computed from.
    """

    b01: int
    b10: int
    p_value: float
    statistic: int

    @property
    def n_discordant(self) -> int:
        return self.b01 + self.b10


@dataclass(frozen=True, slots=True)
class WilcoxonResult:
    """Wilcoxon signed-rank test on ``b - a``.

    ``statistic`` is ``min(w_plus, w_minus)`` (as scipy reports for the two-sided test); ``w_plus`` is
    the rank sum of the items where B scored higher. ``method`` is ``"exact"`` or ``"normal"``.
    """

    statistic: float
    p_value: float
    n_nonzero: int
    method: Literal["exact", "normal"]
    w_plus: float = 0.0
    w_minus: float = 0.0
    zero_method: Literal["wilcox"] = "wilcox"


@dataclass(frozen=True, slots=True)
class HolmResult:
    """One hypothesis after Holm–Bonferroni: its raw ``p``, the ``adjusted_p`` and whether it is rejected."""

    p: float
    adjusted_p: float
    reject: bool


@dataclass(frozen=True, slots=True)
class Comparison:
    """The evidence and the decision for one pair of variants, A (``name_a``) against B (``name_b``).

    ``diff`` is ``mean(b) - mean(a)``; ``ci`` its bootstrap interval. ``p_value`` is the paired test's own
    p-value and ``adjusted_p`` the one the decision used (Holm-adjusted inside :func:`compare_many`, the
    same number otherwise). ``winner`` is ``"a"``, ``"b"`` or ``None``; ``needed_items`` is, when the
    result is not significant, about how many paired items would detect the observed effect with 80%
    power (``None`` when there is no observed effect to size).
    """

    name_a: str
    name_b: str
    kind: Kind
    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci: BootstrapCI
    test: McNemarResult | WilcoxonResult
    p_value: float
    adjusted_p: float
    alpha: float
    significant: bool
    winner: Literal["a", "b"] | None
    needed_items: int | None
    verdict: str

    @property
    def test_name(self) -> str:
        return "McNemar" if isinstance(self.test, McNemarResult) else "Wilcoxon"

    @property
    def winner_name(self) -> str | None:
        if self.winner is None:
            return None
        return self.name_a if self.winner == "a" else self.name_b


# ------------------------------------------------------------------------------------------- validation


def _vector(values: npt.ArrayLike, name: str, where: str) -> np.ndarray:
    import numpy as np

    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise EvalError(f"{name} must be numbers: {exc}", location=where) from None
    if array.ndim != 1:
        raise EvalError(f"{name} must be one score per item (1-D), got shape {array.shape}", location=where)
    if array.size == 0:
        raise EvalError(f"{name} is empty: there are no items to compare", location=where)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise EvalError(f"{name}[{bad[0]}] is {array[bad[0]]}; every score must be finite", location=where)
    return array


def _pair(a: npt.ArrayLike, b: npt.ArrayLike, where: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _vector(a, "a", where), _vector(b, "b", where)
    if x.size != y.size:
        raise EvalError(
            f"a has {x.size} items but b has {y.size}; paired statistics need the same items", location=where
        )
    return x, y


def _check_binary(array: np.ndarray, name: str, where: str) -> None:
    import numpy as np

    bad = np.flatnonzero((array != 0) & (array != 1))
    if bad.size:
        raise EvalError(
            f"{name}[{bad[0]}] is {array.flat[bad[0]]}; binary outcomes must be pass/fail (0/1)",
            location=where,
        )


def _probability(value: float, name: str, where: str, *, open_interval: bool = True) -> float:
    number = float(value)
    ok = 0.0 < number < 1.0 if open_interval else 0.0 <= number <= 1.0
    if not ok:
        bounds = "strictly between 0 and 1" if open_interval else "between 0 and 1"
        raise EvalError(f"{name} must be {bounds}, got {value!r}", location=where)
    return number


def _positive_int(value: int, name: str, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool):
        raise EvalError(f"{name} must be an integer, got {value!r}", location=where)
    try:
        number = operator.index(value)
    except TypeError:
        raise EvalError(f"{name} must be an integer, got {value!r}", location=where) from None
    if number < minimum:
        raise EvalError(f"{name} must be >= {minimum}, got {number}", location=where)
    return number


def _kind(kind: str, where: str) -> Kind:
    if kind not in ("binary", "graded"):
        raise EvalError(f"kind must be 'binary' or 'graded', got {kind!r}", location=where)
    return kind  # type: ignore[return-value]


def _z(quantile: float) -> float:
    return _NORMAL.inv_cdf(quantile)


# -------------------------------------------------------------------------------------------- bootstrap


def _jackknife(d: np.ndarray, statistic: str) -> np.ndarray:
    """Leave-one-out values of the statistic, in O(n) (O(n log n) for the median)."""
    import numpy as np

    n = d.size
    if statistic == "mean":
        return (d.sum() - d) / (n - 1)
    order = np.argsort(d, kind="stable")
    s = d[order]
    m = n - 1
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)

    # The j-th smallest of the n-1 values left when the item of sorted rank r is removed.
    def kth(j: int) -> np.ndarray:
        return s[np.where(j >= ranks, j + 1, j)]

    if m % 2:
        return kth(m // 2)
    return (kth(m // 2 - 1) + kth(m // 2)) / 2


def paired_bootstrap(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int | None = 0,
    statistic: Literal["mean", "median"] = "mean",
    method: Literal["bca", "percentile"] = "bca",
) -> BootstrapCI:
    """Paired bootstrap interval for ``statistic(b - a)``.

    Method: items are resampled with replacement (the same item indices for both variants, so the
    pairing and any item-difficulty correlation are kept), the statistic of the differences is computed
    on each of ``n_resamples`` resamples, and the interval is read off that distribution. ``"bca"``
    (default) is Efron's bias-corrected and accelerated interval, with the bias estimated from the share
    of resamples below the estimate (ties counted half, which matters for pass/fail data) and the
    acceleration from the jackknife; ``"percentile"`` is the plain percentile interval.

    Assumptions: items are independent draws from the population of interest; the interval is for that
    population's mean (or median) difference, not for these particular items. With very few items
    (roughly < 20) every bootstrap interval is too narrow. Deterministic for a given ``seed``.
    """
    import numpy as np

    where = "paired_bootstrap"
    x, y = _pair(a, b, where)
    n_resamples = _positive_int(n_resamples, "n_resamples", where)
    confidence = _probability(confidence, "confidence", where)
    if statistic not in ("mean", "median"):
        raise EvalError(f"statistic must be 'mean' or 'median', got {statistic!r}", location=where)
    if method not in ("bca", "percentile"):
        raise EvalError(f"method must be 'bca' or 'percentile', got {method!r}", location=where)
    reduce = np.mean if statistic == "mean" else np.median

    d = y - x
    n = d.size
    theta = float(reduce(d))
    if np.all(d == d[0]):
        return BootstrapCI(theta, theta, theta, confidence, n, "degenerate", statistic, n_resamples)

    rng = np.random.default_rng(seed)
    boot = np.empty(n_resamples)
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        boot[start:stop] = reduce(d[rng.integers(0, n, size=(stop - start, n))], axis=1)

    tail = (1.0 - confidence) / 2.0
    quantiles = [tail, 1.0 - tail]
    used: Literal["bca", "percentile"] = "percentile"
    if method == "bca":
        adjusted = _bca_quantiles(d, boot, theta, statistic, tail)
        if adjusted is not None:
            quantiles, used = adjusted, "bca"
    low, high = np.quantile(boot, quantiles)
    return BootstrapCI(theta, float(low), float(high), confidence, n, used, statistic, n_resamples)


def _bca_quantiles(
    d: np.ndarray, boot: np.ndarray, theta: float, statistic: str, tail: float
) -> list[float] | None:
    import numpy as np

    tol = 1e-12 * max(1.0, abs(theta))  # resample means can differ from theta by rounding alone
    below = np.count_nonzero(boot < theta - tol)
    equal = np.count_nonzero(np.abs(boot - theta) <= tol)
    share = (below + 0.5 * equal) / boot.size
    if not 0.0 < share < 1.0:
        return None
    z0 = _z(share)
    loo = _jackknife(d, statistic)
    u = loo.mean() - loo
    spread = float(np.sum(u**2))
    accel = float(np.sum(u**3)) / (6.0 * spread**1.5) if spread > 0 else 0.0
    out = []
    for q in (tail, 1.0 - tail):
        zq = z0 + _z(q)
        denominator = 1.0 - accel * zq
        if denominator <= 0:
            return None
        out.append(_NORMAL.cdf(z0 + zq / denominator))
    return out


# ------------------------------------------------------------------------------------------------ tests


def _mcnemar_p_values(b01: npt.ArrayLike, b10: npt.ArrayLike) -> np.ndarray:
    """Vectorised exact two-sided McNemar p-values."""
    import numpy as np
    from scipy.special import bdtr  # the binomial CDF as a bare ufunc: far cheaper than scipy.stats

    b01 = np.asarray(b01, dtype=np.int64)
    b10 = np.asarray(b10, dtype=np.int64)
    m = b01 + b10
    p = 2.0 * bdtr(np.minimum(b01, b10), np.maximum(m, 1), 0.5)
    return np.where(m == 0, 1.0, np.minimum(1.0, p))


def mcnemar_exact(a_pass: npt.ArrayLike, b_pass: npt.ArrayLike) -> McNemarResult:
    """Exact McNemar test for paired pass/fail outcomes.

    Method: only discordant items carry information. Under H0 (both variants have the same pass rate)
    each of the ``n = b01 + b10`` discordant items is equally likely to favour either variant, so
    ``b01 ~ Binomial(n, 1/2)`` and ``p = min(1, 2 * P(X <= min(b01, b10)))``. With no discordant items
    ``p = 1``. Assumes items are independent; the test is exact, hence somewhat conservative.
    """
    import numpy as np

    where = "mcnemar_exact"
    x, y = _pair(a_pass, b_pass, where)
    _check_binary(x, "a_pass", where)
    _check_binary(y, "b_pass", where)
    b01 = int(np.count_nonzero((x == 0) & (y == 1)))
    b10 = int(np.count_nonzero((x == 1) & (y == 0)))
    p = float(_mcnemar_p_values(b01, b10))
    return McNemarResult(b01=b01, b10=b10, p_value=p, statistic=min(b01, b10))


def _average_ranks(values: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Ranks 1..n with ties (values within ``tol``) sharing their average rank, and the tie-group sizes."""
    import numpy as np

    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.empty(values.size, dtype=bool)
    starts_group[0] = True
    starts_group[1:] = np.diff(ordered) > tol
    group = np.cumsum(starts_group) - 1
    sizes = np.bincount(group)
    ends = np.cumsum(sizes)
    average = (ends - sizes + 1 + ends) / 2.0
    ranks = np.empty(values.size)
    ranks[order] = average[group]
    return ranks, sizes


@lru_cache(maxsize=128)
def _signed_rank_null(weights: tuple[int, ...]) -> np.ndarray:
    """Null distribution of ``sum(w_i * s_i)`` with independent fair signs ``s_i`` in {0, 1}."""
    import numpy as np

    dist = np.zeros(sum(weights) + 1)
    dist[0] = 1.0
    for w in weights:
        half = 0.5 * dist
        half[w:] += 0.5 * dist[: dist.size - w]
        dist = half
    dist.setflags(write=False)
    return dist


def wilcoxon_signed_rank(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    method: Literal["auto", "exact", "normal"] = "auto",
    correction: bool = True,
) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test on the paired differences ``b - a``.

    Method: zero differences are dropped (Wilcox's method, not Pratt's), the remaining ``|d|`` are ranked
    with ties given their average rank, and ``W+`` is the rank sum of positive differences.
    ``"auto"`` uses the exact null distribution when at most 50 differences remain and none are tied,
    otherwise the normal approximation with the tie-corrected variance
    ``n(n+1)(2n+1)/24 - sum(t^3 - t)/48`` and (by default) a continuity correction of 1/2, which never
    pushes ``|W+ - mean|`` past zero. ``"exact"`` forces the exact distribution of ``W+`` given the
    observed (possibly tied) ranks, i.e. the exact sign-flip permutation test, for up to 300 pairs.

    Differences within ``1e-12`` of each other (relative to the scores' magnitude) count as tied and
    those that small count as zero, so floating-point noise in graded scores neither breaks ties nor
    invents effects. Assumes independent items and differences symmetric about their median under H0.
    """
    import numpy as np

    where = "wilcoxon_signed_rank"
    x, y = _pair(a, b, where)
    if method not in ("auto", "exact", "normal"):
        raise EvalError(f"method must be 'auto', 'exact' or 'normal', got {method!r}", location=where)
    tol = 1e-12 * max(1.0, float(np.max(np.abs(x))), float(np.max(np.abs(y))))
    d = y - x
    d = d[np.abs(d) > tol]
    n = int(d.size)
    if n == 0:
        return WilcoxonResult(0.0, 1.0, 0, "exact", 0.0, 0.0)

    ranks, ties = _average_ranks(np.abs(d), tol)
    w_plus = float(ranks[d > 0].sum())
    w_minus = n * (n + 1) / 2.0 - w_plus
    tied = bool(np.any(ties > 1))
    if method == "exact" and n > _EXACT_WILCOXON_MAX:
        raise EvalError(
            f"the exact signed-rank test is limited to {_EXACT_WILCOXON_MAX} non-zero pairs, got {n}; "
            "use method='normal' or 'auto'",
            location=where,
        )
    exact = method == "exact" or (method == "auto" and n <= _EXACT_WILCOXON_AUTO_MAX and not tied)

    if exact:
        # Ranks are multiples of 1/2, so doubled ranks are integers and the distribution is a lattice.
        doubled = np.rint(2 * ranks).astype(np.int64)
        dist = _signed_rank_null(tuple(sorted(doubled.tolist())))
        observed = int(round(2 * w_plus))
        p = 2.0 * min(float(dist[: observed + 1].sum()), float(dist[observed:].sum()))
        return WilcoxonResult(min(w_plus, w_minus), min(1.0, p), n, "exact", w_plus, w_minus)

    mean = n * (n + 1) / 4.0
    variance = n * (n + 1) * (2 * n + 1) / 24.0 - float(np.sum(ties.astype(float) ** 3 - ties)) / 48.0
    distance = abs(w_plus - mean)
    if correction:
        distance = max(distance - 0.5, 0.0)
    p = 1.0 if variance <= 0 else math.erfc(distance / math.sqrt(variance) / math.sqrt(2.0))
    return WilcoxonResult(min(w_plus, w_minus), min(1.0, p), n, "normal", w_plus, w_minus)


# ------------------------------------------------------------------------------------------ multiplicity


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[HolmResult]:
    """Holm–Bonferroni step-down adjustment, results in the input order.

    Method: sort the m p-values ascending; the i-th smallest (1-based) gets
    ``max_{j <= i} min(1, (m - j + 1) * p_(j))``, so adjusted p-values are monotone in the raw ones, and
    a hypothesis is rejected when its adjusted p-value is ``<= alpha``. This controls the family-wise
    error rate at ``alpha`` under any dependence and rejects everything Bonferroni does (and often more).
    """
    where = "holm"
    alpha = _probability(alpha, "alpha", where)
    ps: list[float] = []
    for i, value in enumerate(p_values):
        p = float(value)
        if not 0.0 <= p <= 1.0:  # also catches NaN
            raise EvalError(f"p_values[{i}] is {value!r}; p-values lie in [0, 1]", location=where)
        ps.append(p)
    m = len(ps)
    adjusted = [0.0] * m
    running = 0.0
    for step, i in enumerate(sorted(range(m), key=ps.__getitem__)):
        running = max(running, min(1.0, (m - step) * ps[i]))
        adjusted[i] = running
    return [HolmResult(p=p, adjusted_p=q, reject=q <= alpha) for p, q in zip(ps, adjusted, strict=True)]


# --------------------------------------------------------------------------------------------- flakiness


def _matrix(outcomes: npt.ArrayLike, where: str) -> np.ndarray:
    import numpy as np

    try:
        matrix = np.asarray(outcomes, dtype=float)
    except (TypeError, ValueError) as exc:
        raise EvalError(f"outcomes must be numbers: {exc}", location=where) from None
    if matrix.ndim != 2:
        raise EvalError(
            f"outcomes must be a 2-D [items, repeats] array, got shape {matrix.shape}", location=where
        )
    if matrix.shape[0] == 0:
        raise EvalError("outcomes has no items", location=where)
    if matrix.shape[1] < 2:
        raise EvalError(f"outcomes needs at least 2 repeats per item, got {matrix.shape[1]}", location=where)
    bad = np.argwhere(~np.isfinite(matrix))
    if bad.size:
        item, repeat = bad[0]
        raise EvalError(
            f"outcomes[{item}, {repeat}] is {matrix[item, repeat]}; must be finite", location=where
        )
    return matrix


def flip_rate(outcomes: npt.ArrayLike, *, spread: Literal["range", "std"] = "range") -> float:
    """How unstable outcomes are across repeated runs of the same items.

    ``outcomes`` is ``[items, repeats]``. With ``spread="range"`` (default) this is the mean over items of
    ``max - min`` across repeats: for pass/fail outcomes that is exactly the share of items whose outcome
    is not the same on every repeat, and for graded scores the average within-item range.
    ``spread="std"`` averages the within-item sample standard deviation (ddof=1) instead.
    """
    import numpy as np

    where = "flip_rate"
    matrix = _matrix(outcomes, where)
    if spread == "range":
        return float(np.mean(matrix.max(axis=1) - matrix.min(axis=1)))
    if spread == "std":
        return float(np.mean(matrix.std(axis=1, ddof=1)))
    raise EvalError(f"spread must be 'range' or 'std', got {spread!r}", location=where)


def per_item_majority(outcomes: npt.ArrayLike, *, ties: Literal["fail", "pass"] = "fail") -> np.ndarray:
    """Majority vote per item over repeated pass/fail runs (``[items, repeats]`` -> ``bool[items]``).

    An item passes when more than half of its repeats pass; an exact tie (even repeat count) counts as a
    fail by default, the conservative choice, or as a pass with ``ties="pass"``.
    """

    where = "per_item_majority"
    if ties not in ("fail", "pass"):
        raise EvalError(f"ties must be 'fail' or 'pass', got {ties!r}", location=where)
    matrix = _matrix(outcomes, where)
    _check_binary(matrix, "outcomes", where)
    twice_passes = 2 * matrix.sum(axis=1)
    repeats = matrix.shape[1]
    return (twice_passes > repeats) | ((twice_passes == repeats) & (ties == "pass"))


# --------------------------------------------------------------------------------- power and sample size


def _discordance(p01: float, p10: float, where: str) -> tuple[float, float]:
    p01 = _probability(p01, "p01", where, open_interval=False)
    p10 = _probability(p10, "p10", where, open_interval=False)
    if p01 + p10 > 1.0:
        raise EvalError(f"p01 + p10 = {p01 + p10} exceeds 1", location=where)
    return p01, p10


def required_pairs_mcnemar(p01: float, p10: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Paired items needed for McNemar's test to detect discordance rates ``p01`` vs ``p10``.

    Method: Connor (1987), "Sample size for testing differences in proportions for the paired-sample
    design": with ``psi = p01 + p10`` and ``delta = p01 - p10``,
    ``n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta^2))^2 / delta^2``, rounded up. ``p01`` is
    the probability an item fails under A and passes under B. The formula is for the asymptotic test;
    the exact test is conservative and reaches a few points less power at this n (see
    :func:`power_mcnemar` with ``method="exact"``).
    """
    where = "required_pairs_mcnemar"
    p01, p10 = _discordance(p01, p10, where)
    alpha = _probability(alpha, "alpha", where)
    power = _probability(power, "power", where)
    delta = p01 - p10
    if delta == 0:
        raise EvalError(
            "p01 == p10: there is no effect to detect, so no sample size suffices", location=where
        )
    psi = p01 + p10
    root = _z(1 - alpha / 2) * math.sqrt(psi) + _z(power) * math.sqrt(max(psi - delta**2, 0.0))
    return max(1, math.ceil(root**2 / delta**2 - 1e-9))


def power_mcnemar(
    n: int, p01: float, p10: float, alpha: float = 0.05, *, method: Literal["exact", "normal"] = "exact"
) -> float:
    """Power of the two-sided McNemar test with ``n`` paired items and discordance rates ``p01``, ``p10``.

    ``"exact"`` (default): the power of :func:`mcnemar_exact` itself, summing over the number of
    discordant items ``m ~ Binomial(n, psi)`` the probability that ``b01 ~ Binomial(m, p01/psi)`` lands
    in the exact test's rejection region. ``"normal"``: Connor's (1987) normal approximation, both tails.
    """
    import numpy as np
    from scipy.special import bdtr, bdtrc
    from scipy.stats import binom

    where = "power_mcnemar"
    n = _positive_int(n, "n", where)
    p01, p10 = _discordance(p01, p10, where)
    alpha = _probability(alpha, "alpha", where)
    if method not in ("exact", "normal"):
        raise EvalError(f"method must be 'exact' or 'normal', got {method!r}", location=where)
    psi, delta = p01 + p10, p01 - p10
    if psi == 0:
        return 0.0  # no discordant items, ever: the test can never reject
    if method == "normal":
        z = _z(1 - alpha / 2)
        spread = math.sqrt(max(psi - delta**2, 0.0))
        shift = math.sqrt(n) * delta
        if spread == 0:
            return float(abs(shift) > z * math.sqrt(psi))
        return _NORMAL.cdf((shift - z * math.sqrt(psi)) / spread) + _NORMAL.cdf(
            (-shift - z * math.sqrt(psi)) / spread
        )

    m = np.arange(n + 1)
    size = np.maximum(m, 1)
    # Largest k with 2 * P(X <= k) <= alpha under Binomial(m, 1/2); -1 where no outcome rejects.
    guess = binom.ppf(alpha / 2, size, 0.5)
    critical = np.full(n + 1, -1.0)
    for offset in (-1, 0, 1):
        k = guess + offset
        rejects = (k >= 0) & (_mcnemar_p_values(k, size - k) <= alpha) & (2 * k < m)
        critical = np.where(rejects, np.maximum(critical, k), critical)
    q = p01 / psi
    usable = (critical >= 0) & (m > 0)
    k = np.where(usable, critical, 0)
    # P(b01 <= k) + P(b01 >= m - k), the two tails of the rejection region given m discordant items.
    reject_given_m = np.where(usable, bdtr(k, size, q) + bdtrc(size - k - 1, size, q), 0.0)
    return float(np.clip(np.sum(binom.pmf(m, n, psi) * reject_given_m), 0.0, 1.0))


def _effect(diff: float, sd_diff: float, where: str) -> tuple[float, float]:
    diff, sd_diff = float(diff), float(sd_diff)
    if not math.isfinite(diff) or diff == 0:
        raise EvalError(f"diff must be a finite non-zero effect, got {diff!r}", location=where)
    if not math.isfinite(sd_diff) or sd_diff <= 0:
        raise EvalError(f"sd_diff must be a finite standard deviation > 0, got {sd_diff!r}", location=where)
    return diff, sd_diff


def power_paired_mean(n: int, diff: float, sd_diff: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with ``n`` items, true mean difference ``diff`` and standard
    deviation of the differences ``sd_diff``, from the noncentral t distribution (exact under normality)."""
    from scipy.stats import nct, t

    where = "power_paired_mean"
    n = _positive_int(n, "n", where, minimum=2)
    diff, sd_diff = _effect(diff, sd_diff, where)
    alpha = _probability(alpha, "alpha", where)
    df = n - 1
    critical = float(t.ppf(1 - alpha / 2, df))
    shift = diff / sd_diff * math.sqrt(n)
    return float(nct.sf(critical, df, shift) + nct.cdf(-critical, df, shift))


def required_pairs_paired_mean(
    diff: float,
    sd_diff: float,
    alpha: float = 0.05,
    power: float = 0.8,
    *,
    method: Literal["t", "normal"] = "t",
) -> int:
    """Paired items needed to detect a mean difference ``diff`` when the differences have standard
    deviation ``sd_diff``.

    ``"normal"``: ``n = ((z_{1-alpha/2} + z_{power}) sd / diff)^2`` rounded up. ``"t"`` (default): the
    smallest ``n >= 2`` at which the paired t-test reaches ``power`` (:func:`power_paired_mean`), found by
    stepping up from the normal answer; it is one or two items more for moderate effects.
    """
    where = "required_pairs_paired_mean"
    diff, sd_diff = _effect(diff, sd_diff, where)
    alpha = _probability(alpha, "alpha", where)
    power = _probability(power, "power", where)
    if method not in ("t", "normal"):
        raise EvalError(f"method must be 't' or 'normal', got {method!r}", location=where)
    normal = math.ceil(((_z(1 - alpha / 2) + _z(power)) * sd_diff / abs(diff)) ** 2 - 1e-9)
    if method == "normal":
        return max(1, normal)
    n = max(2, normal)
    while power_paired_mean(n, diff, sd_diff, alpha) < power:
        n += 1
    return n


# ------------------------------------------------------------------------------------------- comparisons


@dataclass(frozen=True, slots=True)
class _Evidence:
    x: np.ndarray
    y: np.ndarray
    kind: Kind
    ci: BootstrapCI
    test: McNemarResult | WilcoxonResult


def _gather(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    kind: Kind,
    alpha: float,
    seed: int | None,
    n_resamples: int,
    where: str,
) -> _Evidence:
    x, y = _pair(a, b, where)
    test: McNemarResult | WilcoxonResult
    if kind == "binary":
        _check_binary(x, "a", where)
        _check_binary(y, "b", where)
        test = mcnemar_exact(x, y)
    else:
        test = wilcoxon_signed_rank(x, y)
    ci = paired_bootstrap(x, y, n_resamples=n_resamples, confidence=1 - alpha, seed=seed)
    return _Evidence(x, y, kind, ci, test)


def _needed_items(evidence: _Evidence, alpha: float) -> int | None:
    import numpy as np

    if isinstance(evidence.test, McNemarResult):
        n = evidence.x.size
        if evidence.test.b01 == evidence.test.b10:
            return None
        return required_pairs_mcnemar(evidence.test.b01 / n, evidence.test.b10 / n, alpha, _SIZING_POWER)
    d = evidence.y - evidence.x
    tol = 1e-12 * max(1.0, float(np.max(np.abs(evidence.x))), float(np.max(np.abs(evidence.y))))
    mean = float(np.mean(d))
    if abs(mean) <= tol or d.size < 2:
        return None
    sd = float(np.std(d, ddof=1))
    if sd <= tol:
        # Every difference is the same: the sign test needs 2 * 0.5^n <= alpha.
        return math.ceil(math.log2(2 / alpha))
    n_t = required_pairs_paired_mean(mean, sd, alpha, _SIZING_POWER)
    return math.ceil(n_t / _WILCOXON_ARE - 1e-9)


def _format_p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"={p:.2g}"


def _format_effect(value: float, kind: Kind, unit: bool = True) -> str:
    if kind == "binary":
        return f"{100 * value:+.1f}" + (" pts" if unit else "")
    return f"{value:+.3g}"


def _decide(
    evidence: _Evidence,
    name_a: str,
    name_b: str,
    alpha: float,
    adjusted_p: float,
    sizing_alpha: float,
    holm_adjusted: bool,
) -> Comparison:
    import numpy as np

    test, ci, kind = evidence.test, evidence.ci, evidence.kind
    significant = adjusted_p <= alpha
    if isinstance(test, McNemarResult):
        b_ahead, a_ahead, label = test.b01 > test.b10, test.b10 > test.b01, "McNemar"
    else:
        b_ahead, a_ahead, label = test.w_plus > test.w_minus, test.w_minus > test.w_plus, "Wilcoxon"
    winner: Literal["a", "b"] | None = None
    if significant and (a_ahead or b_ahead):
        winner = "b" if b_ahead else "a"

    stats = f"{label} p{_format_p(test.p_value)}"
    if holm_adjusted:
        stats += f", Holm-adjusted p{_format_p(adjusted_p)}"
    level = f"{100 * ci.confidence:g}% CI"
    needed = None
    if winner is not None:
        sign = 1.0 if winner == "b" else -1.0
        low, high = sorted((sign * ci.low, sign * ci.high))
        first, second = (name_b, name_a) if winner == "b" else (name_a, name_b)
        verdict = (
            f"{first} beats {second} by {_format_effect(sign * ci.diff, kind)} "
            f"({level} {_format_effect(low, kind, False)}…{_format_effect(high, kind, False)}, {stats})"
        )
    else:
        needed = _needed_items(evidence, sizing_alpha)
        if needed is not None:
            tail = f"about {needed} paired items would settle it"
        elif abs(ci.diff) == 0:
            tail = "no difference was observed, so more items would not settle it"
        else:
            tail = "too few items to estimate how many would settle it"
        verdict = (
            f"Not enough evidence: {name_b} − {name_a} = {_format_effect(ci.diff, kind)} "
            f"({level} {_format_effect(ci.low, kind, False)}…{_format_effect(ci.high, kind, False)}, "
            f"{stats}); {tail}"
        )
    return Comparison(
        name_a=name_a,
        name_b=name_b,
        kind=kind,
        n=int(evidence.x.size),
        mean_a=float(np.mean(evidence.x)),
        mean_b=float(np.mean(evidence.y)),
        diff=ci.diff,
        ci=ci,
        test=test,
        p_value=test.p_value,
        adjusted_p=adjusted_p,
        alpha=alpha,
        significant=significant,
        winner=winner,
        needed_items=needed,
        verdict=verdict,
    )


def compare_paired(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    kind: Kind,
    alpha: float = 0.05,
    seed: int | None = 0,
    n_resamples: int = 10_000,
    name_a: str = "A",
    name_b: str = "B",
) -> Comparison:
    """Compare two variants scored on the same items and decide.

    Evidence: a paired bootstrap BCa interval (confidence ``1 - alpha``) for ``mean(b) - mean(a)``, and a
    paired test: exact McNemar for ``kind="binary"`` (0/1 outcomes), Wilcoxon signed-rank for
    ``kind="graded"``. The decision follows the test: significant when ``p <= alpha``, and the winner is
    the variant the test's discordant counts (McNemar) or rank sums (Wilcoxon) favour.

    When the result is not significant, ``needed_items`` treats the observed effect as the truth and
    asks how many paired items would reach 80% power: Connor's McNemar formula from the observed
    discordance rates (binary), or the paired t-test's sample size from the observed mean and standard
    deviation of the differences divided by Wilcoxon's efficiency 3/pi (graded). It is ``None`` when the
    observed effect is zero (or, for graded data, with a single item).
    """
    where = "compare_paired"
    kind = _kind(kind, where)
    alpha = _probability(alpha, "alpha", where)
    evidence = _gather(a, b, kind, alpha, seed, n_resamples, where)
    return _decide(evidence, name_a, name_b, alpha, evidence.test.p_value, alpha, holm_adjusted=False)


def compare_many(
    variants: Mapping[str, npt.ArrayLike],
    *,
    baseline: str | None = None,
    kind: Kind,
    alpha: float = 0.05,
    seed: int | None = 0,
    n_resamples: int = 10_000,
) -> list[Comparison]:
    """Compare several variants scored on the same items, controlling the family-wise error rate.

    With a ``baseline``, each other variant is compared against it (A = baseline, B = the variant); without
    one, every pair is compared (A = the earlier variant in ``variants``' order). Each comparison is run
    as in :func:`compare_paired`, then the Holm–Bonferroni adjustment over all of them decides which are
    significant (``adjusted_p``). Bootstrap intervals stay at ``1 - alpha`` each (not simultaneous), and
    ``needed_items`` is sized at ``alpha / m`` (Bonferroni), a slight overestimate for Holm.
    """
    where = "compare_many"
    kind = _kind(kind, where)
    alpha = _probability(alpha, "alpha", where)
    names = list(variants)
    if len(names) < 2:
        raise EvalError(f"need at least two variants to compare, got {len(names)}", location=where)
    if baseline is not None:
        if baseline not in variants:
            raise EvalError(f"baseline {baseline!r} is not one of the variants {names}", location=where)
        pairs = [(baseline, name) for name in names if name != baseline]
    else:
        pairs = list(combinations(names, 2))

    evidence = [
        _gather(
            variants[first], variants[second], kind, alpha, seed, n_resamples, f"{where}: {first} vs {second}"
        )
        for first, second in pairs
    ]
    adjusted = holm([e.test.p_value for e in evidence], alpha)
    sizing_alpha = alpha / len(pairs)
    return [
        _decide(e, first, second, alpha, h.adjusted_p, sizing_alpha, holm_adjusted=True)
        for e, h, (first, second) in zip(evidence, adjusted, pairs, strict=True)
    ]
