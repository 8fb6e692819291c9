"""compare_variants on synthetic logs with known effects: winners, non-answers, Holm, pairing, repeats, gates."""

from __future__ import annotations

import random

import numpy as np
import pytest

from promptkit.errors import EvalError
from promptkit.evals._ab import ABReport, check_thresholds, compare_variants, metric_value, resolve_metric
from promptkit.evals._eval_log import EvalLog, ItemResult, Score
from promptkit.evals._stats import compare_paired, mcnemar_exact, required_pairs_mcnemar

from .test_ab_logs import build_log, discordant, from_pairs

FAST = {"n_resamples": 2000}


# ------------------------------------------------------------------------------------------- decisions


def test_large_binary_effect_declares_the_better_variant_with_the_right_sign():
    a, b = discordant(80, b01=25, b10=3, both_pass=30)
    report = compare_variants(build_log(from_pairs(a, b)), **FAST)
    (c,) = report.comparisons
    assert (c.a, c.b, c.test) == ("A", "B", "McNemar")
    assert (c.b01, c.b10) == (25, 3)
    assert c.diff == pytest.approx((25 - 3) / 80)
    assert c.ci_low > 0 and c.significant and c.winner == "B"
    assert report.winner == "B"
    assert report.verdict.startswith("B beats A by +27.5 pts")
    assert report.verdict.count(".") >= 1 and "\n" not in report.verdict
    assert c.p_value == pytest.approx(mcnemar_exact(a, b).p_value)

    swapped = compare_variants(build_log(from_pairs(b, a)), **FAST)
    assert swapped.winner == "A"
    assert swapped.comparisons[0].diff == pytest.approx(-22 / 80)
    assert swapped.comparisons[0].ci_high < 0
    assert swapped.verdict.startswith("A beats B")


def test_baseline_sets_the_orientation():
    a, b = discordant(80, b01=25, b10=3, both_pass=30)
    report = compare_variants(build_log(from_pairs(a, b)), baseline="B", **FAST)
    (c,) = report.comparisons
    assert (c.a, c.b) == ("B", "A")
    assert c.diff == pytest.approx(-22 / 80)
    assert report.winner == "B" and report.baseline == "B"


def test_no_effect_says_not_enough_evidence_and_sizes_the_study():
    a, b = discordant(60, b01=4, b10=3, both_pass=25)
    report = compare_variants(build_log(from_pairs(a, b)), **FAST)
    (c,) = report.comparisons
    assert not c.significant and c.winner is None and report.winner is None
    assert report.verdict.startswith("Not enough evidence")
    assert c.needed_items == required_pairs_mcnemar(4 / 60, 3 / 60, 0.05, 0.8)
    assert c.needed_items > 60 and c.more_items == c.needed_items - 60
    assert f"about {c.needed_items} paired items" in report.verdict


def test_identical_variants_say_no_difference():
    a, _ = discordant(30, b01=0, b10=0, both_pass=12)
    report = compare_variants(build_log(from_pairs(a, a)), **FAST)
    (c,) = report.comparisons
    assert c.p_value == 1.0 and c.needed_items is None and report.winner is None
    assert "no difference was observed" in report.verdict


def test_holm_turns_a_lone_significant_result_into_not_significant():
    # A vs B alone: 9 vs 1 discordant, exact p = 2 * 11/1024 ≈ 0.021 < 0.05.
    a, b = discordant(40, b01=9, b10=1, both_pass=15)
    alone = compare_paired(a, b, kind="binary")
    assert alone.significant and alone.p_value < 0.05

    two = compare_variants(build_log(from_pairs(a, b)), **FAST)
    assert two.winner == "B" and not two.holm

    # A third variant (a copy of A) makes three comparisons; Holm multiplies the smallest p by 3.
    log = build_log({"A": [[x] for x in a], "B": [[y] for y in b], "C": [[x] for x in a]})
    report = compare_variants(log, **FAST)
    assert report.holm
    pairs = {(c.a, c.b): c for c in report.comparisons}
    assert set(pairs) == {("A", "B"), ("A", "C"), ("B", "C")}
    ab = pairs[("A", "B")]
    assert ab.p_value == pytest.approx(alone.p_value)
    assert ab.adjusted_p == pytest.approx(min(1.0, 3 * alone.p_value))
    assert ab.adjusted_p > 0.05 and not ab.significant and ab.winner is None
    assert report.winner is None
    assert report.verdict.startswith("Not enough evidence") and "Holm" in report.verdict


def test_three_variants_with_a_clear_best():
    rng = random.Random(3)
    n = 120
    log = build_log(
        {
            "zero": [[1.0 if rng.random() < 0.3 else 0.0] for _ in range(n)],
            "few": [[1.0 if rng.random() < 0.9 else 0.0] for _ in range(n)],
            "cot": [[1.0 if rng.random() < 0.35 else 0.0] for _ in range(n)],
        }
    )
    report = compare_variants(log, **FAST)
    assert report.winner == "few"
    assert report.verdict.startswith("few is best on pass: it beats zero and cot")
    for c in report.comparisons:
        if "few" in (c.a, c.b):
            assert c.significant and c.winner == "few"


def test_baseline_with_three_variants_compares_only_against_it():
    rng = random.Random(5)
    n = 100
    log = build_log(
        {
            "base": [[1.0 if rng.random() < 0.4 else 0.0] for _ in range(n)],
            "same": [[1.0 if rng.random() < 0.4 else 0.0] for _ in range(n)],
            "better": [[1.0 if rng.random() < 0.95 else 0.0] for _ in range(n)],
        }
    )
    report = compare_variants(log, baseline="base", **FAST)
    assert {(c.a, c.b) for c in report.comparisons} == {("base", "same"), ("base", "better")}
    assert report.winner == "better"
    assert "no other variant beats the baseline base" in report.verdict


def test_graded_scores_use_wilcoxon_and_means():
    rng = np.random.default_rng(7)
    base = rng.normal(6.0, 1.0, 50)
    log = build_log(
        {"A": [[x] for x in base], "B": [[x + 1.5 + rng.normal(0, 0.5)] for x in base]}, kind="graded"
    )
    assert resolve_metric(log) == ("judge", "graded")
    report = compare_variants(log, **FAST)
    (c,) = report.comparisons
    assert report.metric == "judge" and report.kind == "graded" and c.test == "Wilcoxon"
    assert c.mean_a == pytest.approx(float(np.mean(base)))
    assert c.w_plus is not None and c.w_plus > c.w_minus
    assert report.winner == "B" and c.diff > 1.0


def test_graded_without_effect_reports_items_needed():
    rng = np.random.default_rng(11)
    a = rng.normal(6.0, 1.0, 30)
    b = a + rng.normal(0.05, 1.0, 30)
    report = compare_variants(
        build_log({"A": [[x] for x in a], "B": [[y] for y in b]}, kind="graded"), **FAST
    )
    (c,) = report.comparisons
    assert not c.significant and report.winner is None
    assert c.needed_items is not None and c.needed_items > 30
    assert report.verdict.startswith("Not enough evidence")


# ------------------------------------------------------------------------------------ repeats and pairing


def test_repeats_binary_majority_vote_and_flip_rate():
    log = build_log(
        {
            "A": [[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1], [0, 1, 1]],
            "B": [[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]],
        }
    )
    report = compare_variants(log, **FAST)
    a, b = report.variant("A"), report.variant("B")
    # Majority: items 0, 3, 4 pass; items 1 and 2 fail.
    assert a.mean == pytest.approx(3 / 5)
    assert a.flip_rate == pytest.approx(3 / 5) and a.flipped_units == 3
    assert b.flip_rate == 0.0 and b.flipped_units == 0
    assert a.n_results == 15 and a.pass_rate == pytest.approx(8 / 15)
    assert report.comparisons[0].b01 == 2 and report.comparisons[0].b10 == 0


def test_repeat_tie_counts_as_fail():
    log = build_log({"A": [[1, 0], [1, 1]], "B": [[0, 0], [0, 1]]})
    report = compare_variants(log, **FAST)
    assert report.variant("A").mean == pytest.approx(1 / 2)
    assert report.variant("B").mean == 0.0
    assert report.variant("A").flip_rate == pytest.approx(1 / 2)


def test_graded_repeats_are_averaged_and_flip_rate_is_the_range():
    log = build_log({"A": [[5, 7], [6, 6], [2, 5]], "B": [[8, 8], [8, 9], [8, 8]]}, kind="graded")
    report = compare_variants(log, **FAST)
    a = report.variant("A")
    assert a.mean == pytest.approx((6 + 6 + 3.5) / 3)
    assert a.flip_rate == pytest.approx((2 + 0 + 3) / 3) and a.flipped_units is None
    assert report.variant("B").flip_rate == pytest.approx(1 / 3)


def test_single_repeat_has_no_flip_rate():
    report = compare_variants(build_log(from_pairs([1, 0, 1], [1, 1, 1])), **FAST)
    assert report.variant("A").flip_rate is None and report.variant("A").flipped_units is None


def test_units_pair_by_item_and_model_and_unpaired_items_are_dropped():
    a, b = discordant(20, b01=6, b10=1, both_pass=8)
    log = build_log(from_pairs(a, b), models=("m1", "m2"))
    report = compare_variants(log, **FAST)
    assert report.n_units == 40 and report.dropped_units == 0
    assert (report.comparisons[0].b01, report.comparisons[0].b10) == (12, 2)

    only_m2 = compare_variants(log, model="m2", **FAST)
    assert only_m2.n_units == 20 and only_m2.models == ["m2"]

    # Remove B's result for one item on one model: that unit drops out of every comparison.
    trimmed = log.model_copy(
        update={
            "results": [
                r
                for r in log.results
                if not (r.variant == "B" and r.model == "m1" and r.item_id == "item-000")
            ]
        }
    )
    report = compare_variants(trimmed, **FAST)
    assert report.n_units == 39 and report.dropped_units == 1


def test_errored_results_fail_binary_metrics_and_are_missing_for_graded():
    failed = ItemResult(item_id="x", variant="A", model="m", inputs={}, error="RateLimited: 429")
    assert metric_value(failed, "pass", "binary") == 0.0
    assert metric_value(failed, "judge", "graded") is None
    assert metric_value(failed, "exact", "binary") == 0.0
    scored = ItemResult(
        item_id="x", variant="A", model="m", inputs={}, scores=[Score(scorer="sim", value=0.7, kind="binary")]
    )
    assert metric_value(scored, "sim", "binary") == 1.0  # no threshold: value >= 0.5 passes

    log = build_log({"A": [[7], [6], [8]], "B": [[9], [9], [9]]}, kind="graded")
    results = list(log.results)
    i = next(k for k, r in enumerate(results) if r.variant == "B" and r.item_id == "item-001")
    results[i] = results[i].model_copy(update={"scores": [], "error": "timeout", "output": None})
    report = compare_variants(log.model_copy(update={"results": results}), **FAST)
    assert report.n_units == 2 and report.dropped_units == 1
    assert report.variant("B").errors == 1


def test_metric_pass_is_default_and_scorers_can_be_chosen():
    a, b = discordant(40, b01=12, b10=1, both_pass=10)
    log = build_log(from_pairs(a, b))
    assert resolve_metric(log) == ("pass", "binary")
    assert compare_variants(log, metric="exact", **FAST).metric == "exact"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "bleu"}, "metric 'bleu' is not a scorer"),
        ({"baseline": "Z"}, "baseline 'Z' is not a variant"),
        ({"alpha": 1.5}, "alpha must be strictly between 0 and 1"),
        ({"model": "nope"}, "model 'nope' has no results"),
    ],
)
def test_bad_arguments_raise_eval_errors_that_say_what(kwargs, message):
    log = build_log(from_pairs([1, 0, 1], [1, 1, 1]))
    with pytest.raises(EvalError, match=message) as info:
        compare_variants(log, **kwargs)
    assert "run run-test" in str(info.value)


def test_one_variant_cannot_be_compared():
    log = build_log({"A": [[1], [0]]})
    with pytest.raises(EvalError, match="at least two variants"):
        compare_variants(log)


# ------------------------------------------------------------------------------------------- gates, JSON


def test_thresholds_are_checked_per_variant():
    a, b = discordant(20, b01=8, b10=0, both_pass=8)  # A passes 8/20, B 16/20
    log = build_log(from_pairs(a, b), thresholds={"pass_rate": 0.6, "exact": 0.3, "error_rate": 0.0})
    checks = {(c.name, c.variant): c for c in check_thresholds(log)}
    assert checks[("pass_rate", "A")].value == pytest.approx(0.4) and not checks[("pass_rate", "A")].passed
    assert checks[("pass_rate", "B")].value == pytest.approx(0.8) and checks[("pass_rate", "B")].passed
    assert checks[("exact", "A")].passed and checks[("exact", "A")].direction == "min"
    assert checks[("error_rate", "A")].passed and checks[("error_rate", "A")].direction == "max"
    report = compare_variants(log, **FAST)
    assert not report.thresholds_passed

    unknown = build_log(from_pairs(a, b), thresholds={"vibes": 0.5})
    with pytest.raises(EvalError, match="threshold 'vibes'") as info:
        check_thresholds(unknown)
    assert "thresholds.vibes" in str(info.value)


def test_report_json_is_versioned_and_round_trips():
    a, b = discordant(30, b01=9, b10=1, both_pass=10)
    report = compare_variants(build_log(from_pairs(a, b)), **FAST)
    data = report.model_dump(mode="json")
    assert data["schema_version"] == 1
    assert ABReport.model_validate_json(report.model_dump_json()) == report


def test_same_seed_same_interval_and_the_log_seed_is_used():
    rng = np.random.default_rng(2)
    a = rng.normal(5.0, 1.0, 40)
    log = build_log({"A": [[x] for x in a], "B": [[x + rng.normal(0.3, 1.0)] for x in a]}, kind="graded")
    first = compare_variants(log, **FAST).comparisons[0]
    again = compare_variants(log, **FAST).comparisons[0]
    other = compare_variants(log.model_copy(update={"seed": 99}), **FAST).comparisons[0]
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)


def test_eval_log_reads_back_from_json():
    log = build_log(from_pairs([1, 0], [1, 1]), thresholds={"pass_rate": 0.5})
    again = EvalLog.model_validate_json(log.model_dump_json())
    assert compare_variants(again, **FAST) == compare_variants(log, **FAST)


def test_aggregate_gates_use_the_item_weighted_mean_over_models():
    from promptkit.evals._eval_log import Aggregate

    log = build_log(from_pairs([1, 0], [1, 1]), models=("m1", "m2"), thresholds={"pass@1": 0.5})
    log = log.model_copy(
        update={
            "aggregates": [
                Aggregate(
                    scorer="code",
                    metric="pass@1",
                    variant="A",
                    model="m1",
                    value=0.2,
                    n_items=30,
                    n_samples=5,
                ),
                Aggregate(
                    scorer="code",
                    metric="pass@1",
                    variant="A",
                    model="m2",
                    value=0.9,
                    n_items=10,
                    n_samples=5,
                ),
                Aggregate(
                    scorer="code",
                    metric="pass@1",
                    variant="B",
                    model="m1",
                    value=0.6,
                    n_items=30,
                    n_samples=5,
                ),
                Aggregate(
                    scorer="code",
                    metric="pass@1",
                    variant="B",
                    model="m2",
                    value=0.6,
                    n_items=10,
                    n_samples=5,
                ),
            ]
        }
    )
    checks = {c.variant: c for c in check_thresholds(log)}
    assert checks["A"].value == pytest.approx((0.2 * 30 + 0.9 * 10) / 40) and not checks["A"].passed
    assert checks["B"].value == pytest.approx(0.6) and checks["B"].passed
