"""The statistics core: simulated error rates and power, agreement with scipy, hand-worked examples."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from promptkit.errors import EvalError
from promptkit.evals._stats import (
    BootstrapCI,
    McNemarResult,
    WilcoxonResult,
    _jackknife,
    compare_many,
    compare_paired,
    flip_rate,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    per_item_majority,
    power_mcnemar,
    power_paired_mean,
    required_pairs_mcnemar,
    required_pairs_paired_mean,
    wilcoxon_signed_rank,
)

GSM8K = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "routellm"
    / "gsm8k"
    / "gsm8k_responses.csv"
)


def shared_difficulty_binary(rng: np.random.Generator, runs: int, items: int, shift: float = 0.0):
    """Pass/fail for A and B on the same items: each item has one difficulty both variants face."""
    p = rng.beta(2, 2, size=(runs, items))
    q = np.clip(p + shift, 0, 1)
    return rng.random((runs, items)) < p, rng.random((runs, items)) < q


# ------------------------------------------------------------------------------------------- McNemar


def test_mcnemar_counts_and_direction():
    a = [1, 1, 0, 0, 1, 0, 0, 1]
    b = [1, 0, 1, 1, 1, 1, 0, 1]
    result = mcnemar_exact(a, b)
    assert (result.b01, result.b10) == (3, 1)
    assert result.statistic == 1
    assert result.n_discordant == 4
    # 2 * P(X <= 1), X ~ Bin(4, 1/2) = 2 * 5/16
    assert result.p_value == pytest.approx(10 / 16)
    assert mcnemar_exact(b, a).b01 == 1


def test_mcnemar_without_discordant_pairs_has_p_one():
    result = mcnemar_exact([1, 0, 1], [1, 0, 1])
    assert result == McNemarResult(b01=0, b10=0, p_value=1.0, statistic=0)


def test_mcnemar_matches_scipy_binomtest():
    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(1, 400))
        a = rng.random(n) < rng.random()
        b = rng.random(n) < rng.random()
        result = mcnemar_exact(a, b)
        m = result.b01 + result.b10
        if m == 0:
            assert result.p_value == 1.0
            continue
        expected = stats.binomtest(result.b01, m, 0.5, alternative="two-sided").pvalue
        assert result.p_value == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_mcnemar_type_one_error_under_no_effect():
    rng = np.random.default_rng(2024)
    a, b = shared_difficulty_binary(rng, runs=2500, items=100)
    rejected = np.mean([mcnemar_exact(a[i], b[i]).p_value <= 0.05 for i in range(len(a))])
    assert 0.01 <= rejected <= 0.065, rejected


@pytest.mark.parametrize(
    ("a", "b", "fragment"),
    [
        ([1, 0, 2], [1, 0, 1], r"a_pass\[2\] is 2.0"),
        ([1, 0], [1, 0, 1], "a has 2 items but b has 3"),
        ([], [], "a is empty"),
        ([1, float("nan")], [1, 0], r"a\[1\] is nan"),
        ([[1, 0]], [[1, 0]], "1-D"),
    ],
)
def test_mcnemar_rejects_bad_input(a, b, fragment):
    with pytest.raises(EvalError, match=fragment) as info:
        mcnemar_exact(a, b)
    assert info.value.location == "mcnemar_exact"


# ------------------------------------------------------------------------------------------ Wilcoxon


def test_wilcoxon_exact_matches_scipy_without_ties():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 51))
        a = rng.normal(size=n)
        b = a + rng.normal(loc=rng.normal(0, 0.5), size=n)
        ours = wilcoxon_signed_rank(a, b)
        theirs = stats.wilcoxon(b, a, method="exact")
        assert ours.method == "exact"
        assert ours.n_nonzero == n
        assert ours.statistic == pytest.approx(theirs.statistic)
        assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-6, abs=1e-9)


def test_wilcoxon_normal_matches_scipy_with_ties_and_zeros():
    rng = np.random.default_rng(6)
    compared = 0
    for _ in range(200):
        n = int(rng.integers(55, 300))
        a = rng.integers(0, 11, size=n) / 10
        b = np.clip(a + rng.integers(-3, 4, size=n) / 10 + (rng.random(n) < 0.1) / 10, 0, 1)
        a, b = np.round(a, 1), np.round(b, 1)
        d = np.round(b - a, 10)  # scipy sees exact ties only; give it the differences we tie
        ours = wilcoxon_signed_rank(a, b)
        if abs(ours.w_plus - ours.n_nonzero * (ours.n_nonzero + 1) / 4) < 0.5:
            continue  # scipy's continuity correction overshoots zero here; ours stops at zero
        theirs = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic")
        assert ours.method == "normal"
        assert ours.n_nonzero == int(np.count_nonzero(d))
        assert ours.statistic == pytest.approx(theirs.statistic)
        assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-6, abs=1e-12)
        compared += 1
    assert compared > 150


def test_wilcoxon_forced_exact_with_ties_is_the_sign_flip_permutation_test():
    rng = np.random.default_rng(8)
    for _ in range(25):
        n = int(rng.integers(4, 11))
        d = rng.integers(-3, 4, size=n).astype(float)
        d[d == 0] = 1.0
        ours = wilcoxon_signed_rank(np.zeros(n), d, method="exact")
        # Brute force: every sign pattern of the observed |d|, equally likely under H0.
        ranks = stats.rankdata(np.abs(d))
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
        w = (signs * ranks).sum(axis=1)
        observed = ranks[d > 0].sum()
        expected = min(1.0, 2 * min(np.mean(w <= observed + 1e-9), np.mean(w >= observed - 1e-9)))
        assert ours.p_value == pytest.approx(expected, rel=1e-12)


def test_wilcoxon_drops_zero_differences_and_floating_noise():
    a = np.array([0.1, 0.2, 0.3, 0.5, 0.7, 0.9])
    b = np.array([0.1, 0.2 + 1e-15, 0.5, 0.7, 0.9, 1.1])  # 0.3->0.5, 0.5->0.7, ... are all +0.2
    result = wilcoxon_signed_rank(a, b)
    assert result.n_nonzero == 4
    assert result.method == "normal"  # four tied |d| once rounding noise is ignored
    assert result.w_plus == 10.0 and result.w_minus == 0.0
    assert wilcoxon_signed_rank([1.0, 2.0], [1.0, 2.0]) == WilcoxonResult(0.0, 1.0, 0, "exact", 0.0, 0.0)


def test_wilcoxon_type_one_error_graded_with_ties():
    rng = np.random.default_rng(99)
    runs, items = 2500, 100
    difficulty = rng.beta(2, 2, size=(runs, items))
    grade = lambda: np.clip(np.round((difficulty + rng.normal(0, 0.2, (runs, items))) * 10), 0, 10) / 10  # noqa: E731
    a, b = grade(), grade()
    results = [wilcoxon_signed_rank(a[i], b[i]) for i in range(runs)]
    assert {r.method for r in results} == {"normal"}
    rejected = np.mean([r.p_value <= 0.05 for r in results])
    assert 0.035 <= rejected <= 0.065, rejected


def test_wilcoxon_type_one_error_exact_path():
    rng = np.random.default_rng(3)
    runs, items = 2500, 30
    difficulty = rng.normal(size=(runs, items))
    a = difficulty + rng.normal(size=(runs, items))
    b = difficulty + rng.normal(size=(runs, items))
    results = [wilcoxon_signed_rank(a[i], b[i]) for i in range(runs)]
    assert {r.method for r in results} == {"exact"}
    rejected = np.mean([r.p_value <= 0.05 for r in results])
    assert 0.035 <= rejected <= 0.065, rejected


def test_wilcoxon_forced_exact_has_a_size_limit():
    with pytest.raises(EvalError, match="limited to 300"):
        wilcoxon_signed_rank(np.zeros(301), np.arange(1, 302), method="exact")


# ----------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic_per_seed_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    a, b = rng.random(60), rng.random(60) + 0.1
    first = paired_bootstrap(a, b, n_resamples=2000, seed=3)
    assert first == paired_bootstrap(a, b, n_resamples=2000, seed=3)
    assert first != paired_bootstrap(a, b, n_resamples=2000, seed=4)
    assert first.diff == pytest.approx(np.mean(b - a))
    assert first.low < first.diff < first.high
    assert (first.n, first.method, first.n_resamples) == (60, "bca", 2000)


def test_bootstrap_keeps_the_pairing():
    # Items vary a lot, B tracks A closely: only a paired resampling gives a narrow interval.
    rng = np.random.default_rng(2)
    a = rng.random(200)
    b = a + rng.normal(0.01, 0.001, size=200)
    ci = paired_bootstrap(a, b, n_resamples=2000)
    assert ci.high - ci.low < 0.001
    assert ci.low < 0.01 < ci.high


def test_bootstrap_degenerate_when_all_differences_match():
    ci = paired_bootstrap([0, 1, 0], [0, 1, 0])
    assert ci == BootstrapCI(0.0, 0.0, 0.0, 0.95, 3, "degenerate", "mean", 10_000)


def test_bootstrap_median_and_percentile():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=80), rng.normal(0.5, 1, size=80)
    ci = paired_bootstrap(a, b, statistic="median", method="percentile", n_resamples=3000)
    assert ci.diff == pytest.approx(np.median(b - a))
    assert ci.method == "percentile" and ci.statistic == "median"
    # The percentile interval is exactly the empirical quantiles of the resampled medians.
    draws = np.random.default_rng(0).integers(0, 80, size=(3000, 80))
    boot = np.median((b - a)[draws], axis=1)
    assert (ci.low, ci.high) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])))


@pytest.mark.parametrize("size", [2, 3, 6, 7])
@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_jackknife_matches_leave_one_out(size: int, statistic: str):
    d = np.random.default_rng(size).integers(0, 4, size=size).astype(float)
    reduce = np.mean if statistic == "mean" else np.median
    expected = [reduce(np.delete(d, i)) for i in range(size)]
    assert _jackknife(d, statistic) == pytest.approx(expected)


def test_bootstrap_coverage_of_the_true_difference():
    # Items are drawn fresh each run; B's pass probability is 0.8 p + 0.15, so the true diff is 0.05.
    rng = np.random.default_rng(12)
    runs, items = 800, 100
    p = rng.beta(2, 2, size=(runs, items))
    a, b = rng.random((runs, items)) < p, rng.random((runs, items)) < 0.8 * p + 0.15
    covered = [
        (ci.low <= 0.05 <= ci.high)
        for ci in (paired_bootstrap(a[i], b[i], n_resamples=1000, seed=i) for i in range(runs))
    ]
    assert 0.92 <= np.mean(covered) <= 0.97, np.mean(covered)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"confidence": 1.0}, "confidence must be strictly between 0 and 1"),
        ({"n_resamples": 0}, "n_resamples must be >= 1"),
        ({"statistic": "mode"}, "statistic must be"),
        ({"method": "bc"}, "method must be"),
    ],
)
def test_bootstrap_rejects_bad_options(kwargs, fragment):
    with pytest.raises(EvalError, match=fragment):
        paired_bootstrap([0, 1], [1, 1], **kwargs)


# ---------------------------------------------------------------------------------------------- Holm


def test_holm_hand_worked_example():
    # Four hypotheses at alpha = 0.05 (the textbook example): sorted 0.005, 0.01, 0.03, 0.04 are
    # compared with 0.05/4, 0.05/3, 0.05/2, 0.05/1; the third fails, so only the first two are rejected.
    results = holm([0.01, 0.04, 0.03, 0.005])
    assert [r.reject for r in results] == [True, False, False, True]
    assert [r.adjusted_p for r in results] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [r.p for r in results] == [0.01, 0.04, 0.03, 0.005]


def test_holm_second_example_caps_at_one_and_keeps_monotone():
    results = holm([0.5, 0.001, 0.3, 0.02, 0.9], alpha=0.05)
    # 0.001*5, 0.02*4, 0.3*3, 0.5*2, 0.9*1 -> 0.005, 0.08, 0.9, 1.0, max(0.9, 1.0)
    assert [r.adjusted_p for r in results] == pytest.approx([1.0, 0.005, 0.9, 0.08, 1.0])
    assert [r.reject for r in results] == [False, True, False, False, False]


def step_down(ps: list[float], alpha: float) -> list[bool]:
    order = sorted(range(len(ps)), key=ps.__getitem__)
    reject = [False] * len(ps)
    for step, i in enumerate(order):
        if ps[i] > alpha / (len(ps) - step):
            break
        reject[i] = True
    return reject


def test_holm_properties_on_random_families():
    rng = np.random.default_rng(21)
    more_than_bonferroni = 0
    for _ in range(2000):
        m = int(rng.integers(1, 12))
        ps = list(rng.random(m) ** rng.uniform(1, 6))
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        results = holm(ps, alpha)
        adjusted = np.array([r.adjusted_p for r in results])
        reject = [r.reject for r in results]
        bonferroni = [p * m <= alpha for p in ps]
        assert all(h or not b for h, b in zip(reject, bonferroni, strict=True))  # never less powerful
        more_than_bonferroni += sum(reject) > sum(bonferroni)
        assert reject == step_down(ps, alpha)
        assert np.all(adjusted >= np.array(ps) - 1e-15)
        assert np.all(adjusted <= np.minimum(1, np.array(ps) * m) + 1e-15)
        order = np.argsort(ps, kind="stable")
        assert np.all(np.diff(adjusted[order]) >= -1e-15)
    assert more_than_bonferroni > 0


def test_holm_edge_cases():
    assert holm([]) == []
    assert holm([0.04])[0].reject is True
    with pytest.raises(EvalError, match=r"p_values\[1\] is nan"):
        holm([0.1, float("nan")])
    with pytest.raises(EvalError, match=r"p_values\[0\] is 1.5"):
        holm([1.5])


# ----------------------------------------------------------------------------------------- flakiness


def test_flip_rate_binary_is_share_of_unstable_items():
    outcomes = [[1, 1, 1], [1, 0, 1], [0, 0, 0], [0, 0, 1]]
    assert flip_rate(outcomes) == 0.5
    assert flip_rate(np.array(outcomes, dtype=bool)) == 0.5


def test_flip_rate_graded_range_and_std():
    outcomes = [[0.2, 0.6, 0.4], [1.0, 1.0, 1.0]]
    assert flip_rate(outcomes) == pytest.approx((0.4 + 0.0) / 2)
    assert flip_rate(outcomes, spread="std") == pytest.approx((0.2 + 0.0) / 2)


def test_per_item_majority_and_ties():
    outcomes = [[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]]
    assert per_item_majority(outcomes).tolist() == [False, True, False]
    assert per_item_majority(outcomes, ties="pass").tolist() == [True, True, False]


@pytest.mark.parametrize(
    ("outcomes", "fragment"),
    [([1, 0, 1], "2-D"), ([[1], [0]], "at least 2 repeats"), ([[1, float("inf")]], r"outcomes\[0, 1\]")],
)
def test_flakiness_rejects_bad_shapes(outcomes, fragment):
    with pytest.raises(EvalError, match=fragment):
        flip_rate(outcomes)


def test_majority_needs_binary():
    with pytest.raises(EvalError, match="pass/fail"):
        per_item_majority([[0.5, 1.0]])


# -------------------------------------------------------------------------------- power, sample size


def test_mcnemar_power_at_the_required_sample_size():
    p01, p10 = 0.18, 0.08
    n = required_pairs_mcnemar(p01, p10)
    assert (
        power_mcnemar(n, p01, p10, method="normal") >= 0.8 > power_mcnemar(n - 1, p01, p10, method="normal")
    )

    rng = np.random.default_rng(77)
    runs = 2000
    cell = rng.choice(3, size=(runs, n), p=[p01, p10, 1 - p01 - p10])  # 0: A fails B passes, 1: reverse
    concordant_pass = rng.random((runs, n)) < 0.5
    a = np.where(cell == 0, 0, np.where(cell == 1, 1, concordant_pass))
    b = np.where(cell == 0, 1, np.where(cell == 1, 0, concordant_pass))
    empirical = np.mean([mcnemar_exact(a[i], b[i]).p_value <= 0.05 for i in range(runs)])
    assert abs(empirical - 0.8) <= 0.06, empirical
    assert abs(empirical - power_mcnemar(n, p01, p10)) <= 0.035, (empirical, power_mcnemar(n, p01, p10))


def test_mcnemar_power_edges():
    assert power_mcnemar(200, 0.1, 0.1) <= 0.05  # the exact test never exceeds alpha under H0
    assert power_mcnemar(200, 0.1, 0.1, method="normal") == pytest.approx(0.05)
    assert power_mcnemar(5, 0.5, 0.0) == 0.0  # 2 * 0.5**5 > 0.05: five pairs can never reject
    assert power_mcnemar(6, 1.0, 0.0) == pytest.approx(1.0)
    assert power_mcnemar(100, 0.0, 0.0) == 0.0
    assert power_mcnemar(300, 0.1, 0.2) > power_mcnemar(150, 0.1, 0.2) > power_mcnemar(50, 0.1, 0.2)
    with pytest.raises(EvalError, match="no effect"):
        required_pairs_mcnemar(0.1, 0.1)
    with pytest.raises(EvalError, match="exceeds 1"):
        required_pairs_mcnemar(0.7, 0.5)


def test_paired_mean_sample_size_reaches_its_power():
    diff, sd = 0.3, 1.0
    n = required_pairs_paired_mean(diff, sd)
    assert power_paired_mean(n, diff, sd) >= 0.8 > power_paired_mean(n - 1, diff, sd)
    assert n >= required_pairs_paired_mean(diff, sd, method="normal")
    assert required_pairs_paired_mean(0.5, 1.0) == 34  # the textbook paired-t answer for d = 0.5

    rng = np.random.default_rng(5)
    d = rng.normal(diff, sd, size=(4000, n))
    empirical = np.mean(stats.ttest_1samp(d, 0.0, axis=1).pvalue <= 0.05)
    assert abs(empirical - 0.8) <= 0.03, empirical


def test_paired_mean_rejects_no_effect():
    with pytest.raises(EvalError, match="non-zero effect"):
        required_pairs_paired_mean(0.0, 1.0)
    with pytest.raises(EvalError, match="sd_diff"):
        power_paired_mean(10, 0.1, 0.0)


# --------------------------------------------------------------------------------------- comparisons

VERDICT_WIN = re.compile(
    r"^(\S+) beats (\S+) by \+\d+\.\d pts \(95% CI [+-]\d+\.\d…[+-]\d+\.\d, McNemar p[=<]\S+\)$"
)


def test_compare_paired_finds_the_better_variant():
    rng = np.random.default_rng(31)
    a, b = shared_difficulty_binary(rng, runs=1, items=400, shift=0.12)
    result = compare_paired(a[0], b[0], kind="binary", n_resamples=2000)
    assert result.significant and result.winner == "b" and result.winner_name == "B"
    assert result.needed_items is None
    assert result.diff == pytest.approx(b[0].mean() - a[0].mean())
    assert result.ci.low > 0
    assert result.p_value == result.adjusted_p == mcnemar_exact(a[0], b[0]).p_value
    match = VERDICT_WIN.match(result.verdict)
    assert match and match.groups() == ("B", "A"), result.verdict
    assert f"+{100 * result.diff:.1f} pts" in result.verdict

    swapped = compare_paired(b[0], a[0], kind="binary", n_resamples=2000, name_a="new", name_b="old")
    assert swapped.winner == "a" and swapped.winner_name == "new"
    assert swapped.verdict.startswith(f"new beats old by +{100 * result.diff:.1f} pts")


def test_compare_paired_not_significant_sizes_the_follow_up():
    a = np.array([1] * 30 + [0] * 30 + [1] * 4 + [0] * 6)
    b = np.array([1] * 30 + [0] * 30 + [0] * 4 + [1] * 6)  # b01 = 6, b10 = 4
    result = compare_paired(a, b, kind="binary", n_resamples=2000)
    assert not result.significant and result.winner is None
    assert result.needed_items == required_pairs_mcnemar(6 / 70, 4 / 70)
    assert result.needed_items > 70
    assert result.verdict.startswith("Not enough evidence: B − A = +2.9 pts (95% CI ")
    assert result.verdict.endswith(f"; about {result.needed_items} paired items would settle it")


def test_compare_paired_zero_effect_has_no_size():
    a = [1, 0, 1, 0, 1, 1]
    b = [0, 1, 1, 0, 1, 1]
    result = compare_paired(a, b, kind="binary", n_resamples=500)
    assert result.needed_items is None and result.winner is None
    assert "no difference was observed" in result.verdict


def test_compare_paired_graded():
    rng = np.random.default_rng(8)
    a = rng.random(150)
    b = np.clip(a + rng.normal(0.08, 0.2, size=150), 0, 1)
    result = compare_paired(a, b, kind="graded", n_resamples=2000)
    assert isinstance(result.test, WilcoxonResult) and result.test_name == "Wilcoxon"
    assert result.significant and result.winner == "b"
    assert "Wilcoxon p" in result.verdict and "pts" not in result.verdict

    small = compare_paired(a[:12], b[:12] - 0.05, kind="graded", n_resamples=500)
    d = b[:12] - 0.05 - a[:12]
    assert not small.significant and small.winner is None
    expected = math.ceil(required_pairs_paired_mean(d.mean(), d.std(ddof=1)) * math.pi / 3 - 1e-9)
    assert small.needed_items == expected > 12
    assert small.verdict.endswith(f"about {expected} paired items would settle it")


def test_compare_paired_input_checks():
    with pytest.raises(EvalError, match="kind must be"):
        compare_paired([1], [1], kind="ordinal")  # type: ignore[arg-type]
    with pytest.raises(EvalError, match=r"b\[1\] is 0.5") as info:
        compare_paired([1, 0], [1, 0.5], kind="binary")
    assert info.value.location == "compare_paired"


def test_compare_many_against_a_baseline_uses_holm():
    rng = np.random.default_rng(41)
    items = 300
    p = rng.beta(2, 2, size=items)
    variants = {
        "base": rng.random(items) < p,
        "same": rng.random(items) < p,
        "better": rng.random(items) < np.clip(p + 0.15, 0, 1),
        "slightly": rng.random(items) < np.clip(p + 0.05, 0, 1),
    }
    results = compare_many(variants, baseline="base", kind="binary", n_resamples=1000)
    assert [(r.name_a, r.name_b) for r in results] == [
        ("base", "same"),
        ("base", "better"),
        ("base", "slightly"),
    ]
    raw = [r.p_value for r in results]
    assert [r.adjusted_p for r in results] == [h.adjusted_p for h in holm(raw)]
    assert [r.significant for r in results] == [h.reject for h in holm(raw)]
    better = results[1]
    assert better.significant and better.winner_name == "better"
    assert "Holm-adjusted p" in better.verdict


def test_compare_many_holm_can_overturn_a_single_comparison():
    # One comparison at p ~ 0.03 is significant alone but not after adjusting for three.
    base = np.array([1] * 40 + [0] * 40 + [1] * 3 + [0] * 12)  # b01 = 12, b10 = 3: p = 0.035
    lift = np.array([1] * 40 + [0] * 40 + [0] * 3 + [1] * 12)
    alone = compare_paired(base, lift, kind="binary", n_resamples=500)
    assert alone.significant and alone.p_value == pytest.approx(2 * 576 / 2**15)
    variants = {"base": base, "lift": lift, "copy1": base.copy(), "copy2": base.copy()}
    results = compare_many(variants, baseline="base", kind="binary", n_resamples=500)
    assert not results[0].significant
    assert results[0].adjusted_p == pytest.approx(min(1.0, 3 * results[0].p_value))
    assert results[0].needed_items == required_pairs_mcnemar(12 / 95, 3 / 95, alpha=0.05 / 3)


def test_compare_many_all_pairs_and_errors():
    variants = {"x": [1, 0, 1, 1], "y": [1, 1, 1, 1], "z": [0, 0, 1, 1]}
    results = compare_many(variants, kind="binary", n_resamples=200)
    assert [(r.name_a, r.name_b) for r in results] == [("x", "y"), ("x", "z"), ("y", "z")]
    with pytest.raises(EvalError, match="baseline 'w' is not one of"):
        compare_many(variants, baseline="w", kind="binary")
    with pytest.raises(EvalError, match="at least two variants"):
        compare_many({"x": [1]}, kind="binary")
    with pytest.raises(EvalError, match="x vs y") as info:
        compare_many({"x": [1, 0], "y": [1]}, kind="binary")
    assert "a has 2 items but b has 1" in str(info.value)


@pytest.mark.skipif(not GSM8K.is_file(), reason="shared RouteLLM data not present")
def test_compare_on_recorded_gsm8k_outcomes():
    csv.field_size_limit(1 << 30)
    with GSM8K.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    weak = np.array([row["mistralai/Mixtral-8x7B-Instruct-v0.1"] == "True" for row in rows])
    strong = np.array([row["gpt-4-1106-preview"] == "True" for row in rows])
    assert len(rows) == 1319
    result = compare_paired(weak, strong, kind="binary", name_a="mixtral", name_b="gpt-4", n_resamples=2000)
    assert result.test.b01 == int(np.sum(~weak & strong))
    assert result.test.b10 == int(np.sum(weak & ~strong))
    assert result.mean_a == pytest.approx(0.638, abs=0.005) and result.mean_b == pytest.approx(
        0.857, abs=0.005
    )
    assert result.winner_name == "gpt-4" and result.p_value < 1e-10
    assert result.ci.low < result.diff < result.ci.high and result.ci.low > 0.15
    assert result.verdict.startswith("gpt-4 beats mixtral by +21.")
