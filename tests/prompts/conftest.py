"""Fixtures for the prompt-template tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from promptkit.config import TEMPLATE_PATH_ENV
from promptkit.prompts import Template

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = FIXTURES / "good"
BROKEN = FIXTURES / "broken"
SHADOW = FIXTURES / "shadow"


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No promptkit.toml and no PROMPTKIT_TEMPLATE_PATH from the developer's machine leak into a test."""
    home = tmp_path / "cwd"
    home.mkdir()
    monkeypatch.chdir(home)
    monkeypatch.delenv(TEMPLATE_PATH_ENV, raising=False)
    return home


@pytest.fixture
def review() -> Template:
    return Template.from_file(GOOD / "review.yaml")


@pytest.fixture
def write_template(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented YAML to tmp_path/<name> and return the path."""

    def write(text: str, name: str = "t.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_template(write_template: Callable[[str, str], Path]) -> Callable[..., Template]:
    def make(text: str, name: str = "t.yaml") -> Template:
        return Template.from_file(write_template(text, name))

    return make
