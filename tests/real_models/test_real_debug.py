"""The `debug` template on the real 0.5B: the answer parses, and the fix passes the bug's own tests."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

from promptkit.execution import Limits, arun_sandboxed, build_program, extract_code
from promptkit.generation import agenerate

BUGS = Path(__file__).parents[2] / "evals" / "examples" / "bugs.jsonl"
# Three of the suite's 22 bugs that the 0.5B fixes with this template (6 of 22 in the format A/B, BENCHMARKS.md):
# a crash, a wrong starting value and a wrong rule.
CHOSEN = ("mean-empty", "max-negative", "leap-year")


def _bugs() -> dict[str, dict[str, str]]:
    items = [json.loads(line) for line in BUGS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {item["id"]: item for item in items}


async def _passes(fix: str, bug: dict[str, str]) -> tuple[bool, str]:
    program = build_program(
        extract_code(fix, bug["entry_point"]), prompt=None, test=bug["test"], entry_point=bug["entry_point"]
    )
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "program.py").write_text(program, encoding="utf-8")
        result = await arun_sandboxed(
            [sys.executable, "-I", "program.py"], cwd=Path(folder), limits=Limits(wall_s=20)
        )
    return result.ok, (result.stderr or result.stdout)[-400:]


@pytest.mark.parametrize("bug_id", CHOSEN)
async def test_the_debug_fix_passes_the_bugs_tests(bug_id, small_backend, tmp_path):
    bug = _bugs()[bug_id]
    result = await agenerate(
        "debug",
        {
            "language": bug["language"],
            "code": bug["code"],
            "error": bug["error"],
            "expected": bug["expected_behaviour"],
            "actual": bug["actual"],
        },
        model=small_backend,
        examples="first_k:1",
        temperature=0,
        max_tokens=768,
        cache=False,
        ledger=False,
    )
    assert result.output.diagnosis.strip() and result.output.explanation.strip()
    ok, why = await _passes(result.output.fix, bug)
    assert ok, f"the fix fails the bug's tests: {why}\n--- answer ---\n{result.text}"
