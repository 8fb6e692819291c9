"""Playbooks: the shipped ones, deterministic expansion, errors, and the executor's view of their steps."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from promptkit import _package_data
from promptkit.errors import PlanError
from promptkit.execution import run_verifiers, verifier_from_spec
from promptkit.planning import (
    RUNTIME_INPUTS,
    AppSpec,
    Plan,
    PlaybookPlanner,
    builtin_playbook_dir,
    find_playbook,
    get_planner,
    list_playbooks,
    load_playbook,
    load_spec,
    parse_spec,
)
from promptkit.prompts import load_template

from .conftest import EXAMPLE_SPECS, REPO

Write = Callable[[str, str], Path]

SHIPPED = {"fastapi_sqlite_crud", "cli_tool", "python_library", "fix_failing_test", "refactor_module"}

FIX_TASK = "task: fix-failing-test\nname: fix-z\nsummary: ISO dates ending in Z fail.\ntarget: tests/test_dates.py::test_z\nfiles: [dates/parse.py]\n"
REFACTOR_TASK = "task: refactor-module\nname: tidy\nsummary: Pricing.\ntarget: shop/pricing.py\ngoal: Use a rate table.\nfiles: [shop/rates.py]\n"


def example_plans() -> list[Plan]:
    return [PlaybookPlanner().plan(load_spec(p)) for p in EXAMPLE_SPECS]


def test_the_five_playbooks_ship_and_load():
    assert builtin_playbook_dir() == REPO / "promptkit" / "playbooks"
    assert {p.name for p in list_playbooks()} >= SHIPPED
    for name in SHIPPED:
        assert find_playbook(name).name == name


def test_missing_or_empty_builtin_playbooks_are_an_error_not_no_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wheel built without its package data: promptkit/ holds no playbooks folder.
    monkeypatch.setattr(_package_data, "resources", SimpleNamespace(files=lambda package: tmp_path))
    spec = load_spec(EXAMPLE_SPECS[0])
    with pytest.raises(PlanError, match="built-in playbooks are missing") as info:
        PlaybookPlanner().plan(spec)
    assert str(tmp_path / "playbooks") in str(info.value)
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(PlanError, match="no playbooks found; searched") as info:
        list_playbooks([tmp_path / "elsewhere"])
    assert f"{tmp_path / 'elsewhere'}, {tmp_path / 'playbooks'}" in str(info.value)


@pytest.mark.parametrize(
    ("path", "playbook"),
    [
        ("todo_api.yaml", "fastapi_sqlite_crud"),
        ("url_shortener.yaml", "cli_tool"),
        ("textstats_library.yaml", "python_library"),
    ],
)
def test_examples_pick_the_playbook_of_their_stack(path: str, playbook: str):
    plan = PlaybookPlanner().plan(load_spec(REPO / "examples" / path))
    assert plan.playbook == playbook and plan.planner == "playbook"
    spec = plan.spec
    assert isinstance(spec, AppSpec)
    ids = [s.id for s in plan.steps]
    # The skeleton renders, then a code step and a test step per feature.
    for feature in spec.features:
        code, tests = plan.step(f"feature-{feature.id}"), plan.step(f"feature-{feature.id}-tests")
        # Declared routes are completed in a prefilled answer; otherwise the model writes the module.
        expected = "complete_file" if f"feature-{feature.id}-skeleton" in ids else "implement_step"
        assert (code.kind, code.template) == ("generate-code", expected)
        if feature.examples:  # concrete examples become tests without a model
            assert (tests.kind, tests.template) == ("render", None) and tests.render_files
        else:
            # Written by a model: from nothing (web), or completing a prefilled skeleton (command line, library).
            assert tests.kind == "write-tests" and tests.template in ("write_tests", "complete_file")
        module = code.files[0]
        test_file = f"tests/test_feature_{feature.id.replace('-', '_')}.py"
        assert code.files == [module] and module.endswith(".py")
        # Red, then green: the tests are refused unless they fail before the code exists; the code must pass them.
        assert ids.index(tests.id) < ids.index(code.id) and tests.id in code.depends_on
        assert tests.files == [test_file]
        assert {"pytest": {"tests": [test_file], "expect": "fail"}} in tests.verifiers
        assert {"pytest": {"tests": [test_file]}} in code.verifiers
        assert "ruff" in tests.verifiers
        assert {"python-compile": {"paths": [module]}} in code.verifiers
        assert code.inputs["step"]["acceptance"] == feature.acceptance
    for step in plan.steps:
        if step.kind == "render":
            assert step.render_files and step.template is None and step.max_attempts == 1


def test_same_spec_gives_byte_identical_json():
    for path in EXAMPLE_SPECS:
        first = PlaybookPlanner().plan(load_spec(path)).to_json()
        assert PlaybookPlanner().plan(load_spec(path)).to_json() == first
        assert get_planner("playbook").plan(load_spec(path)).to_json() == first


def test_determinism_holds_across_processes_and_hash_seeds(tmp_path: Path):
    code = (
        "import sys; from promptkit.planning import PlaybookPlanner, load_spec\n"
        "sys.stdout.write(PlaybookPlanner().plan(load_spec(sys.argv[1])).to_json())\n"
    )
    spec = str(REPO / "examples" / "todo_api.yaml")
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code, spec], capture_output=True, text=True, env=env, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert outputs.pop() == PlaybookPlanner().plan(load_spec(spec)).to_json()


def test_every_verifier_spec_builds_in_the_executor():
    plans = [*example_plans()]
    for plan in plans:
        for step in plan.steps:
            for index, spec in enumerate(step.verifiers):
                verifier_from_spec(spec, location=f"{step.id}.verifiers[{index}]")


def test_every_model_step_renders_its_template(write: Write):
    plans = [
        *example_plans(),
        PlaybookPlanner().plan(load_spec(write("fix.yaml", FIX_TASK))),
        PlaybookPlanner().plan(load_spec(write("refactor.yaml", REFACTOR_TASK))),
    ]
    runtime = {
        "files": "### FILE: a.py\n(empty file)",
        "errors": "E   assert 1 == 2",
        "attempt": 1,
        "path": "a.py",
        "prefix": "def f():",
    }
    seen = set()
    for plan in plans:
        for step in plan.steps:
            if not step.uses_model:
                continue
            assert step.template is not None
            template = load_template(step.template)
            extra = {k: v for k, v in runtime.items() if k in template.inputs}
            assert set(extra) <= set(RUNTIME_INPUTS)
            rendered = template.render({**step.inputs, **extra})
            # A prefilled template ends in the start of the answer; the others in the request.
            assert rendered.messages[-1].role == ("assistant" if step.template == "complete_file" else "user")
            seen.add(step.template)
    assert seen == {"implement_step", "complete_file", "write_tests", "fix_step"}


@pytest.mark.slow
@pytest.mark.parametrize("spec_path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_render_steps_pass_their_own_verifiers_in_the_sandbox(spec_path: Path, tmp_path: Path):
    """What the executor will do: apply each render step in order, then run its verifiers right away."""
    plan = PlaybookPlanner().plan(load_spec(spec_path))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    for step in plan.topological_order():
        if step.kind != "render":
            continue
        for path, content in step.render_files.items():
            (workspace / path).parent.mkdir(parents=True, exist_ok=True)
            (workspace / path).write_text(content, encoding="utf-8")
        results = asyncio.run(run_verifiers(workspace, step.verifiers))
        assert [r.ok for r in results] == [True] * len(step.verifiers), [r.summary for r in results]


def test_fix_failing_test_playbook(write: Write):
    plan = PlaybookPlanner().plan(load_spec(write("fix.yaml", FIX_TASK)))
    assert plan.playbook == "fix_failing_test"
    (step,) = plan.steps
    assert (step.kind, step.template, step.files, step.reads) == (
        "fix",
        "fix_step",
        ["dates/parse.py"],
        ["tests/test_dates.py"],
    )
    assert {"pytest": {"tests": ["tests/test_dates.py::test_z"]}} in step.verifiers
    assert {"pytest": {"tests": ["tests"]}} in step.verifiers
    assert step.inputs["allowed_paths"] == ["dates/parse.py"]


def test_refactor_module_playbook_pins_behaviour_first(write: Write):
    plan = PlaybookPlanner().plan(load_spec(write("refactor.yaml", REFACTOR_TASK)))
    pin, refactor = plan.steps
    assert (pin.id, pin.kind, pin.files) == (
        "pin-behaviour",
        "write-tests",
        ["tests/test_pricing_behaviour.py"],
    )
    assert (refactor.kind, refactor.depends_on) == ("refactor", ["pin-behaviour"])
    assert refactor.files == ["shop/pricing.py", "shop/rates.py"]
    # The pin test guards the refactoring: it is read, never rewritten, and it runs as a verifier.
    assert (
        "tests/test_pricing_behaviour.py" in refactor.reads
        and "tests/test_pricing_behaviour.py" not in refactor.files
    )
    assert {"pytest": {"tests": ["tests/test_pricing_behaviour.py", "tests"]}} in refactor.verifiers


def test_a_playbook_for_another_stack_is_refused():
    spec = load_spec(REPO / "examples" / "todo_api.yaml")
    with pytest.raises(
        PlanError,
        match=r"playbook 'cli_tool' applies to stack 'python-cli', not to stack 'python-fastapi-sqlite'",
    ):
        PlaybookPlanner("cli_tool").plan(spec)
    with pytest.raises(PlanError, match="no playbook named 'nope'"):
        PlaybookPlanner("nope").plan(spec)


CUSTOM = """\
name: custom
description: A test playbook.
applies_to: {stack: python-library}
vars:
  greeting: "hello {{ name }}"
steps:
  - id: base
    kind: render
    title: Base
    render_files:
      "{{ pkg }}/__init__.py": "# {{ greeting }}\\n"
  - id: "part-{{ feature.id }}"
    for_each: features
    when: "feature.id != 'skipped'"
    kind: generate-code
    title: "Part {{ index }}"
    template: implement_step
    inputs:
      acceptance: "{{ feature.acceptance }}"
    files: ["{{ feature.module }}"]
    depends_on: [base]
  - id: last
    kind: docs
    title: Docs
    template: implement_step
    files: [README.md]
    depends_on: ["part-*"]
"""

LIBRARY = {
    "name": "lib",
    "summary": "s",
    "stack": "python-library",
    "features": [
        {"id": "one", "description": "d", "acceptance": ["a1", "a2"]},
        {"id": "skipped", "description": "d"},
        {"id": "two", "description": "d"},
    ],
}


def test_custom_playbook_expansion(write: Write):
    playbook = load_playbook(write("custom.yaml", CUSTOM))
    plan = PlaybookPlanner(playbook).plan(parse_spec(LIBRARY))
    assert [s.id for s in plan.steps] == ["base", "part-one", "part-two", "last"]
    assert plan.step("base").render_files == {"lib/__init__.py": "# hello lib\n"}
    assert plan.step("part-one").inputs == {"acceptance": ["a1", "a2"]}  # a whole expression keeps its type
    assert plan.step("part-two").title == "Part 2"
    assert plan.step("last").depends_on == ["part-one", "part-two"]
    # By path, through the search path variable, and via find_playbook.
    assert PlaybookPlanner(str(write("again.yaml", CUSTOM))).plan(parse_spec(LIBRARY)).playbook == "custom"


def test_playbook_search_path_from_the_environment(write: Write, monkeypatch: pytest.MonkeyPatch):
    path = write("mine/custom.yaml", CUSTOM)
    monkeypatch.setenv("PROMPTKIT_PLAYBOOK_PATH", str(path.parent))
    # Found by name, and it shadows the built-in library playbook for its stack.
    assert find_playbook("custom").source == str(path)
    assert PlaybookPlanner().plan(parse_spec(LIBRARY)).playbook == "custom"


def test_undefined_name_in_a_playbook_names_file_line_and_field(write: Write):
    path = write("broken.yaml", CUSTOM.replace("{{ feature.module }}", "{{ feature.modul }}"))
    with pytest.raises(PlanError) as caught:
        PlaybookPlanner(str(path)).plan(parse_spec(LIBRARY))
    assert str(caught.value).startswith(f"{path}:20: steps[1].files: cannot expand:")
    assert "modul" in str(caught.value)


def test_a_bad_playbook_file_names_the_line(write: Write):
    path = write("bad.yaml", CUSTOM.replace("    for_each: features\n", "    for_each: widgets\n"))
    with pytest.raises(PlanError) as caught:
        load_playbook(path)
    assert str(caught.value).startswith(f"{path}:13: steps[1].for_each: must be one of")


def test_an_expanded_step_that_breaks_the_plan_is_reported(write: Write):
    path = write(
        "esc.yaml", CUSTOM.replace('files: ["{{ feature.module }}"]', 'files: ["../{{ feature.module }}"]')
    )
    with pytest.raises(PlanError, match=r"step 'part-one': files\[0\]: .*'\.\.'"):
        PlaybookPlanner(str(path)).plan(parse_spec(LIBRARY))


def test_feature_examples_give_the_routes_to_complete_and_red_first_tests():
    plan = PlaybookPlanner().plan(load_spec(REPO / "examples" / "todo_api.yaml"))
    skeleton = plan.step("feature-overdue-skeleton").render_files["todo_api/features/overdue.py"]
    # The route the examples call (not a CRUD route), with its query parameter, for the model to complete.
    assert (
        '@router.get("/todos/overdue", response_model=list[Todo])\n'
        "def overdue(conn: db.Connection, today: date | None = None):\n"
        '    """GET /todos/overdue?today=YYYY-MM-DD lists the todos that are not done' in skeleton
    )
    # The docstring names the repository functions a body may call, and the body is left to write.
    assert "    db.list_todos(conn) -> list[Todo]\n" in skeleton and skeleton.endswith('    """\n    ...\n')
    assert "/todos/{id}" not in skeleton and "@router.post" not in skeleton
    assert "feature-overdue-skeleton" in plan.step("feature-overdue").depends_on
    tests = plan.step("feature-overdue-tests").render_files["tests/test_feature_overdue.py"]
    assert 'client.request("GET", "/todos/overdue?today=2024-01-02")' in tests
    assert "assert response.json() == [{'id': 2, 'title': 'later'" in tests


def test_feature_skeletons_import_what_their_declarations_use():
    plan = PlaybookPlanner().plan(load_spec(REPO / "examples" / "todo_api.yaml"))
    overdue = plan.step("feature-overdue-skeleton").render_files["todo_api/features/overdue.py"]
    assert "from datetime import date\n" in overdue and "from todo_api.models import Todo\n" in overdue
    done = plan.step("feature-mark-all-done-skeleton").render_files["todo_api/features/mark_all_done.py"]
    # {"updated": N} is no entity: no response_model, nothing more to import.
    assert (
        '@router.post("/todos/mark-all-done")\n' in done and "models" not in done and "datetime" not in done
    )
    for source in (overdue, done):
        compile(source, "skeleton.py", "exec")


def test_library_features_declare_their_function_and_python_checks_become_assertions():
    plan = PlaybookPlanner().plan(load_spec(REPO / "examples" / "textstats_library.yaml"))
    words = plan.step("feature-word-frequencies-skeleton").render_files["textstats/word_frequencies.py"]
    assert "\ndef word_frequencies(text: str, top: int = 10) -> list[tuple[str, int]]:\n" in words
    analyze = plan.step("feature-analyze-skeleton").render_files["textstats/analyze.py"]
    assert "from textstats.models import TextReport\n" in analyze and words.count("import") == 0
    for source in (words, analyze):
        compile(source, "skeleton.py", "exec")
    prefix = plan.step("feature-word-frequencies-tests").inputs["prefix"]
    # The check the spec wrote as Python is asserted as written; the prose check is left to the model, whose
    # answer starts at its body.
    assert '    assert word_frequencies("b a b", top=1) == [("b", 2)]\n' in prefix
    assert prefix.endswith(
        'def test_acceptance_2() -> None:\n    """Ties are alphabetical; top=0 returns []."""\n    ...\n'
    )
    assert plan.step("feature-word-frequencies-tests").template == "complete_file"
    assert plan.step("feature-word-frequencies").template == "complete_file"
    assert plan.step("feature-word-frequencies-tests").route.tier == "strongest"


def test_cli_features_declare_register_and_run_for_their_command():
    spec = load_spec(REPO / "examples" / "url_shortener.yaml")
    assert isinstance(spec, AppSpec)
    # Without examples, the feature's tests are a model's, prefilled up to the first test's body.
    spec = spec.model_copy(
        update={"features": [f.model_copy(update={"examples": []}) for f in spec.features]}
    )
    plan = PlaybookPlanner().plan(spec)
    skeleton = plan.step("feature-resolve-skeleton").render_files["url_shortener/features/resolve.py"]
    compile(skeleton, "skeleton.py", "exec")
    assert "def register(commands: argparse._SubParsersAction) -> None:" in skeleton
    assert "Add the `resolve` sub-command" in skeleton
    assert "def run(args: argparse.Namespace, store: Store) -> int:" in skeleton
    tests = plan.step("feature-resolve-tests")
    assert 'run(capsys, *db, "link", "add", *[' in tests.inputs["step"]["description"]
    assert "from url_shortener.cli import main" in tests.inputs["prefix"]
    assert tests.inputs["prefix"].rstrip().endswith("...") and tests.template == "complete_file"


def test_cli_features_with_examples_get_their_arguments_declared():
    import argparse

    plan = PlaybookPlanner().plan(load_spec(REPO / "examples" / "url_shortener.yaml"))
    namespace: dict[str, object] = {}
    skeleton = plan.step("feature-stats-skeleton").render_files["url_shortener/features/stats.py"]
    exec(
        compile(skeleton.replace("from url_shortener.store import Store", "Store = object"), "s.py", "exec"),
        namespace,
    )
    parser = argparse.ArgumentParser()
    namespace["register"](parser.add_subparsers())  # type: ignore[operator]
    args = parser.parse_args(["stats", "--json"])
    assert args.json is True and args.handler is namespace["run"]
    assert parser.parse_args(["stats"]).json is False
    assert "    args.json: bool\n" in skeleton and skeleton.rstrip().endswith("...")
    resolve = plan.step("feature-resolve-skeleton").render_files["url_shortener/features/resolve.py"]
    assert "parser.add_argument('code')" in resolve and "    args.code: str\n" in resolve
    assert "register(commands) is written" in plan.step("feature-stats").description
    # The spec's examples sit in the docstring, the output verbatim (two spaces stay two spaces).
    assert (
        "`stats` exits 0 and prints:\n        b  5  https://b.example\n        a  3  https://a.example\n"
        in skeleton
    )
    assert (
        '`stats --json` exits 0 and prints JSON: [{"code": "a", "url": "https://a.example", "visits": 3}]'
        in skeleton
    )
    assert "    `resolve nope` exits 1\n        (stderr: error: unknown code nope)\n" in resolve


def test_command_examples_in_the_docstring_survive_backslashes_and_quotes():
    spec = load_spec(REPO / "examples" / "url_shortener.yaml")
    assert isinstance(spec, AppSpec)
    stats = next(f for f in spec.features if f.id == "stats")
    odd = stats.examples[0].model_copy(update={"stdout": 'b  5  C:\\temp\\n """x"""'})
    spec.features[spec.features.index(stats)] = stats.model_copy(update={"examples": [odd]})
    plan = PlaybookPlanner().plan(spec)
    skeleton = plan.step("feature-stats-skeleton").render_files["url_shortener/features/stats.py"]
    namespace: dict[str, object] = {}
    source = skeleton.replace("from url_shortener.store import Store", "Store = object")
    exec(compile(source, "s.py", "exec"), namespace)
    # The docstring shows the output exactly as written, backslashes and triple quotes included.
    assert '        b  5  C:\\temp\\n """x"""\n' in namespace["run"].__doc__  # type: ignore[attr-defined]


@pytest.mark.parametrize("example", ["todo_api", "textstats_library", "url_shortener"])
def test_feature_text_with_backslashes_and_quotes_renders_valid_python(example: str):
    # Each playbook puts a feature's title, description and first acceptance check in docstrings.
    import ast
    import warnings

    spec = load_spec(REPO / "examples" / f"{example}.yaml")
    assert isinstance(spec, AppSpec)
    odd = 'Paths like C:\\temp\\n, regexes like \\d+ and """quotes""" stay as written \\'
    first = spec.features[0]
    spec.features[0] = first.model_copy(
        # The description keeps its start: a library feature's signature comes first.
        update={
            "title": odd,
            "description": f"{first.description} {odd}",
            "acceptance": [odd, *first.acceptance[1:]],
        }
    )
    plan = PlaybookPlanner().plan(spec)
    rendered = {
        path: text
        for step in plan.steps
        for path, text in (step.render_files or {}).items()
        if path.endswith(".py")
    }
    docstrings = []
    for path, text in rendered.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an invalid escape sequence warns: the text would not be verbatim
            tree = ast.parse(text, path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                docstrings.append(" ".join((ast.get_docstring(node) or "").split()))
    # Shown as written (descriptions are word-wrapped, so compare with the whitespace folded).
    assert any("Paths like C:\\temp\\n, regexes like \\d+ and" in d for d in docstrings)


@pytest.mark.parametrize(
    ("description", "runs", "arguments"),
    [
        ("`app top N` lists.", ["top 3", "top 5"], [("n", "int", None)]),
        (
            "`app top` lists.",
            ["top --limit 3 --json", "top"],
            [("--limit", "int", None), ("--json", "bool", "store_true")],
        ),
        (
            "`app find NAME` finds.",
            ["find --exact bob"],
            [("name", "str", None), ("--exact", "bool", "store_true")],
        ),
        ("`app find NAME` finds.", ["find --tag notes bob"], [("name", "str", None), ("--tag", "str", None)]),
        # The examples disagree (a value once, none once), or with the usage, or never run the command; or a
        # name is a Python keyword (`args.in` would not parse).
        ("`app find NAME` finds.", ["find --in notes bob"], None),
        ("`app top` lists.", ["top --limit 3", "top --limit"], None),
        ("`app top N` lists.", ["top"], None),
        ("`app top` lists.", ["other"], None),
    ],
)
def test_command_arguments_are_read_off_the_usage_and_the_examples(description, runs, arguments):
    from promptkit.planning._context import _command_arguments, _feature_command
    from promptkit.planning._spec import Feature

    feature = Feature.model_validate(
        {"id": "f", "description": description, "examples": [{"run": run, "stdout": ""} for run in runs]}
    )
    found = _command_arguments(feature, _feature_command(feature))
    assert (None if found is None else [(a["flag"], a["type"], a["action"]) for a in found]) == arguments


@pytest.mark.parametrize(
    ("description", "declaration"),
    [
        ("f(x: int) -> int doubles x.", "f(x: int) -> int"),
        (
            "`g(a: dict[str, int] = {}) -> list[tuple[int, str]]` sorts.",
            "g(a: dict[str, int] = {}) -> list[tuple[int, str]]",
        ),
        ("h(items) returns nothing useful.", "h(items)"),
        ("Counts words (runs of letters).", None),
        ("f(x: int -> int", None),
        ("f(x y) -> int is not Python.", None),
    ],
)
def test_feature_signature_is_parsed_as_python(description: str, declaration: str | None):
    from promptkit.planning._context import _feature_signature

    found = _feature_signature(description, ["Report"])
    assert (found["declaration"] if found else None) == declaration


def test_command_examples_become_red_first_tests_without_a_model():
    plan = PlaybookPlanner().plan(load_spec(REPO / "examples" / "url_shortener.yaml"))
    tests = plan.step("feature-resolve-tests")
    assert tests.kind == "render" and tests.template is None
    text = tests.render_files["tests/test_feature_resolve.py"]
    compile(text, "test.py", "exec")
    assert (
        "    assert run(capsys, *db, *['link', 'add', '--code', 'gh', '--url', 'https://github.com'])[0] == 0\n"
        in text
    )
    assert "    code, out, err = run(capsys, *db, *['resolve', 'nope'])\n    assert code == 1, err\n" in text
    assert "    assert err.strip() == 'error: unknown code nope'\n" in text
    assert "assert json.loads(out) == {'id': 1, 'code': 'gh'" in text and "\nimport json\n" in text
    assert {"pytest": {"tests": ["tests/test_feature_resolve.py"], "expect": "fail"}} in tests.verifiers


@pytest.mark.parametrize("name", ["todo_api", "url_shortener", "textstats_library"])
def test_plans_with_each_kind_of_example_round_trip_through_json(name: str):
    from promptkit.planning import Plan

    plan = PlaybookPlanner().plan(load_spec(REPO / "examples" / f"{name}.yaml"))
    assert Plan.from_json(plan.to_json()).to_json() == plan.to_json()


def test_model_written_library_tests_are_held_to_their_checks():
    plan = PlaybookPlanner().plan(load_spec(REPO / "examples" / "textstats_library.yaml"))
    step = plan.step("feature-analyze-tests")
    stated = [v["stated-asserts"] for v in step.verifiers if isinstance(v, dict) and "stated-asserts" in v]
    assert stated == [
        {
            "paths": ["tests/test_feature_analyze.py"],
            "fields": ["average_word_length", "characters", "language", "sentences", "words"],
        }
    ]
    # Before the red check: the cheap check's complaint is what the repair sees first.
    names = [next(iter(v)) if isinstance(v, dict) else v for v in step.verifiers]
    assert names.index("stated-asserts") < names.index("pytest")
