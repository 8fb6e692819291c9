"""pass@k against the closed form, its edge cases and its input checks."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from promptkit.errors import EvalError
from promptkit.evals._passk import pass_at_k, pass_at_k_array


def closed_form(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k), exactly, with math.comb (comb returns 0 when k > n - c)."""
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def test_matches_closed_form_on_every_small_case():
    checked = 0
    for n in range(1, 31):
        for c in range(n + 1):
            for k in range(1, n + 1):
                expected = closed_form(n, c, k)
                assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-15), (n, c, k)
                checked += 1
    assert checked == sum(n * (n + 1) for n in range(1, 31))


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [
        (200, 37, 10),
        (200, 1, 1),
        (200, 1, 100),
        (1000, 3, 100),
        (1000, 997, 2),
        (5000, 12, 1),
        (10_000, 9_000, 50),
    ],
)
def test_matches_closed_form_on_large_cases(n: int, c: int, k: int):
    assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), rel=1e-10)


def test_keeps_relative_precision_for_tiny_values():
    # A naive 1 - product loses every digit here; the log-space product keeps them.
    n, c, k = 1_000_000, 1, 1
    assert pass_at_k(n, c, k) == pytest.approx(1e-6, rel=1e-12)


def test_random_cases_match_closed_form():
    rng = np.random.default_rng(7)
    for _ in range(500):
        n = int(rng.integers(1, 400))
        c = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, n + 1))
        assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), rel=1e-11, abs=1e-15)


def test_pass_at_1_is_the_share_correct():
    for n in (1, 2, 7, 20, 200):
        for c in range(n + 1):
            assert pass_at_k(n, c, 1) == pytest.approx(c / n, rel=1e-13, abs=1e-15)


def test_edge_cases():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 10) == 1.0
    assert pass_at_k(10, 6, 5) == 1.0  # only 4 failures: every 5-subset holds a success
    assert pass_at_k(10, 5, 5) < 1.0
    assert pass_at_k(5, 5, 5) == 1.0  # n == k


def test_is_non_decreasing_in_k_and_c():
    n = 25
    for c in range(n + 1):
        values = [pass_at_k(n, c, k) for k in range(1, n + 1)]
        assert all(x <= y + 1e-15 for x, y in zip(values, values[1:], strict=False))
    for k in (1, 3, 10):
        values = [pass_at_k(n, c, k) for c in range(n + 1)]
        assert all(x <= y + 1e-15 for x, y in zip(values, values[1:], strict=False))


@pytest.mark.parametrize(
    ("n", "c", "k", "fragment"),
    [
        (3, 1, 5, "at least k=5 samples"),
        (3, 0, 5, "at least k=5 samples"),
        (5, 6, 1, "more than n=5"),
        (5, 1, 0, "k must be >= 1"),
        (-1, 0, 1, "n must be >= 0"),
        (5, 1.5, 1, "c must be an integer"),
        (True, 1, 1, "n must be an integer"),
    ],
)
def test_bad_inputs_raise(n, c, k, fragment):
    with pytest.raises(EvalError, match=fragment) as info:
        pass_at_k(n, c, k)
    assert info.value.location == "pass_at_k"


def test_array_is_the_mean_over_problems():
    cs = [0, 3, 10, 7]
    expected = np.mean([closed_form(10, c, 3) for c in cs])
    assert pass_at_k_array(10, cs, 3) == pytest.approx(expected, rel=1e-12)
    assert pass_at_k_array([10, 10, 10, 10], cs, 3) == pytest.approx(expected, rel=1e-12)
    assert pass_at_k_array(np.array([10] * 4), np.array(cs), 3) == pytest.approx(expected, rel=1e-12)
    assert pass_at_k_array(np.int64(10), cs, 3) == pytest.approx(expected, rel=1e-12)


def test_array_with_per_problem_sample_counts():
    ns, cs = [5, 20, 200], [1, 4, 150]
    expected = np.mean([closed_form(n, c, 5) for n, c in zip(ns, cs, strict=True)])
    assert pass_at_k_array(ns, cs, 5) == pytest.approx(expected, rel=1e-12)


def test_array_errors_name_the_problem():
    with pytest.raises(EvalError, match="problem 1") as info:
        pass_at_k_array([10, 2], [1, 1], 3)
    assert "at least k=3" in str(info.value)
    with pytest.raises(EvalError, match="ns has 2 entries but cs has 3"):
        pass_at_k_array([10, 10], [1, 2, 3], 1)
    with pytest.raises(EvalError, match="cs is empty"):
        pass_at_k_array(10, [], 1)
    with pytest.raises(EvalError, match=r"cs\[1\] must be >= 0"):
        pass_at_k_array(10, [1, -2], 1)
