"""The shipped example suite: it loads, its dataset is honest, and the runner scores it end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest
from promptkit.evals import load_suite, run_suite

EXAMPLE = Path(__file__).parents[2] / "evals" / "examples" / "debug_fewshot.yaml"


def test_example_suite_is_valid_and_large_enough() -> None:
    suite = load_suite(EXAMPLE)
    items = suite.items()
    assert len(items) >= 20
    assert [v.name for v in suite.spec.variants] == ["zero-shot", "few-shot"]
    assert suite.spec.thresholds == {"pass_rate": 0.5}


def test_every_reference_fix_passes_and_every_bug_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that returns the reference fix passes every item; one that returns the bug fails every item."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    suite = load_suite(EXAMPLE)
    items = suite.items()

    def answer(request: GenerateRequest) -> str:
        last = request.messages[-1].content
        item = next(it for it in items if it.row["code"].strip() in last)
        few_shot = any("moving_average" in m.content for m in request.messages)
        fix = item.expected if few_shot else item.row["code"]
        return f"## Diagnosis\nsee fix\n\n## Fix\n```python\n{fix}```\n\n## Explanation\nscripted"

    log = run_suite(
        suite, backends={"cheap": FunctionBackend(answer, name="cheap")}, progress=False, cache=False
    )
    by_variant: dict[str, list[bool | None]] = {}
    for result in log.results:
        by_variant.setdefault(result.variant, []).append(result.passed)
    assert by_variant["few-shot"] == [True] * len(items)
    assert by_variant["zero-shot"] == [False] * len(items)
    code = {
        r.item_id: next(s for s in r.scores if s.scorer == "code_exec")
        for r in log.results
        if r.variant == "zero-shot"
    }
    assert all(s.rationale for s in code.values())  # each bug fails with its traceback or assertion
    assert [a.value for a in log.aggregates if a.variant == "few-shot"] == [1.0]


def test_the_bug_technique_suite_scores_a_bare_code_block_and_sections_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """evals/techniques/debug.yaml: plain and framed prompts take the fix as a bare code block, the debug
    template as sections; a model returning the reference fix passes every item in every variant."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    suite = load_suite(EXAMPLE.parents[1] / "techniques" / "debug.yaml")
    items = suite.items()
    seen: dict[str, list[str]] = {}

    def answer(request: GenerateRequest) -> str:
        last = request.messages[-1].content
        item = next(it for it in items if it.row["code"].strip() in last)
        roles = [m.role for m in request.messages]
        seen.setdefault(item.id, []).append("".join(r[0] for r in roles))
        if "## Fix" in request.messages[0].content:  # the debug template asks for its sections
            return (
                f"## Diagnosis\nsee fix\n\n## Fix\n```python\n{item.expected}```\n\n## Explanation\nscripted"
            )
        return f"```python\n{item.expected}```"

    log = run_suite(
        suite, backends={"small": FunctionBackend(answer, name="small")}, progress=False, cache=False
    )
    assert {r.variant for r in log.results} == {
        "plain",
        "framing",
        "diagnose-first",
        "diagnose-first-fewshot",
    }
    assert all(r.passed for r in log.results), [(r.variant, r.item_id) for r in log.results if not r.passed]
    # plain: one user message; framing: system + user; the fewshot variant carries the template's examples.
    shapes = sorted(set(seen[items[0].id]))
    assert "u" in shapes and "su" in shapes and any(len(s) > 2 for s in shapes), shapes
