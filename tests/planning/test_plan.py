"""The Plan contract: validation with step and field in every error, ordering, JSON and the tree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from promptkit.errors import PlanError
from promptkit.planning import Plan, Step, parse_spec, path_allowed, path_problem

SPEC = parse_spec(
    {
        "name": "demo",
        "summary": "A demo.",
        "stack": "python-cli",
        "entities": [{"name": "Item", "fields": [{"name": "label", "type": "str"}]}],
    }
)


def render(step_id: str, files: dict[str, str], **kw: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "title": f"make {step_id}",
        "kind": "render",
        "render_files": files,
        "files": list(files),
        **kw,
    }


def model(step_id: str, files: list[str], **kw: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "title": f"code {step_id}",
        "kind": "generate-code",
        "template": "implement_step",
        "files": files,
        **kw,
    }


def plan(*steps: dict[str, Any]) -> Plan:
    return Plan.model_validate({"spec": SPEC.model_dump(), "planner": "playbook", "steps": list(steps)})


def test_a_valid_plan_orders_its_steps():
    p = plan(
        model("c", ["pkg/c.py"], depends_on=["a", "b"]),
        render("a", {"pkg/__init__.py": ""}),
        model("b", ["pkg/b.py"], depends_on=["a"]),
        model("d", ["pkg/d.py"]),
    )
    assert [s.id for s in p.topological_order()] == ["a", "b", "c", "d"]
    assert [s.id for s in p.ready_steps(set())] == ["a", "d"]
    assert [s.id for s in p.ready_steps({"a"})] == ["b", "d"]
    assert [s.id for s in p.ready_steps({"a", "b", "d"})] == ["c"]
    assert p.ready_steps({"a", "b", "c", "d"}) == []
    assert p.step("b").depends_on == ["a"]
    assert p.step("a").uses_model is False and p.step("b").uses_model is True


def test_cycle_is_named():
    with pytest.raises(PlanError) as caught:
        plan(
            render("a", {"x.py": ""}),
            model("b", ["b.py"], depends_on=["a", "d"]),
            model("c", ["c.py"], depends_on=["b"]),
            model("d", ["d.py"], depends_on=["c"]),
        )
    message = str(caught.value)
    assert "dependency cycle" in message
    assert "b -> d -> c -> b" in message
    assert message.startswith("step 'b': depends_on:")


def test_unknown_dependency():
    with pytest.raises(PlanError, match=r"^step 'b': depends_on\[0\]: unknown step 'nope'"):
        plan(render("a", {"x.py": ""}), model("b", ["b.py"], depends_on=["nope"]))


def test_self_dependency():
    with pytest.raises(PlanError, match=r"step 'b': depends_on\[0\]: a step cannot depend on itself"):
        plan(model("b", ["b.py"], depends_on=["b"]))


def test_duplicate_ids():
    with pytest.raises(PlanError, match=r"^step 'a': id: duplicate step id 'a'"):
        plan(render("a", {"x.py": ""}), model("a", ["y.py"]))


@pytest.mark.parametrize(
    ("files", "field", "words"),
    [
        (["../outside.py"], "files[0]", "'..'"),
        (["pkg/../../outside.py"], "files[0]", "'..'"),
        (["/etc/passwd"], "files[0]", "absolute"),
        (["C:/x.py"], "files[0]", "absolute"),
        (["~/x.py"], "files[0]", "absolute"),
        (["a\\b.py"], "files[0]", "'/' separators"),
        (["ok.py", ""], "files[1]", "non-empty"),
    ],
)
def test_unsafe_paths(files: list[str], field: str, words: str):
    with pytest.raises(PlanError) as caught:
        plan(model("m", files))
    assert str(caught.value).startswith(f"step 'm': {field}: ")
    assert words in str(caught.value)


def test_unsafe_reads_are_rejected_too():
    with pytest.raises(PlanError, match=r"step 'm': reads\[0\]: .*'\.\.'"):
        plan(model("m", ["a.py"], reads=["../secrets.txt"]))


def test_render_file_outside_the_allow_list():
    step = render("r", {"pkg/a.py": "", "pkg/b.py": ""})
    step["files"] = ["pkg/a.py"]
    with pytest.raises(
        PlanError, match=r"step 'r': render_files\['pkg/b.py'\]: 'pkg/b.py' is outside the step's allow-list"
    ):
        plan(step)
    step["files"] = ["pkg/*.py"]
    assert plan(step).step("r").render_files == {"pkg/a.py": "", "pkg/b.py": ""}


def test_render_file_escaping_the_workspace():
    with pytest.raises(PlanError, match=r"render_files\['\.\./x\.py'\].*'\.\.'"):
        plan({**render("r", {"../x.py": ""}), "files": ["**"]})


def test_unknown_step_kind():
    with pytest.raises(PlanError) as caught:
        plan({**model("m", ["a.py"]), "kind": "deploy"})
    assert str(caught.value).startswith("step 'm': kind: must be one of")
    assert "'render'" in str(caught.value) and "'generate-code'" in str(caught.value)


def test_model_step_needs_a_template():
    with pytest.raises(PlanError, match=r"^step 'm': template: a generate-code step .* needs a template"):
        plan({**model("m", ["a.py"]), "template": None})


def test_render_step_rules():
    with pytest.raises(PlanError, match=r"step 'r': render_files: a render step needs"):
        plan({**render("r", {}), "files": ["a.py"]})
    with pytest.raises(PlanError, match=r"step 'r': template: a render step is applied without a model"):
        plan(render("r", {"a.py": ""}, template="implement_step"))
    with pytest.raises(PlanError, match=r"step 'm': render_files: only render steps"):
        plan(model("m", ["a.py"], render_files={"a.py": "x"}))


def test_empty_allow_list():
    with pytest.raises(PlanError, match=r"step 'm': files: the allow-list is empty"):
        plan(model("m", []))


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"pytest": {}, "ruff": {}}, "one-key mapping"),
        ("Not A Name", "not a verifier name"),
        ({"pytest": {"tests": ["../elsewhere/test_x.py"]}}, "pytest.tests"),
        ({"python-compile": {"paths": "/abs"}}, "python-compile.paths"),
    ],
)
def test_bad_verifier_specs(spec: Any, words: str):
    with pytest.raises(PlanError) as caught:
        plan(model("m", ["a.py"], verifiers=["python-compile", spec]))
    assert str(caught.value).startswith("step 'm': verifiers[1]: ")
    assert words in str(caught.value)


def test_runtime_inputs_are_not_planned():
    with pytest.raises(PlanError, match=r"step 'm': inputs: files are filled in by the executor"):
        plan(model("m", ["a.py"], inputs={"files": "x"}))


def test_type_errors_name_the_step_and_field():
    with pytest.raises(PlanError, match=r"^step 'm': max_attempts: "):
        plan(model("m", ["a.py"], max_attempts=0))
    with pytest.raises(PlanError, match=r"^step 'm': route\.difficulty: must be one of"):
        plan(model("m", ["a.py"], route={"difficulty": "extreme"}))
    with pytest.raises(PlanError, match=r"^step 'm': colour: is not a known field"):
        plan(model("m", ["a.py"], colour="red"))


def test_a_step_alone_raises_plan_errors_too():
    with pytest.raises(PlanError, match=r"^step 'x': kind: must be one of"):
        Step(id="x", title="t", kind="bake", files=["a"])  # type: ignore[arg-type]


def test_json_round_trip_is_exact():
    p = plan(
        render("a", {"pkg/__init__.py": '"""ünïcode"""\n'}),
        model(
            "b",
            ["pkg/b.py"],
            depends_on=["a"],
            inputs={"step": {"id": "b"}},
            verifiers=[{"pytest": {"tests": ["tests/test_b.py"]}}],
        ),
    )
    text = p.to_json()
    again = Plan.from_json(text)
    assert again == p
    assert again.to_json() == text
    assert json.loads(text)["steps"][1]["verifiers"] == [{"pytest": {"tests": ["tests/test_b.py"]}}]


def test_from_json_validates():
    data = json.loads(plan(render("a", {"x.py": ""})).to_json())
    data["steps"].append(model("b", ["y.py"], depends_on=["zzz"]))
    with pytest.raises(PlanError, match="unknown step 'zzz'"):
        Plan.from_json(json.dumps(data))
    with pytest.raises(PlanError, match=r"^plan\.json:1: invalid JSON"):
        Plan.from_json("{nope", source="plan.json")


def test_validate_catches_edits_after_construction():
    p = plan(render("a", {"x.py": ""}), model("b", ["y.py"], depends_on=["a"]))
    p.steps[0].depends_on.append("b")
    with pytest.raises(PlanError, match="dependency cycle"):
        p.validate()


def test_tree_lists_steps_with_their_details():
    p = plan(
        render("a", {"pkg/__init__.py": ""}), model("b", ["pkg/b.py"], depends_on=["a"], verifiers=["ruff"])
    )
    console = Console(width=200, record=True, color_system=None)
    console.print(p.tree())
    text = console.export_text()
    assert "demo — 2 steps, planner playbook" in text
    assert text.index("a render make a") < text.index("b generate-code code b")
    assert "depends on: a" in text and "files: pkg/b.py" in text and "verifiers: ruff" in text


@pytest.mark.parametrize(
    ("path", "patterns", "allowed"),
    [
        ("pkg/a.py", ["pkg/a.py"], True),
        ("pkg/./a.py", ["pkg/a.py"], True),
        ("pkg/a.py", ["pkg/*.py"], True),
        ("pkg/sub/a.py", ["pkg/*.py"], False),
        ("pkg/sub/a.py", ["pkg/**"], True),
        ("pkg/sub/a.py", ["pkg/**/*.py"], True),
        ("pkg/a.py", ["pkg/**/*.py"], True),
        ("pkg/a.txt", ["pkg/**/*.py"], False),
        ("tests/test_1.py", ["tests/test_?.py"], True),
        ("../pkg/a.py", ["**"], False),
        ("/pkg/a.py", ["**"], False),
        ("a.py", [], False),
    ],
)
def test_path_allowed(path: str, patterns: list[str], allowed: bool):
    assert path_allowed(path, patterns) is allowed


def test_path_problem_accepts_plain_relative_paths():
    assert path_problem("pkg/sub/file.py") is None
    assert path_problem("pkg/") is not None
