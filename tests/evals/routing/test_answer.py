"""Weak-answer features: arithmetic re-evaluation, final answers, hedging, refusal, truncation."""

from __future__ import annotations

import pytest

from promptkit.evals.routing import (
    ANSWER_FEATURES,
    answer_feature_vector,
    answer_features,
    arithmetic_errors,
    final_answer,
    heuristic_risk,
)

GOOD = "She has 16 - 3 = 13 eggs, then 13 - 4 = 9 left.\nShe makes 9 * 2 = <<9*2=18>>18 dollars.\n#### 18"
BAD = "She has 16 - 3 = 12 eggs, then 12 - 4 = 8 left. I think she makes 8 * 2 = 17.5 dollars.\n#### 17.5"


def test_arithmetic_steps_are_re_evaluated():
    # "9 * 2 = <<9*2=18>>18": the calculator annotation is the checked step
    assert arithmetic_errors(GOOD) == (3, 0, [13.0, 9.0, 18.0])
    checked, wrong, _ = arithmetic_errors(BAD)
    assert (checked, wrong) == (3, 2)  # 16 - 3 != 12 and 8 * 2 != 17.5; 12 - 4 = 8 holds
    assert arithmetic_errors("(2 + 3) x 4 = 20 and 1,000 / 4 = 250 and $5 * 3 = $15") == (
        3,
        0,
        [20.0, 250.0, 15.0],
    )
    assert arithmetic_errors("10 / 0 = 5")[0] == 0  # not checkable, not counted


def test_final_answer():
    assert final_answer(GOOD) == 18.0
    assert final_answer("The answer is: 1,250 apples.") == 1250.0
    assert final_answer("So the total is 42.") == 42.0
    assert final_answer("no numbers here") is None


def test_features_flag_risky_answers():
    good, bad = answer_features(GOOD, "16 eggs, eats 3, bakes 4, sells at $2"), answer_features(BAD)
    assert good["wrong_steps"] == 0 and bad["wrong_steps"] == 2
    assert good["final_non_integer"] == 0 and bad["final_non_integer"] == 1
    assert bad["hedges"] >= 1 and good["hedges"] == 0
    assert good["question_numbers_used"] == 1.0 and good["question_numbers_missing"] == 0
    assert answer_features("I'm sorry, but I cannot help with that.")["refusal"] == 1.0
    assert answer_features("word " * 60 + "and then the")["truncated"] == 1.0
    repeated = "This line is repeated again and again.\n" * 3
    assert answer_features(repeated)["repeated_lines"] == 2.0
    assert len(answer_feature_vector(GOOD)) == len(ANSWER_FEATURES)


def test_heuristic_ranks_the_bad_answer_riskier():
    assert heuristic_risk(BAD) > heuristic_risk(GOOD)
    assert heuristic_risk("I'm sorry, I cannot do that.") > heuristic_risk(GOOD)


@pytest.mark.parametrize("text", ["", "   ", "####"])
def test_degenerate_answers_do_not_crash(text):
    features = answer_features(text)
    assert features["has_final"] == 0.0 and features["n_steps"] == 0.0
