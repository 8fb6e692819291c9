"""Every example spec, scaffolded with no model: deterministic steps pass their verifiers, model steps are
skipped with the configuration hint, and nothing pretends to have run."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.execution import NO_MODEL_HINT, execute_plan
from promptkit.planning import get_planner, load_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {"todo_api", "url_shortener", "textstats_library"}


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_scaffolds_without_a_model(spec: Path, tmp_path: Path) -> None:
    plan = get_planner("playbook").plan(load_spec(spec))
    report = execute_plan(plan, tmp_path / "out", cache=False, ledger=False)
    by_id = {s.id: s for s in report.steps}
    assert report.ok and report.no_model and report.hint == NO_MODEL_HINT
    for step in plan.steps:
        result = by_id[step.id]
        if step.uses_model:
            assert result.status == "skipped", step.id
            assert result.attempts == 0 and result.model is None and result.files == {}
            if any(not by_id[d].status == "passed" for d in step.depends_on):
                assert result.reason is not None and "(no model configured)" in result.reason
            else:
                assert result.reason == f"model step: {NO_MODEL_HINT}"
            rendered = {p for s in plan.steps if not s.uses_model for p in s.render_files}
            for pattern in step.files:
                if "*" not in pattern and pattern not in rendered:  # a skeleton to complete is rendered
                    assert not (tmp_path / "out" / pattern).exists(), pattern
        else:
            assert result.status == "passed", (step.id, result.errors)
            assert [v["name"] for v in result.verifiers] == [
                v if isinstance(v, str) else next(iter(v)) for v in step.verifiers
            ]
            assert all(v["ok"] for v in result.verifiers)
    # The workspace holds what the last render step to write each file wrote.
    final = {
        p: c for step in plan.topological_order() if not step.uses_model for p, c in step.render_files.items()
    }
    for path, content in final.items():
        assert (tmp_path / "out" / path).read_text() == content, path
    assert report.totals.model_calls == 0 and report.totals.input_tokens == 0
