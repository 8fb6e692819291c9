"""Fixtures for planning: the repository's example specs and a writer for spec files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from promptkit.generation import reset_defaults

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EXAMPLE_SPECS = sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No default cache or ledger of the real project is touched, and no memo leaks between tests."""
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROMPTKIT_PLAYBOOK_PATH", raising=False)
    reset_defaults()
    yield
    reset_defaults()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def writer(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return writer
