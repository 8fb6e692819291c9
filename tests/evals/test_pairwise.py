"""Pairwise LLM-as-judge in A/B: both orders really asked, agreement, ties, position bias, Holm, errors, cache."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from promptkit.backends import FunctionBackend
from promptkit.cache import ExactCache
from promptkit.errors import EvalError
from promptkit.evals import PairwiseJudge
from promptkit.evals._ab import ABReport, compare_variants
from promptkit.evals._pairwise import (
    LOW_AGREEMENT,
    PairwiseJudgement,
    compare_pairwise,
    judge_pairs,
    wilson_interval,
)
from promptkit.evals._stats import holm, mcnemar_exact, required_pairs_mcnemar

from .test_ab_logs import build_log

FAST = {"n_resamples": 2000}
OFF = {"cache": False, "ledger": False}


def answers(request: Any) -> tuple[str, str]:
    """The two answers the judge_pairwise template showed, in the order shown."""
    # The rendered task: after the template's few-shot turns, before any re-ask feedback appended after it.
    text = [m.content for m in request.messages if m.role == "user" and "First answer:" in m.content][-1]
    first = text.split("First answer:")[1].split("Second answer:")[0].strip()
    return first, text.split("Second answer:")[1].strip()


def quality(answer: str) -> int:
    return answer.count("GOOD")


def fair(request: Any) -> dict[str, str]:
    """Prefers the answer with more GOOD marks, wherever it is shown; a tie when they have as many."""
    first, second = answers(request)
    if quality(first) == quality(second):
        return {"rationale": "equally good", "winner": "tie"}
    better = "first" if quality(first) > quality(second) else "second"
    return {"rationale": f"the {better} answer is better", "winner": better}


def always_first(request: Any) -> dict[str, str]:
    return {"rationale": "the first answer reads better", "winner": "first"}


def marked_log(good: dict[str, set[int]], n: int, variants: tuple[str, ...] = ("A", "B")):
    """A log of n items whose outputs carry one GOOD mark per variant listed for that item in ``good``."""
    values = {v: [[1.0] for _ in range(n)] for v in variants}

    def output(variant: str, i: int, r: int) -> str:
        return f"{variant} answer {i}" + (" GOOD" if i in good.get(variant, set()) else "")

    return build_log(values, output=output)


# ------------------------------------------------------------------------------------------ decisions


def test_fair_judge_declares_the_better_variant_and_the_orders_always_agree():
    log = marked_log({"B": {i for i in range(20) if i % 5}}, 20)  # B better on 16 items, equal on 4
    judge = FunctionBackend(fair, name="fair-judge")
    judgements = judge_pairs(log, judge, **OFF)
    assert judge.calls == 40 and len(judgements) == 20
    assert all(j.verdict is not None and j.verdict.agree for j in judgements)
    assert {j.winner for j in judgements} == {"B", None}

    pairwise = compare_pairwise(judgements)
    (c,) = pairwise.comparisons
    assert (c.a, c.b, c.n, c.wins_a, c.wins_b, c.ties, c.disagreements) == ("A", "B", 20, 0, 16, 4, 0)
    assert c.agreement_rate == 1.0 and pairwise.agreement_rate == 1.0
    assert c.first_position_rate == 0.5  # it picked B both when B was first and when B was second
    assert c.win_rate_b == 1.0
    assert (c.ci_low, c.ci_high) == pytest.approx(wilson_interval(16, 16, 0.95))
    assert c.p_value == pytest.approx(mcnemar_exact([0] * 16, [1] * 16).p_value)
    assert c.p_value == pytest.approx(2 * 0.5**16)
    assert c.significant and c.winner == "B" and pairwise.winner == "B" and not c.holm
    assert not pairwise.position_bias and pairwise.warnings == []
    assert pairwise.verdict == (
        "Judge prefers B over A in 16 of 20 items (A in 0, 4 ties; sign test p<0.0001; orders agreed 100%)."
    )
    assert pairwise.judges == ["fair-judge"]

    # The mirror image: the judge follows the outputs, not the variant names or positions.
    mirrored = compare_pairwise(
        judge_pairs(marked_log({"A": {i for i in range(20) if i % 5}}, 20), FunctionBackend(fair), **OFF)
    )
    assert mirrored.winner == "A" and mirrored.comparisons[0].wins_a == 16


def test_the_swap_is_real_each_item_is_shown_in_both_orders():
    log = marked_log({"B": {1, 2}}, 4)
    judge = FunctionBackend(fair)
    judgements = judge_pairs(log, judge, rubric="Prefer GOOD answers.", **OFF)
    shown = Counter(answers(request) for request in judge.history)
    for i in range(4):
        out_a = log.frame()[("A", "cheap", f"item-{i:03d}", 0)].output
        out_b = log.frame()[("B", "cheap", f"item-{i:03d}", 0)].output
        assert shown[(out_a, out_b)] == 1  # A shown first
        assert shown[(out_b, out_a)] == 1  # and B shown first
    assert sum(shown.values()) == 8
    prompts = [request.messages[-1].content for request in judge.history]
    assert all("Prefer GOOD answers." in p for p in prompts)
    # The task is the item's inputs and the reference its expected answer.
    assert any('"question": "question 3"' in p and "Reference answer:\nanswer 3" in p for p in prompts)
    # The verdict maps each order's answer back to the variant that was shown there.
    by_item = {j.item_id: j.verdict for j in judgements}
    assert (by_item["item-001"].order_ab, by_item["item-001"].order_ba) == ("b", "b")
    assert by_item["item-001"].rationale_ab == "the second answer is better"  # B was second when A went first
    assert by_item["item-001"].rationale_ba == "the first answer is better"


def test_a_position_biased_judge_gives_ties_zero_agreement_no_winner_and_a_warning():
    log = marked_log({"B": set(range(12))}, 12)  # B is clearly better, but the judge only looks at positions
    judgements = judge_pairs(log, FunctionBackend(always_first), **OFF)
    for j in judgements:
        assert j.verdict is not None
        assert (j.verdict.order_ab, j.verdict.order_ba, j.verdict.winner, j.verdict.agree) == (
            "a",
            "b",
            "tie",
            False,
        )

    report = compare_variants(log, judgements=judgements, **FAST)
    pairwise = report.pairwise
    assert pairwise is not None
    (c,) = pairwise.comparisons
    assert (c.wins_a, c.wins_b, c.ties, c.disagreements) == (0, 0, 12, 12)
    assert c.agreement_rate == 0.0 and c.first_position_rate == 1.0 and c.win_rate_b is None
    assert c.position_bias and not c.significant and c.winner is None and c.p_value == 1.0
    assert c.needed_items is None  # no observed effect to size
    assert pairwise.winner is None and pairwise.position_bias
    assert pairwise.verdict.startswith("Not enough evidence that the judge prefers B or A")
    assert "orders agreed 0%" in pairwise.verdict and "position-biased" in pairwise.verdict
    assert len(pairwise.warnings) == 1 and pairwise.warnings[0].startswith("Position bias:")
    assert "the answer shown first won 100% of decisive answers" in pairwise.warnings[0]


def test_partial_position_bias_is_flagged_below_the_agreement_threshold():
    # 10 items: the judge is fair on 6 and always says "first" on 4, so 60% of the orders agree.
    log = marked_log({"B": set(range(10))}, 10)

    def half_biased(request: Any) -> dict[str, str]:
        first, second = answers(request)
        index = int(first.split()[2])
        return always_first(request) if index < 4 else fair(request)

    pairwise = compare_pairwise(judge_pairs(log, FunctionBackend(half_biased), **OFF))
    (c,) = pairwise.comparisons
    assert c.agreement_rate == pytest.approx(0.6) and 0.6 < LOW_AGREEMENT
    assert (c.wins_b, c.disagreements, c.ties) == (6, 4, 4)
    # Decisive answers: 8 fair ones split evenly between positions, 8 biased ones all "first".
    assert c.first_position_rate == pytest.approx((6 + 8) / 20)
    assert c.winner == "B" and c.position_bias  # significant, but flagged as weak
    assert "Judge prefers B over A in 6 of 10 items" in c.verdict and "position-biased" in c.verdict


def test_ties_are_excluded_from_the_win_rate_and_the_sign_test_and_sized():
    # 10 items: B better on 3, both good on 5 (the judge says tie), neither on 2 (tie).
    log = marked_log({"B": {0, 1, 2, 3, 4, 5, 6, 7}, "A": {3, 4, 5, 6, 7}}, 10)
    pairwise = compare_pairwise(judge_pairs(log, FunctionBackend(fair), **OFF))
    (c,) = pairwise.comparisons
    assert (c.wins_b, c.wins_a, c.ties, c.disagreements) == (3, 0, 7, 0)
    assert c.win_rate_b == 1.0 and (c.ci_low, c.ci_high) == pytest.approx(wilson_interval(3, 3))
    assert c.p_value == pytest.approx(0.25) and not c.significant and c.winner is None
    assert c.needed_items == required_pairs_mcnemar(0.3, 0.0, 0.05, 0.8)
    assert f"about {c.needed_items} judged items would settle it" in c.verdict
    assert "B won 3, A won 0, 7 ties in 10 items" in c.verdict and not c.position_bias


def test_holm_across_three_variants_can_undo_raw_significance():
    # B is better than A and C on 6 of 12 items; A and C are identical. Raw sign tests 6-0: p = 0.03125.
    log = marked_log({"B": set(range(6))}, 12, variants=("A", "B", "C"))
    judgements = judge_pairs(log, FunctionBackend(fair), **OFF)
    assert Counter((j.a, j.b) for j in judgements) == {("A", "B"): 12, ("A", "C"): 12, ("B", "C"): 12}
    pairwise = compare_pairwise(judgements)
    assert pairwise.holm and all(c.holm for c in pairwise.comparisons)
    raw = [c.p_value for c in pairwise.comparisons]
    assert raw == pytest.approx([2 * 0.5**6, 1.0, 2 * 0.5**6])
    assert [c.adjusted_p for c in pairwise.comparisons] == pytest.approx([h.adjusted_p for h in holm(raw)])
    assert [c.adjusted_p for c in pairwise.comparisons] == pytest.approx([0.09375, 1.0, 0.09375])
    assert not any(c.significant for c in pairwise.comparisons) and pairwise.winner is None
    assert pairwise.verdict.startswith("Not enough evidence that the judge prefers any variant after Holm")
    assert "Holm p=0.094" in pairwise.comparisons[0].verdict
    assert pairwise.comparison("B", "C").wins_a == 6
    with pytest.raises(EvalError, match="no pairwise comparison of 'C' and 'B'"):
        pairwise.comparison("C", "B")

    # The same A-vs-B evidence alone, without the family of three, is significant.
    alone = compare_pairwise([j for j in judgements if (j.a, j.b) == ("A", "B")])
    assert not alone.holm and alone.winner == "B"


def test_three_variants_with_a_clear_favourite():
    log = marked_log({"C": set(range(12)), "B": {0, 1}}, 12, variants=("A", "B", "C"))
    pairwise = compare_pairwise(judge_pairs(log, FunctionBackend(fair), **OFF))
    assert pairwise.winner == "C"
    assert pairwise.verdict.startswith("Judge prefers C over A, B (Holm-adjusted sign-test p ≤")


def test_baseline_judges_only_pairs_with_it_and_orients_them():
    log = marked_log({"B": set(range(10))}, 10, variants=("A", "B", "C"))
    judge = FunctionBackend(fair)
    judgements = judge_pairs(log, judge, baseline="B", **OFF)
    assert judge.calls == 40 and {(j.a, j.b) for j in judgements} == {("B", "A"), ("B", "C")}
    pairwise = compare_pairwise(judgements, baseline="B")
    assert [(c.a, c.b, c.wins_a, c.wins_b) for c in pairwise.comparisons] == [
        ("B", "A", 10, 0),
        ("B", "C", 10, 0),
    ]
    assert pairwise.winner == "B"

    # Judgements made without a baseline are re-oriented when the report asks for one.
    plain = judge_pairs(log, FunctionBackend(fair), variants=["A", "B"], **OFF)
    oriented = compare_pairwise(plain, baseline="B")
    (c,) = oriented.comparisons
    assert (c.a, c.b, c.wins_a, c.wins_b) == ("B", "A", 10, 0)
    flipped = plain[0].swapped()
    assert (flipped.a, flipped.b, flipped.verdict.winner) == ("B", "A", "a")
    assert flipped.verdict.rationale_ab == plain[0].verdict.rationale_ba
    assert flipped.swapped() == plain[0]


def test_only_units_where_both_variants_have_an_output_are_judged():
    log = marked_log({"B": {0, 1, 2}}, 4)
    broken = log.frame()[("A", "cheap", "item-003", 0)]
    broken.output, broken.error = None, "timeout"
    judge = FunctionBackend(fair)
    judgements = judge_pairs(log, judge, **OFF)
    assert sorted(j.item_id for j in judgements) == ["item-000", "item-001", "item-002"]
    assert judge.calls == 6


# ------------------------------------------------------------------------------------- calls and errors


def test_an_invalid_answer_is_re_asked_through_generate():
    log = marked_log({"B": {0, 1}}, 2)
    seen: Counter[tuple[str, str]] = Counter()

    def flaky(request: Any) -> Any:
        key = answers(request)
        seen[key] += 1
        return "not json at all" if seen[key] == 1 else fair(request)

    judge = FunctionBackend(flaky)
    pairwise = compare_pairwise(judge_pairs(log, judge, **OFF))
    assert judge.calls == 8 and pairwise.errors == 0 and pairwise.comparisons[0].wins_b == 2


def test_a_failing_comparison_is_kept_as_an_error_and_reported():
    log = marked_log({"B": set(range(6))}, 6)

    def broken_on_item_2(request: Any) -> Any:
        first, _ = answers(request)
        return {"rationale": "?", "winner": "neither"} if "answer 2" in first else fair(request)

    judgements = judge_pairs(log, FunctionBackend(broken_on_item_2), **OFF)
    (bad,) = [j for j in judgements if j.error is not None]
    assert bad.item_id == "item-002" and bad.verdict is None and bad.winner is None
    pairwise = compare_pairwise(judgements)
    (c,) = pairwise.comparisons
    assert (c.n, c.errors, c.wins_b) == (5, 1, 5) and pairwise.errors == 1
    assert pairwise.warnings[-1].startswith("1 of 6 judge comparisons failed and are left out")
    assert "item 'item-002'" in pairwise.warnings[-1]

    with pytest.raises(EvalError, match="every one of the 6 judge comparisons failed"):
        judge_pairs(log, FunctionBackend(lambda r: {"winner": "??"}), **OFF)


def test_concurrency_is_bounded():
    log = marked_log({"B": set(range(8))}, 8)
    state = {"now": 0, "peak": 0}

    async def slow(request: Any) -> dict[str, str]:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return fair(request)

    judge_pairs(log, FunctionBackend(slow), concurrency=3, **OFF)
    assert state["peak"] == 3
    with pytest.raises(EvalError, match="concurrency must be at least 1"):
        judge_pairs(log, FunctionBackend(slow), concurrency=0, **OFF)


def test_answers_are_cached(tmp_path: Path):
    log = marked_log({"B": {0, 1, 2}}, 3)
    judge = FunctionBackend(fair)
    with ExactCache(tmp_path / "cache.sqlite") as cache:
        first = judge_pairs(log, judge, cache=cache, ledger=False)
        again = judge_pairs(log, judge, cache=cache, ledger=False)
    assert judge.calls == 6  # the second run was served from the cache
    assert [j.verdict.winner for j in again] == [j.verdict.winner for j in first]


def test_a_pairwise_judge_object_is_used_as_is_or_with_a_new_rubric():
    log = marked_log({"B": {0}}, 1)
    backend = FunctionBackend(fair)
    judge = PairwiseJudge(backend, "Rubric one.", cache=False, ledger=False)
    judge_pairs(log, judge)
    judge_pairs(log, judge, rubric="Rubric two.")
    prompts = [r.messages[-1].content for r in backend.history]
    assert sum("Rubric one." in p for p in prompts) == 2 and sum("Rubric two." in p for p in prompts) == 2
    assert judge.rubric == "Rubric one."  # the caller's judge is not changed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variants": ["A", "Z"]}, "variant(s) Z not in the log"),
        ({"variants": ["A"]}, "need at least two variants"),
        ({"baseline": "Z"}, "baseline 'Z' is not a compared variant"),
        ({"model": "nope"}, "model 'nope' has no results"),
    ],
)
def test_bad_arguments_are_eval_errors(kwargs, message):
    with pytest.raises(EvalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        judge_pairs(marked_log({}, 2), FunctionBackend(fair), **kwargs, **OFF)


# ---------------------------------------------------------------------------------------- the A/B report


def test_ab_report_stays_version_1_and_old_reports_without_pairwise_still_load():
    log = marked_log({"B": set(range(8))}, 8)
    plain = compare_variants(log, **FAST)
    old_json = plain.model_dump_json(exclude={"pairwise"})
    assert '"pairwise"' not in old_json
    loaded = ABReport.model_validate_json(old_json)
    assert loaded.schema_version == 1 and loaded.pairwise is None

    judged = compare_variants(log, judgements=judge_pairs(log, FunctionBackend(fair), **OFF), **FAST)
    again = ABReport.model_validate_json(judged.model_dump_json())
    assert again == judged and again.schema_version == 1
    assert again.pairwise is not None and again.pairwise.winner == "B"
    assert again.pairwise.judgements[0].verdict.order_ab == "b"
    # The metric verdict is untouched by the judge: every result passed, so it finds no difference.
    assert judged.verdict == plain.verdict and judged.winner is None


def test_compare_variants_passes_alpha_baseline_and_model_to_the_judge_statistics():
    log = marked_log({"B": set(range(7))}, 10)
    judgements = judge_pairs(log, FunctionBackend(fair), **OFF)
    loose = compare_variants(log, judgements=judgements, **FAST).pairwise
    strict = compare_variants(log, judgements=judgements, alpha=0.01, baseline="B", **FAST).pairwise
    assert loose.winner == "B" and loose.comparisons[0].p_value == pytest.approx(2 * 0.5**7)
    assert (
        strict.winner is None
        and strict.alpha == 0.01
        and (strict.comparisons[0].a, strict.baseline) == ("B", "B")
    )
    assert math.isclose(strict.confidence, 0.99)
    with pytest.raises(EvalError, match="no pairwise judgements for model 'other'"):
        compare_pairwise(judgements, model="other")


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(16, 16, 0.95)
    assert low == pytest.approx(16 / (16 + 1.959964**2), rel=1e-6) and high == 1.0
    low, high = wilson_interval(5, 10, 0.95)
    assert (low, high) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    with pytest.raises(EvalError):
        wilson_interval(3, 0)


def test_judgement_json_round_trips():
    j = PairwiseJudgement(model="m", item_id="i", a="A", b="B", error="boom")
    assert PairwiseJudgement.model_validate_json(j.model_dump_json()) == j
    assert j.swapped().swapped() == j
