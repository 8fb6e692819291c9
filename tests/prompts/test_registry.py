from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from promptkit import _package_data
from promptkit.config import TEMPLATE_PATH_ENV
from promptkit.errors import TemplateError, TemplateNotFound
from promptkit.prompts import LintProblem, TemplateRegistry, builtin_template_dir, default_registry
from promptkit.prompts._registry import TEMPLATE_FOLDERS, iter_template_files

from .conftest import BROKEN, GOOD, SHADOW


def registry(*paths: Path) -> TemplateRegistry:
    return TemplateRegistry(list(paths), builtin=False, entry_points=False)


def test_get_and_list() -> None:
    reg = registry(GOOD)
    assert reg.get("review").version == "2.1.0"
    assert [t.name for t in reg.list()] == ["classify", "review", "summarize"]
    assert [t.name for t in reg.list(tag="few-shot")] == ["review", "summarize"]
    assert [t.name for t in reg.list(tag="task:review")] == ["review"]
    assert reg.list(tag="technique:review") == []


def test_earlier_paths_shadow_later_ones() -> None:
    reg = registry(SHADOW, GOOD)
    assert reg.get("review").version == "9.0.0"
    assert {t.name: t.version for t in reg.list()}["review"] == "9.0.0"
    assert registry(GOOD, SHADOW).get("review").version == "2.1.0"


def test_template_path_env_is_searched_before_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEMPLATE_PATH_ENV, os.pathsep.join([str(SHADOW), str(GOOD)]))
    reg = TemplateRegistry(builtin=False, entry_points=False)
    assert reg.search_path[:2] == [SHADOW, GOOD]
    assert reg.get("review").version == "9.0.0"
    assert reg.get("classify").name == "classify"


def test_config_template_paths_come_after_explicit_ones(isolated_config: Path) -> None:
    (isolated_config / "promptkit.toml").write_text(f'[templates]\npaths = ["{SHADOW.as_posix()}"]\n')
    assert TemplateRegistry([GOOD], builtin=False, entry_points=False).get("review").version == "2.1.0"
    assert TemplateRegistry(builtin=False, entry_points=False).get("review").version == "9.0.0"


def test_not_found_suggests_close_names() -> None:
    with pytest.raises(TemplateNotFound) as info:
        registry(GOOD).get("reveiw")
    assert "'reveiw'" in str(info.value) and "did you mean 'review'" in str(info.value)
    with pytest.raises(TemplateNotFound) as info:
        registry(GOOD).get("zzzzzz")
    assert "did you mean" not in str(info.value)


def test_broken_unrelated_files_do_not_break_get() -> None:
    reg = registry(BROKEN, GOOD)
    assert reg.get("review").name == "review"
    with pytest.raises(TemplateError):
        reg.list()  # listing loads everything and must not hide a broken file


def test_name_differing_from_file_name_is_found(write_template) -> None:
    path = write_template(
        "name: odd-one\nversion: 1.0.0\nmessages: [{role: user, content: x}]\n", "lib/file.yml"
    )
    assert registry(path.parent).get("odd-one").source == str(path)


def test_files_are_cached_until_they_change(write_template) -> None:
    path = write_template("name: c\nversion: 1.0.0\nmessages: [{role: user, content: one}]\n", "lib/c.yaml")
    reg = registry(path.parent)
    first = reg.get("c")
    assert reg.get("c") is first
    time.sleep(0.01)
    path.write_text("name: c\nversion: 1.0.1\nmessages: [{role: user, content: two}]\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    second = reg.get("c")
    assert second is not first and second.version == "1.0.1"


def test_file_discovery_skips_hidden_and_non_yaml(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for rel in ("a.yaml", "sub/b.yml", ".hidden/c.yaml", "README.md", "d.txt"):
        (root / rel).write_text("x")
    assert [p.relative_to(root).as_posix() for p in iter_template_files(root)] == ["a.yaml", "sub/b.yml"]


def test_entry_points_resolve_paths_and_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    eps = [
        md.EntryPoint(name="by-path", value=str(SHADOW), group="promptkit.templates"),
        md.EntryPoint(name="by-module", value="tests.prompts.fixtures_pkg", group="promptkit.templates"),
        md.EntryPoint(name="broken", value="no_such_module_xyz:THING", group="promptkit.templates"),
    ]
    monkeypatch.setattr(md, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    with TEMPLATE_FOLDERS.isolated():  # entry points are read once per process: read the fake ones
        reg = TemplateRegistry(builtin=False)
        assert SHADOW in reg.search_path
        assert Path(__file__).parent / "fixtures_pkg" in reg.search_path
        assert reg.get("review").version == "9.0.0"
        assert reg.get("from-package").name == "from-package"
        broken = [p for p in reg.errors if "broken" in p.file]
        assert len(broken) == 1 and "no_such_module_xyz:THING" in broken[0].message


def test_a_folder_registered_at_run_time_joins_the_search_path() -> None:
    with TEMPLATE_FOLDERS.isolated():
        TEMPLATE_FOLDERS.register("mine", SHADOW)
        reg = TemplateRegistry(builtin=False)
        assert SHADOW in reg.search_path
        assert reg.get("review").version == "9.0.0"
    reg.refresh()
    assert SHADOW not in reg.search_path


def test_an_empty_search_path_is_an_error_naming_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(TemplateNotFound, match="no templates on the search path") as info:
        registry(tmp_path).list()
    assert str(tmp_path) in str(info.value)


def test_a_build_without_its_templates_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A wheel built without its package data: promptkit/ holds no templates folder.
    monkeypatch.setattr(_package_data, "resources", SimpleNamespace(files=lambda package: tmp_path))
    with pytest.raises(TemplateNotFound, match="built-in templates are missing") as info:
        TemplateRegistry([GOOD], entry_points=False).list()
    assert str(tmp_path / "templates") in str(info.value)


def test_builtin_library_location() -> None:
    assert builtin_template_dir() == Path(__file__).resolve().parents[2] / "promptkit" / "templates"
    reg = TemplateRegistry(entry_points=False)
    assert reg.search_path[-1] == builtin_template_dir()


def test_default_registry_is_shared_and_refreshable(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptkit.prompts import load_template

    reg = default_registry()
    assert default_registry() is reg
    monkeypatch.setenv(TEMPLATE_PATH_ENV, str(GOOD))
    assert default_registry(refresh=True) is reg
    assert load_template("summarize").name == "summarize"
    monkeypatch.delenv(TEMPLATE_PATH_ENV)
    default_registry(refresh=True)


# ---- lint ------------------------------------------------------------------------------------------------


def problems_by_file(problems: list[LintProblem]) -> dict[str, list[LintProblem]]:
    out: dict[str, list[LintProblem]] = {}
    for p in problems:
        out.setdefault(Path(p.file).name, []).append(p)
    return out


def test_lint_reports_every_broken_file_with_its_line() -> None:
    found = problems_by_file(registry().lint([BROKEN]))
    expect = {
        "bad_yaml.yaml": (7, "invalid YAML"),
        "bad_jinja.yaml": (12, "Jinja syntax error"),
        "bad_example.yaml": (9, "example 2: input 'level'"),
        "bad_schema.yaml": (10, "$.properties.email.format"),
        "dup_two.yaml": (3, "duplicate template name 'twin'"),
        "undefined_var.yaml": (11, "undefined variable 'audience'"),
    }
    for file, (line, fragment) in expect.items():
        errors = [p for p in found.get(file, []) if p.severity == "error"]
        assert len(errors) == 1, (file, found.get(file))
        assert errors[0].line == line and fragment in errors[0].message, errors[0]
    warnings = [p for p in found["undefined_var.yaml"] if p.severity == "warning"]
    assert [(w.line, "'unused'" in w.message) for w in warnings] == [(5, True)]
    assert "dup_one.yaml" not in found


def test_lint_passes_good_templates() -> None:
    assert registry().lint([GOOD]) == []


def test_lint_renders_every_example(write_template) -> None:
    path = write_template(
        """
        name: ex
        version: 1.0.0
        inputs:
          n: {type: integer}
        examples:
          - {inputs: {n: 1}, output: "one"}
          - {inputs: {n: 0}, output: "zero"}
        messages:
          - examples:
              - role: user
                content: "{{ 10 // example.inputs.n }}"
          - role: user
            content: "{{ n }}"
        """,
        "lib/ex.yaml",
    )
    problems = registry().lint([path])
    assert [(p.line, p.severity) for p in problems] == [(7, "error")]
    assert "example 2 does not render" in problems[0].message and "ZeroDivisionError" in problems[0].message


def test_lint_flags_example_variable_outside_block(write_template) -> None:
    path = write_template(
        "name: e\nversion: 1.0.0\nmessages:\n  - role: user\n    content: '{{ example }}'\n", "lib/e.yaml"
    )
    (problem,) = registry().lint([path])
    assert problem.line == 5 and "only inside an examples block" in problem.message


def test_lint_of_search_path_allows_shadowing_but_not_same_root_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "dups"
    root.mkdir()
    shutil.copy(BROKEN / "dup_one.yaml", root / "dup_one.yaml")
    shutil.copy(BROKEN / "dup_two.yaml", root / "dup_two.yaml")
    reg = registry(SHADOW, GOOD, root)
    problems = reg.lint()
    assert [(Path(p.file).name, p.line) for p in problems] == [("dup_two.yaml", 3)]
    assert reg.lint_count() == 6


def test_lint_missing_path() -> None:
    (problem,) = registry().lint([Path("/nonexistent/x.yaml")])
    assert problem.file == "/nonexistent/x.yaml" and "cannot read" in problem.message


def test_lint_problem_str() -> None:
    assert str(LintProblem("a.yaml", 3, "boom")) == "a.yaml:3: boom"
    assert str(LintProblem("a.yaml", None, "x", severity="warning")) == "a.yaml: warning: x"
