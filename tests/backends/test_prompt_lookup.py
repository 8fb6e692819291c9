"""Prompt-lookup decoding on the local backend (``prompt_lookup=N``), on the tiny random-weight GGUF."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from promptkit.backends import GenerateRequest, LlamaBackend  # noqa: E402
from promptkit.errors import ConfigError  # noqa: E402
from promptkit.types import Message  # noqa: E402

# Prompts that repeat themselves, so that the lookup finds drafts to copy.
PROMPTS = [("alpha beta gamma delta " * 12) + str(n) for n in range(4)]


def test_greedy_answers_match_plain_decoding(tiny_gguf: Path) -> None:
    plain = LlamaBackend(tiny_gguf, n_ctx=1024, n_threads=1, prefix_cache=False)
    lookup = LlamaBackend(tiny_gguf, n_ctx=1024, n_threads=1, prefix_cache=False, prompt_lookup=6)
    try:
        assert lookup.load().draft_model is not None and plain.load().draft_model is None

        async def run(backend: LlamaBackend) -> list[str]:
            out = []
            for prompt in PROMPTS:
                request = GenerateRequest(
                    messages=[Message(role="user", content=prompt)], temperature=0, max_tokens=24
                )
                out.append((await backend.generate(request)).text)
            return out

        a, b = asyncio.run(run(plain)), asyncio.run(run(lookup))
        # Drafts are verified in one batch, whose floating-point sums may flip a near-tie; most must agree.
        assert sum(x == y for x, y in zip(a, b, strict=True)) >= len(PROMPTS) - 1
    finally:
        plain.close()
        lookup.close()


def test_prompt_lookup_must_be_a_count(tiny_gguf: Path) -> None:
    with pytest.raises(ConfigError, match="prompt_lookup"):
        LlamaBackend(tiny_gguf, prompt_lookup=-1)


def test_a_prompt_longer_than_a_batch_works(tiny_gguf: Path) -> None:
    """Verifying drafts keeps every position's logits; a prompt over n_batch tokens must still fit them."""
    backend = LlamaBackend(
        tiny_gguf, n_ctx=1024, n_threads=1, prefix_cache=False, prompt_lookup=4, n_batch=32
    )
    try:
        request = GenerateRequest(
            messages=[Message(role="user", content="one two three four five " * 30)],
            temperature=0,
            max_tokens=8,
        )
        response = asyncio.run(backend.generate(request))
        assert response.usage.input_tokens > 32 and response.usage.output_tokens == 8
    finally:
        backend.close()
