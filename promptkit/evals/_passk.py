"""pass@k: the chance that at least one of k samples solves a problem, estimated from n samples.

The estimator is the unbiased one of Chen et al. (2021, "Evaluating Large Language Models Trained on
Code"): with ``n`` samples of which ``c`` are correct,

    pass@k = 1 - C(n - c, k) / C(n, k)

The binomial ratio overflows or cancels badly when computed directly, so it is evaluated as the product
``prod_{i = n-c+1}^{n} (1 - k / i)``, summed in log space (``log1p``) and turned back with ``expm1``;
that keeps full relative precision whether the answer is close to 0 or close to 1.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable

from promptkit.errors import EvalError

__all__ = ["pass_at_k", "pass_at_k_array"]


def _count(value: object, name: str, where: str) -> int:
    if isinstance(value, bool):
        raise EvalError(f"{name} must be an integer count, got {value!r}", location=where)
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise EvalError(f"{name} must be an integer count, got {value!r}", location=where) from None
    if number < 0:
        raise EvalError(f"{name} must be >= 0, got {number}", location=where)
    return number


def _estimate(n: int, c: int, k: int, where: str) -> float:
    if k < 1:
        raise EvalError(f"k must be >= 1, got {k}", location=where)
    if c > n:
        raise EvalError(f"c={c} correct samples is more than n={n} samples", location=where)
    if n < k:
        # C(n, k) = 0: no unbiased estimate exists, and any number returned here would be made up.
        raise EvalError(f"pass@{k} needs at least k={k} samples per problem, got n={n}", location=where)
    if c == 0:
        return 0.0
    if n - c < k:
        return 1.0  # every k-subset holds a correct sample
    log_fail = math.fsum(math.log1p(-k / i) for i in range(n - c + 1, n + 1))
    return -math.expm1(log_fail)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` correct out of ``n`` samples.

    Assumes the n samples are independent draws from the model for that problem. Edge cases:
    ``c == 0`` gives 0, ``n - c < k`` gives 1, and ``n < k`` raises :class:`EvalError` because the
    estimator is undefined there. ``pass_at_k(n, c, 1) == c / n``.
    """
    where = "pass_at_k"
    return _estimate(_count(n, "n", where), _count(c, "c", where), _count(k, "k", where), where)


def pass_at_k_array(ns: int | Iterable[int], cs: Iterable[int], k: int) -> float:
    """Mean unbiased pass@k over problems.

    ``cs[i]`` is the number of correct samples for problem ``i``; ``ns`` is either one sample count
    shared by every problem or one count per problem. Problems are weighted equally, as in HumanEval.
    """
    where = "pass_at_k_array"
    counts = [_count(c, f"cs[{i}]", where) for i, c in enumerate(cs)]
    if not counts:
        raise EvalError("no problems given (cs is empty)", location=where)
    try:
        shared = operator.index(ns)  # type: ignore[arg-type]
    except TypeError:
        totals = [_count(n, f"ns[{i}]", where) for i, n in enumerate(ns)]  # type: ignore[union-attr]
        if len(totals) != len(counts):
            raise EvalError(
                f"ns has {len(totals)} entries but cs has {len(counts)}", location=where
            ) from None
    else:
        totals = [_count(shared, "ns", where)] * len(counts)
    k = _count(k, "k", where)
    values = [
        _estimate(n, c, k, f"{where}: problem {i}")
        for i, (n, c) in enumerate(zip(totals, counts, strict=True))
    ]
    return math.fsum(values) / len(values)
