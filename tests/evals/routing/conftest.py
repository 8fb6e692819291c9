"""Shared fixtures: the RouteLLM data folder (../shared/data/routellm beside the project) and isolated state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promptkit.evals.routing import default_data_dir


@pytest.fixture(scope="session")
def routellm_dir() -> Path:
    """The recorded data lives beside the repository, not in it: without it these tests skip, saying where."""
    folder = default_data_dir()
    if not (folder / "gsm8k" / "gsm8k_responses.csv").is_file():
        pytest.skip(f"RouteLLM data not found at {folder} (shared/data is not beside the repository)")
    return folder


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("PROMPTKIT_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    yield home
