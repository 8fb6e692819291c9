"""Known truth: the code-execution scorer on HumanEval's canonical solutions (all pass) and broken ones (none)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from promptkit.evals import DatasetSpec, Generation, build_scorer, load_dataset, pass_at_k_array

HUMANEVAL = Path(__file__).parents[2] / "../shared/data/humaneval/HumanEval.jsonl.gz"

pytestmark = pytest.mark.skipif(not HUMANEVAL.is_file(), reason="shared/data is not beside the repository")


def negate_returns(solution: str) -> str:
    """The canonical solution with every returned value negated (still valid Python)."""
    return re.sub(r"^(\s*)return (.+)$", r"\1return not (\2)", solution, flags=re.MULTILINE)


def test_canonical_solutions_all_pass_and_negated_ones_all_fail() -> None:
    items = load_dataset(DatasetSpec(path=str(HUMANEVAL), id_field="task_id"))
    scorer = build_scorer({"type": "code_exec", "prompt_field": "prompt", "k": [1, 2], "timeout_s": 20})

    async def score_all() -> tuple[list, list]:
        good = [scorer(it, Generation(text=it.row["canonical_solution"]), None) for it in items]
        bad = [
            scorer(it, Generation(text=negate_returns(it.row["canonical_solution"])), None) for it in items
        ]
        results = await asyncio.gather(*good, *bad)
        return list(results[: len(items)]), list(results[len(items) :])

    good, bad = asyncio.run(score_all())
    assert len(items) == 164
    failures = [(it.id, s.rationale) for it, s in zip(items, good, strict=True) if not s.passed]
    assert failures == []
    assert all(s.value == 1.0 for s in good)
    survivors = [it.id for it, s in zip(items, bad, strict=True) if s.passed]
    assert survivors == []
    # The broken programs fail on their tests, not because the negation made them unparsable.
    assert not any("SyntaxError" in (s.rationale or "") for s in bad)

    # pass@k over n=2 samples per problem (one canonical, one broken), from the scored data.
    ns = [2] * len(items)
    cs = [int(bool(g.passed)) + int(bool(b.passed)) for g, b in zip(good, bad, strict=True)]
    assert pass_at_k_array(ns, cs, 1) == pytest.approx(sum(cs) / sum(ns))
    assert pass_at_k_array(ns, cs, 2) == pytest.approx(sum(1 for c in cs if c > 0) / len(cs))
    assert pass_at_k_array(ns, cs, 1) == pytest.approx(0.5)


def test_body_replaced_by_pass_fails_every_problem() -> None:
    items = load_dataset(DatasetSpec(path=str(HUMANEVAL), id_field="task_id", limit=16))
    scorer = build_scorer({"type": "code_exec", "prompt_field": "prompt"})

    async def score_all() -> list:
        return list(await asyncio.gather(*(scorer(it, Generation(text="    pass\n"), None) for it in items)))

    scores = asyncio.run(score_all())
    assert [s.passed for s in scores] == [False] * len(items)
    assert all(s.meta["returncode"] != 0 for s in scores)
