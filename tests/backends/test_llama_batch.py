"""Continuous batching on the local backend (``parallel=N``), on the tiny random-weight GGUF."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import BaseModel

pytest.importorskip("llama_cpp")

from promptkit.backends import GenerateRequest, LlamaBackend  # noqa: E402
from promptkit.errors import ConfigError, RequestTimeout  # noqa: E402
from promptkit.types import Message  # noqa: E402

PROMPTS = [f"Tell me about the number {n}." for n in range(6)]


def request(text: str, **kw: object) -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content=text)], temperature=0, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def backends(tiny_gguf: Path):  # type: ignore[no-untyped-def]
    seq = LlamaBackend(tiny_gguf, n_ctx=512, n_threads=1, prefix_cache=False)
    par = LlamaBackend(tiny_gguf, n_ctx=512, n_threads=1, prefix_cache=False, parallel=4)
    yield seq, par
    seq.close()
    par.close()


def test_more_requests_than_slots_all_finish_with_their_own_answers(backends) -> None:  # type: ignore[no-untyped-def]
    seq, par = backends

    async def run() -> tuple[list[str], list[object]]:
        one_by_one = [(await seq.generate(request(p, max_tokens=12))).text for p in PROMPTS]
        together = await asyncio.gather(*(par.generate(request(p, max_tokens=12)) for p in PROMPTS))
        return one_by_one, together

    one_by_one, together = asyncio.run(run())
    texts = [r.text for r in together]  # type: ignore[attr-defined]
    assert all(r.usage.output_tokens == 12 and r.finish_reason == "length" for r in together)  # type: ignore[attr-defined]
    # Greedy decoding in a batch gives the sequential tokens, except where floating-point summation order
    # flips a near-tie; on this model and these prompts most answers must agree, and they differ per prompt.
    assert sum(a == b for a, b in zip(one_by_one, texts, strict=True)) >= len(PROMPTS) - 1
    assert len(set(texts)) > 1


def test_stop_strings_and_prefills_work_in_a_batch(backends) -> None:  # type: ignore[no-untyped-def]
    seq, par = backends
    free = asyncio.run(par.generate(request(PROMPTS[0], max_tokens=24)))
    assert len(free.text) > 3
    stop = free.text[2:4]
    stopped = asyncio.run(par.generate(request(PROMPTS[0], max_tokens=24, stop=[stop])))
    assert stopped.text == free.text[: free.text.index(stop)] and stopped.finish_reason == "stop"
    prefilled = GenerateRequest(
        messages=[Message(role="user", content=PROMPTS[1]), Message(role="assistant", content="Sure: ")],
        temperature=0,
        max_tokens=8,
    )
    a = asyncio.run(seq.generate(prefilled))
    b = asyncio.run(par.generate(prefilled))
    assert b.text.startswith("Sure: ") and b.usage.output_tokens == 8
    assert a.text == b.text


def test_a_timed_out_request_frees_its_slot(backends) -> None:  # type: ignore[no-untyped-def]
    _, par = backends

    async def run() -> list[object]:
        slow = [par.generate(request(p, max_tokens=400, timeout_s=0.05)) for p in PROMPTS[:4]]
        return await asyncio.gather(*slow, return_exceptions=True)

    results = asyncio.run(run())
    assert all(isinstance(r, RequestTimeout) for r in results)

    # Every slot was given back: four more requests all finish.
    async def more() -> list[object]:
        return await asyncio.wait_for(
            asyncio.gather(*(par.generate(request(p, max_tokens=4)) for p in PROMPTS[:4])), 60
        )

    again = asyncio.run(more())
    assert [r.usage.output_tokens for r in again] == [4, 4, 4, 4]


def test_grammar_calls_still_run_and_validate(backends) -> None:  # type: ignore[no-untyped-def]
    _, par = backends

    class Answer(BaseModel):
        n: int

    response = asyncio.run(par.generate(request("A number as JSON.", max_tokens=40, output_model=Answer)))
    Answer.model_validate_json(response.text)


def test_parallel_must_be_a_positive_number(tiny_gguf: Path) -> None:
    with pytest.raises(ConfigError, match="parallel"):
        LlamaBackend(tiny_gguf, parallel=0)


def test_prompts_that_start_alike_share_their_start_in_the_kv_cache(tiny_gguf: Path, backends) -> None:  # type: ignore[no-untyped-def]
    _, plain = backends  # the same engine without sharing: every prompt evaluated whole
    shared = LlamaBackend(tiny_gguf, n_ctx=512, n_threads=1, parallel=2)
    preamble = "You are a careful assistant. Answer in one short sentence, then stop. " * 3
    prompts = [preamble + p for p in PROMPTS[:4]]

    async def run(backend: LlamaBackend) -> list[str]:
        first = await backend.generate(request(prompts[0], max_tokens=10))
        rest = await asyncio.gather(*(backend.generate(request(p, max_tokens=10)) for p in prompts[1:]))
        again = await backend.generate(request(prompts[0], max_tokens=10))
        return [first.text, *(r.text for r in rest), again.text]

    try:
        expected = asyncio.run(run(plain))
        got = asyncio.run(run(shared))
        engine = shared._engine
        # The later prompts copied the preamble (and the repeat all but its last token) instead of evaluating it.
        assert engine is not None and engine.share_prefixes
        assert engine.reused_tokens >= 4 * 30, (engine.reused_tokens, engine.prompt_tokens)
        assert engine.reused_tokens < engine.prompt_tokens
        # Same greedy answers as evaluating every prompt whole, up to a floating-point near-tie.
        assert sum(a == b for a, b in zip(expected, got, strict=True)) >= len(got) - 1
        assert got[0] == got[-1]
    finally:
        shared.close()
    assert plain._engine is not None and plain._engine.reused_tokens == 0
