"""Deterministic repairs of model-written Python: missing imports, ruff's safe fixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.execution import add_missing_imports, ruff_fix, tidy_python


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "db.py").write_text("Connection = int\n\n\ndef list_items(conn):\n    return []\n")
    (tmp_path / "app" / "routes.py").write_text(
        "def list_items():\n    return []\n\n\ndef _private():\n    pass\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def helper_only_in_tests():\n    pass\n")
    return tmp_path


def test_missing_imports_come_from_the_project_and_well_known_modules(project: Path) -> None:
    source = (
        '"""A feature."""\n'
        "router = fastapi.APIRouter()\n\n\n"
        "def f(conn: db.Connection):\n"
        "    return list_items(conn), date.today(), BaseModel, helper_only_in_tests, _private, nowhere\n"
    )
    fixed = add_missing_imports(source, "app/feature.py", project)
    head = fixed.split("router =")[0]
    assert head.startswith('"""A feature."""\n'), "imports go after the docstring"
    assert "import fastapi\n" in head and "from app import db\n" in head
    # Two modules define list_items: the one the code already uses (db) wins.
    assert "from app.db import list_items\n" in head and "app.routes" not in head
    assert "from datetime import date\n" in head and "from pydantic import BaseModel\n" in head
    assert "helper_only_in_tests" not in head, "tests are not a source of names"
    assert "_private" not in head and "nowhere" not in head
    compile(fixed, "feature.py", "exec")


def test_an_ambiguous_name_is_left_alone(project: Path) -> None:
    fixed = add_missing_imports("x = list_items()\n", "app/feature.py", project)
    assert fixed == "x = list_items()\n", "db or routes: not ours to guess"


def test_code_without_undefined_names_is_unchanged(project: Path) -> None:
    assert (
        add_missing_imports("import os\n\nx = os.sep\n", "app/f.py", project) == "import os\n\nx = os.sep\n"
    )
    assert add_missing_imports("def broken(:\n", "app/f.py", project) == "def broken(:\n"


def test_ruff_fix_applies_safe_fixes_and_drops_unused_assignments(tmp_path: Path) -> None:
    source = (
        "import os\nimport json\n\n\ndef f(client):\n    created = client.post(json.dumps(1))\n    return 1\n"
    )
    fixed = ruff_fix(source, "m.py", tmp_path)
    assert "import os" not in fixed and "import json" in fixed
    assert "created =" not in fixed and "client.post(json.dumps(1))" in fixed, "the call stays"
    assert ruff_fix("def broken(:\n", "m.py", tmp_path) == "def broken(:\n"


def test_tidy_adds_imports_then_drops_the_unused_ones(project: Path) -> None:
    source = "from fastapi import APIRouter\n\nrouter = fastapi.APIRouter()\n"
    assert tidy_python(source, "app/f.py", project) == "import fastapi\n\nrouter = fastapi.APIRouter()\n"


def test_a_module_imported_by_name_decides_an_ambiguous_name(project: Path) -> None:
    source = "from app import db\n\n\ndef f(conn: db.Connection):\n    return list_items(conn)\n"
    fixed = add_missing_imports(source, "app/feature.py", project)
    assert "from app.db import list_items\n" in fixed


def test_a_bare_comparison_in_a_test_gets_its_assert() -> None:
    from promptkit.execution._tidy import assert_bare_comparisons

    source = (
        "def helper():\n    1 == 1\n\n\n"
        "def test_x():\n    run('a') == (0, '', '')\n    value = 2\n    if value:\n        value == (\n"
        "            2)\n"
    )
    fixed = assert_bare_comparisons(source, "tests/test_x.py")
    assert fixed == source.replace("    run('a')", "    assert run('a')").replace(
        "        value == (", "        assert value == ("
    )
    assert "    1 == 1\n" in fixed  # not a test function
    compile(fixed, "test_x.py", "exec")
    assert assert_bare_comparisons(source, "pkg/module.py") == source  # not a test file
