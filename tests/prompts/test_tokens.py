from __future__ import annotations

import math

import pytest

from promptkit.prompts import _tokens, approximate_tokens, count_tokens
from promptkit.types import Message


def test_litellm_prefix_and_default_model() -> None:
    msgs = [Message(role="user", content="hello there, how are you today?")]
    assert count_tokens(msgs, "litellm:gpt-4o") == count_tokens(msgs, "gpt-4o") == count_tokens(msgs)


def test_more_text_more_tokens_and_dicts_accepted() -> None:
    short = count_tokens([{"role": "user", "content": "hi"}])
    long = count_tokens([{"role": "user", "content": "hi " * 200}])
    assert long > short + 100


def test_models_needing_a_download_are_counted_offline_and_marked_approximate() -> None:
    pytest.importorskip("litellm")
    msgs = [{"role": "user", "content": "some words " * 20}]
    # the network guard in tests/conftest.py would fail this test if a tokenizer were fetched
    count, exact = _tokens.count_tokens_detailed(msgs, "meta-llama/Llama-3-8b-instruct")
    assert exact is False and count == count_tokens(msgs)
    count, exact = _tokens.count_tokens_detailed(msgs, "local:models/tiny.gguf")
    assert exact is False


def test_approximation_formula() -> None:
    msgs = [Message(role="system", content="a" * 10), Message(role="user", content="é" * 3)]
    assert approximate_tokens(msgs) == 3 + (3 + math.ceil(10 / 4)) + (3 + math.ceil(6 / 4))


def test_without_litellm_the_count_is_approximate(monkeypatch: pytest.MonkeyPatch, review) -> None:
    monkeypatch.setattr(_tokens, "_litellm_counter", lambda: None)
    msgs = [Message(role="user", content="x" * 40)]
    assert count_tokens(msgs) == approximate_tokens(msgs)
    out = review.render(language="python", code="x", model="gpt-4o")
    assert out.token_count == approximate_tokens(out.messages)
    assert out.token_count_exact is False


def test_budget_fitting_works_with_the_approximate_counter(monkeypatch: pytest.MonkeyPatch, review) -> None:
    monkeypatch.setattr(_tokens, "_litellm_counter", lambda: None)
    code = "\n".join(f"item_{i} = {i}" for i in range(500))
    out = review.render(language="python", code=code, budget=400)
    assert out.token_count_exact is False
    assert out.token_count == approximate_tokens(out.messages) <= 400
    assert "tokens trimmed to fit the context budget" in out.messages[-1].content
