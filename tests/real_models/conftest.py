"""Real local models (the catalog's Qwen2.5-Coder 0.5B and 1.5B, pulled by setup.sh).

These tests run the real weights at temperature 0, so their answers are reproducible on one build of
llama.cpp. Where a model is not installed they skip, except under CI (CI=true), where setup.sh pulls both
and a missing model is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from promptkit.backends import LlamaBackend
from promptkit.models import default_store

SMALL = "qwen2.5-coder-0.5b"
MEDIUM = "qwen2.5-coder-1.5b"


def _require(name: str) -> str:
    if not default_store().is_installed(name):
        message = f"real model {name!r} is not installed: promptkit models pull {name}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return f"local:{name}"


@pytest.fixture(scope="session")
def small_model() -> str:
    return _require(SMALL)


@pytest.fixture(scope="session")
def medium_model() -> str:
    return _require(MEDIUM)


@pytest.fixture(scope="session")
def small_backend(small_model: str) -> Iterator[LlamaBackend]:
    backend = LlamaBackend(small_model.removeprefix("local:"), n_ctx=8192, max_tokens=768)
    backend.load()
    yield backend
    backend.close()
