"""Fixtures for generate(): throwaway state folders, templates built in code, a cache and a ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promptkit.cache import ExactCache
from promptkit.generation import reset_defaults
from promptkit.ledger import Ledger
from promptkit.prompts import Template


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Default caches and ledgers land in tmp_path, and no memo leaks between tests."""
    home = tmp_path / "home"
    monkeypatch.setenv("PROMPTKIT_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    reset_defaults()
    yield home
    reset_defaults()


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ExactCache]:
    with ExactCache(tmp_path / "cache.sqlite") as c:
        yield c


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "ledger.sqlite")
    yield led
    led.close()


@pytest.fixture
def answer_template() -> Template:
    """A structured template: {"answer": str, "confidence": number in [0, 1]}."""
    return Template.from_dict(
        {
            "name": "qa",
            "version": "1.0.0",
            "description": "Answer a question.",
            "tags": {"technique": ["role"], "task": ["general"]},
            "inputs": {"question": {"type": "string"}},
            "output": {
                "type": "object",
                "properties": {
                    "answer": {"type": "string", "maxLength": 200},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["answer", "confidence"],
            },
            "messages": [
                {"role": "system", "content": "Answer in JSON."},
                {"role": "user", "content": "{{ question }}"},
            ],
        }
    )


@pytest.fixture
def text_template() -> Template:
    return Template.from_dict(
        {
            "name": "haiku",
            "version": "1.0.0",
            "description": "Write a haiku.",
            "tags": {"technique": ["role"], "task": ["general"]},
            "inputs": {"topic": {"type": "string"}},
            "messages": [{"role": "user", "content": "A haiku about {{ topic }}."}],
        }
    )
