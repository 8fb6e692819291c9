"""Loading RouteLLM's recorded outcomes: counts, contamination exclusion, MT-Bench answers without the judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptkit.errors import EvalError
from promptkit.evals.routing import load_routellm
from promptkit.evals.routing._routellm import load_routellm_csv, weak_answer_from_judge_prompt


def _contaminated(folder: Path) -> list[str]:
    lines = (folder / "contaminated_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["eval_prompt"] for line in lines if line.strip()]


@pytest.mark.parametrize(
    ("benchmark", "total", "excluded"),
    [("gsm8k", 1319, 12), ("mmlu", 14042, 5), ("mt_bench", 80, 8)],
)
def test_counts_after_contamination_exclusion(routellm_dir, benchmark, total, excluded):
    data = load_routellm(benchmark, routellm_dir)
    assert (data.total, data.excluded, len(data)) == (total, excluded, total - excluded)
    assert not set(_contaminated(routellm_dir / benchmark)) & set(data.prompts)


def test_model_qualities_match_the_readme(routellm_dir):
    gsm = load_routellm("gsm8k", routellm_dir)
    mmlu = load_routellm("mmlu", routellm_dir)
    mt = load_routellm("mt_bench", routellm_dir)
    assert gsm.weak.mean() == pytest.approx(0.638, abs=0.005) and gsm.strong.mean() == pytest.approx(
        0.857, abs=0.005
    )
    assert mmlu.weak.mean() == pytest.approx(0.681, abs=0.005) and mmlu.strong.mean() == pytest.approx(
        0.806, abs=0.005
    )
    assert (
        mt.graded
        and mt.weak.mean() == pytest.approx(8.3, abs=0.1)
        and mt.strong.mean() == pytest.approx(9.2, abs=0.1)
    )
    assert len(set(mmlu.groups)) == 57 and mmlu.weak_answers is None
    assert gsm.weak_answers is not None and "####" in gsm.weak_answers[0]


def test_mt_bench_answers_hold_only_the_weak_models_words(routellm_dir):
    data = load_routellm("mt_bench", routellm_dir)
    assert data.weak_answers is not None and all(data.weak_answers)
    for answer in data.weak_answers:
        for leak in ("Reference Answer", "Reference answer", "Rating: [[", "### User:", "impartial judge"):
            assert leak not in answer


def test_judge_prompt_extraction():
    turn1 = (
        "[Instruction]\nJudge it.\n[Question]\nWhat is 2+2?\n\n[The Start of Reference Answer]\n4\n"
        "[The End of Reference Answer]\n\n[The Start of Assistant's Answer]\n It is 5.\n"
        "[The End of Assistant's Answer]"
    )
    assert weak_answer_from_judge_prompt(turn1, 1) == "It is 5."
    turn2 = (
        "<|The Start of Reference Answer|>\n\n### User:\nQ1\n\n### Reference answer:\nR1\n\n### User:\nQ2\n\n"
        "### Reference answer:\nR2\n\n<|The End of Reference Answer|>\n\n\n"
        "<|The Start of Assistant A's Conversation with User|>\n\n### User:\nQ1\n\n### Assistant A:\nA1\n\n"
        "### User:\nQ2\n\n### Assistant A:\nA2 final\n\n<|The End of Assistant A's Conversation with User|>"
    )
    assert weak_answer_from_judge_prompt(turn2, 2) == "A2 final"


def test_limit_is_a_seeded_sample(routellm_dir):
    a = load_routellm("gsm8k", routellm_dir, limit=50, seed=1)
    b = load_routellm("gsm8k", routellm_dir, limit=50, seed=1)
    c = load_routellm("gsm8k", routellm_dir, limit=50, seed=2)
    assert len(a) == 50 and a.prompts == b.prompts and a.prompts != c.prompts
    assert a.weak_answers is not None and len(a.weak_answers) == 50


def test_errors_name_the_file(tmp_path, routellm_dir):
    with pytest.raises(EvalError, match="unknown benchmark"):
        load_routellm("hellaswag", routellm_dir)
    with pytest.raises(EvalError, match="not found") as info:
        load_routellm("gsm8k", tmp_path)
    assert str(tmp_path / "gsm8k") in str(info.value)
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    (folder / "contaminated_prompts.jsonl").write_text("", encoding="utf-8")
    weak, strong = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    (folder / "gsm8k_responses.csv").write_text(
        f"prompt,{weak},{strong},{weak}_response\nq1,True,False,a\nq2,maybe,True,b\n", encoding="utf-8"
    )
    with pytest.raises(EvalError, match="True/False") as info:
        load_routellm("gsm8k", tmp_path)
    assert "gsm8k_responses.csv:3" in str(info.value)


def test_single_csv(tmp_path):
    weak, strong = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    path = tmp_path / "mine.csv"
    path.write_text(f"prompt,{weak},{strong}\nq1,True,False\nq2,False,True\n", encoding="utf-8")
    data = load_routellm_csv(path)
    assert data.prompts == ["q1", "q2"] and data.weak.tolist() == [1.0, 0.0] and data.weak_answers is None
