"""The README's plugin command, ``pytest -p promptkit.evals.pytest_plugin --promptkit-evals evals/``, in a project
whose ``evals/`` also holds templates (as this repository's does): the suites are tests, the templates are left
alone instead of failing collection as broken suites."""

from __future__ import annotations

from pathlib import Path

from tests.evals.test_pytest_plugin import make_project, pytest_run

TEMPLATE = """\
name: add_numbers
version: 1
inputs: {input: {type: str}}
messages:
  - {role: user, content: "{{ input }}"}
"""


def test_readme_command_runs_the_suites_and_skips_templates_beside_them(tmp_path: Path) -> None:
    make_project(tmp_path, "plug:right")
    (tmp_path / "evals" / "templates").mkdir()
    (tmp_path / "evals" / "templates" / "add_numbers.yaml").write_text(TEMPLATE, encoding="utf-8")
    done = pytest_run(tmp_path, "--promptkit-evals", "evals/", "-s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout and "error" not in done.stdout.lower()
    assert "backend calls: 3" in done.stdout


def test_a_broken_suite_is_still_an_error(tmp_path: Path) -> None:
    make_project(tmp_path, "plug:right")
    suite = tmp_path / "evals" / "adding.yaml"
    suite.write_text(suite.read_text().replace("{type: numeric}", "{type: numerc}"), encoding="utf-8")
    done = pytest_run(tmp_path, "--promptkit-evals", "evals/")
    assert done.returncode != 0
    assert "unknown scorer type 'numerc'" in done.stdout
