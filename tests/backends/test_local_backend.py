"""LlamaBackend: real in-process llama.cpp calls on the tiny random-weight model.

Random weights give random text, so these tests assert structure: finish reasons, token counts, determinism,
schema validity, and what the shared model, its lock and its prefix cache do.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from promptkit.backends._base import Backend, GenerateRequest
from promptkit.backends._llama import (
    LlamaBackend,
    TokenProgress,
    auto_threads,
    loaded_model_count,
    watch_tokens,
)
from promptkit.errors import BackendUnavailable, ConfigError, ModelRequestError, RequestTimeout
from promptkit.types import Message


class Review(BaseModel):
    title: str = Field(max_length=16)
    tags: list[Annotated[str, Field(max_length=8)]] = Field(max_length=3)
    score: int
    recommended: bool


def ask(text: str, **kwargs) -> GenerateRequest:  # type: ignore[no-untyped-def]
    return GenerateRequest(messages=[Message(role="user", content=text)], **kwargs)


@pytest.fixture(scope="module")
def backend(tiny_gguf):  # type: ignore[no-untyped-def]
    b = LlamaBackend(tiny_gguf, n_ctx=2048, n_threads=1)
    b.load()
    yield b
    b.close()


async def test_plain_chat(backend):
    response = await backend.generate(ask("Say hello.", max_tokens=12, temperature=0))
    assert isinstance(backend, Backend)
    assert response.finish_reason == "length"  # random weights never choose to stop this early
    assert response.usage.input_tokens > 5
    assert response.usage.output_tokens == 12
    assert response.text
    assert response.compute_s is not None and 0 < response.compute_s <= response.latency_s
    assert response.cost_usd is None
    assert response.model == backend.model_name


async def test_temperature_zero_is_deterministic_and_prompt_dependent(backend):
    first = await backend.generate(ask("alpha", max_tokens=16, temperature=0))
    again = await backend.generate(ask("alpha", max_tokens=16, temperature=0))
    other = await backend.generate(ask("a completely different prompt", max_tokens=16, temperature=0))
    assert first.text == again.text
    assert other.text != first.text


async def test_seed_maps_to_sampling(backend):
    texts = [
        (await backend.generate(ask("seeded", max_tokens=16, temperature=1.0, seed=s))).text
        for s in (1, 1, 2, 3)
    ]
    assert texts[0] == texts[1]
    assert len(set(texts)) > 1


async def test_max_tokens_and_stop_map(backend):
    base = await backend.generate(ask("stop test", max_tokens=20, temperature=0))
    assert base.usage.output_tokens == 20
    cut = base.text[3:5]
    stopped = await backend.generate(ask("stop test", max_tokens=20, temperature=0, stop=[cut]))
    assert stopped.finish_reason == "stop"
    assert stopped.text == base.text[: base.text.index(cut)]


async def test_params_pass_through_and_reserved_keys_are_refused(backend):
    eos = backend.llama.token_eos()
    ended = await backend.generate(
        ask("x", max_tokens=20, temperature=0, params={"logit_bias": {eos: 100.0}})
    )
    assert ended.finish_reason == "stop" and ended.usage.output_tokens == 0
    with pytest.raises(ModelRequestError, match="stream"):
        await backend.generate(ask("x", params={"stream": True}))
    with pytest.raises(ModelRequestError, match="no_such_option"):
        await backend.generate(ask("x", max_tokens=2, params={"no_such_option": 1}))


async def test_structured_output_is_valid_50_of_50(backend):
    valid = 0
    for seed in range(50):
        response = await backend.generate(
            ask(
                f"Review item {seed} as JSON.",
                output_model=Review,
                temperature=1.0,
                seed=seed,
                max_tokens=400,
            )
        )
        Review.model_validate_json(response.text)  # raises if not valid
        assert response.finish_reason == "stop"
        valid += 1
    assert valid == 50


async def test_streaming_chunks_join_to_the_full_text(backend):
    request = ask("stream me", max_tokens=24, temperature=0)
    chunks = [chunk async for chunk in backend.stream(request)]
    assert len(chunks) > 1
    assert "".join(chunks) == (await backend.generate(request)).text


async def test_streaming_structured_output_is_valid_json(backend):
    request = ask("json please", output_model=Review, temperature=1.0, seed=4, max_tokens=400)
    text = "".join([chunk async for chunk in backend.stream(request)])
    Review.model_validate_json(text)


async def test_leaving_a_stream_early_stops_generation(backend, monkeypatch):
    evaluated = _count_evaluated_tokens(backend.llama, monkeypatch)
    produced = 0
    async with contextlib.aclosing(backend.stream(ask("long", max_tokens=1500, temperature=0))) as chunks:
        async for _ in chunks:
            produced += 1
            if produced == 3:
                break
    # Closing waited for the worker: it stopped after a few tokens instead of running on to 1,500.
    assert 3 <= len(evaluated) < 50
    response = await backend.generate(ask("next", max_tokens=4, temperature=0))
    assert response.usage.output_tokens == 4


async def test_two_backends_on_one_file_share_one_loaded_model(tiny_gguf, backend):
    before = loaded_model_count()
    first = LlamaBackend(tiny_gguf, n_ctx=2048, n_threads=1)
    second = LlamaBackend(tiny_gguf, n_ctx=2048, n_threads=1)
    other_ctx = LlamaBackend(tiny_gguf, n_ctx=1024, n_threads=1)
    try:
        assert first.llama is second.llama is backend.llama
        assert loaded_model_count() == before
        assert other_ctx.llama is not first.llama
        assert loaded_model_count() == before + 1
        first.close()
        first.close()  # twice is fine
        # The model stays loaded for the others.
        assert (await second.generate(ask("still here", max_tokens=3))).usage.output_tokens == 3
        with pytest.raises(BackendUnavailable, match="closed"):
            await first.generate(ask("closed"))
    finally:
        second.close()
        await other_ctx.aclose()
    assert loaded_model_count() == before  # the last user of the n_ctx=1024 model freed it


async def test_concurrent_calls_are_serialised_and_correct(backend, monkeypatch):
    prompts = [f"question {i % 5}" for i in range(20)]
    expected = {p: (await backend.generate(ask(p, max_tokens=10, temperature=0))).text for p in set(prompts)}

    llama = backend.llama
    real = llama.create_chat_completion
    active = 0
    most = 0
    guard = threading.Lock()

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal active, most
        with guard:
            active += 1
            most = max(most, active)
        try:
            return real(*args, **kwargs)
        finally:
            with guard:
                active -= 1

    monkeypatch.setattr(llama, "create_chat_completion", counting)
    responses = await asyncio.gather(
        *(backend.generate(ask(p, max_tokens=10, temperature=0)) for p in prompts)
    )
    assert most == 1
    assert [r.text for r in responses] == [expected[p] for p in prompts]


async def test_event_loop_stays_free_during_a_call(backend):
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await backend.generate(ask("busy", max_tokens=200, temperature=0))
    finally:
        task.cancel()
    assert ticks > 10


def _threads_of_calls(llama, monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    threads: list[int] = []
    real = llama.create_chat_completion

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(llama, "create_chat_completion", recording)
    return threads


async def test_on_an_idle_loop_the_call_runs_on_the_loops_thread(backend, monkeypatch):
    threads = _threads_of_calls(backend.llama, monkeypatch)
    alone = await backend.generate(ask("alone", max_tokens=6, temperature=0))
    assert threads == [threading.get_ident()]
    # The same answer as through the worker thread (a pending task forces that path).
    other = asyncio.create_task(asyncio.Event().wait())
    try:
        via_worker = await backend.generate(ask("alone", max_tokens=6, temperature=0))
    finally:
        other.cancel()
    assert threads[1] != threading.get_ident()
    assert via_worker.text == alone.text and via_worker.usage == alone.usage


@pytest.mark.parametrize(
    "neighbour", ["task", "ready callback", "timer", "listening socket", "signal handler"]
)
async def test_anything_else_on_the_loop_sends_the_call_to_the_worker(backend, monkeypatch, neighbour):
    loop = asyncio.get_running_loop()
    threads = _threads_of_calls(backend.llama, monkeypatch)
    async with contextlib.AsyncExitStack() as stack:
        if neighbour == "task":
            task = asyncio.create_task(asyncio.Event().wait())
            stack.callback(task.cancel)
        elif neighbour == "ready callback":
            loop.call_soon(lambda: None)
        elif neighbour == "timer":
            stack.callback(loop.call_later(60, lambda: None).cancel)
        elif neighbour == "listening socket":
            server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
            stack.push_async_callback(server.wait_closed)
            stack.callback(server.close)
        else:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
            stack.callback(loop.remove_signal_handler, signal.SIGUSR1)
        await backend.generate(ask("not alone", max_tokens=4, temperature=0))
    assert len(threads) == 1 and threads[0] != threading.get_ident()


async def test_a_model_busy_in_another_thread_never_blocks_the_idle_loop(backend, monkeypatch):
    loop = asyncio.get_running_loop()
    threads = _threads_of_calls(backend.llama, monkeypatch)
    held = threading.Event()
    loop_answered: list[bool] = []

    def hold() -> None:
        with backend.lock:
            held.set()
            time.sleep(0.05)  # the call below has found the model busy by now
            ping = asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop)
            try:
                ping.result(timeout=0.5)
                loop_answered.append(True)
            except TimeoutError:
                loop_answered.append(False)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    await backend.generate(ask("queued", max_tokens=4, temperature=0))
    holder.join()
    assert loop_answered == [True]
    assert len(threads) == 1 and threads[0] != threading.get_ident()


async def test_debug_mode_loop_is_never_used_for_a_call(backend, monkeypatch):
    loop = asyncio.get_running_loop()
    threads = _threads_of_calls(backend.llama, monkeypatch)
    monkeypatch.setattr(loop, "get_debug", lambda: True)
    await backend.generate(ask("debug", max_tokens=4, temperature=0))
    assert len(threads) == 1 and threads[0] != threading.get_ident()


def _count_evaluated_tokens(llama, monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    counts: list[int] = []
    real_eval = llama.eval

    def counting_eval(tokens):  # type: ignore[no-untyped-def]
        counts.append(len(tokens))
        return real_eval(tokens)

    monkeypatch.setattr(llama, "eval", counting_eval)
    return counts


async def _prefix_then_other_then_prefix(backend, monkeypatch) -> int:  # type: ignore[no-untyped-def]
    """Tokens evaluated for a prompt whose long prefix was seen two calls earlier (another prompt in between)."""
    prefix = "You are a careful assistant. " + " ".join(f"rule {i}: be precise." for i in range(60))
    counts = _count_evaluated_tokens(backend.llama, monkeypatch)

    def with_prefix(question: str) -> GenerateRequest:
        return GenerateRequest(
            messages=[Message(role="system", content=prefix), Message(role="user", content=question)],
            max_tokens=4,
            temperature=0,
        )

    await backend.generate(with_prefix("first question?"))
    await backend.generate(ask("an unrelated prompt " * 30, max_tokens=4, temperature=0))
    counts.clear()
    third = await backend.generate(with_prefix("second question?"))
    assert third.usage.input_tokens > 300
    return counts[0]  # the prompt evaluation (later evals are one sampled token each)


async def test_prefix_cache_skips_a_long_prefix_seen_before(tiny_gguf, monkeypatch):
    cached = LlamaBackend(tiny_gguf, n_ctx=2048, n_threads=1, prefix_cache=64 << 20)
    uncached = LlamaBackend(tiny_gguf, n_ctx=2048, n_threads=1, prefix_cache=False)
    try:
        with_cache = await _prefix_then_other_then_prefix(cached, monkeypatch)
        without_cache = await _prefix_then_other_then_prefix(uncached, monkeypatch)
        assert without_cache > 300
        assert with_cache < 50  # only the new question and the turn markers
        stats = cached.prefix_cache_stats()
        assert stats is not None and stats.hits >= 1 and stats.entries == 3
        assert stats.capacity_bytes == 64 << 20 and 0 < stats.size_bytes <= stats.capacity_bytes
        assert uncached.prefix_cache_stats() is None
    finally:
        cached.close()
        uncached.close()


async def test_the_prefix_cache_keeps_and_counts_only_what_it_reads_again(tiny_gguf):
    """llama-cpp-python's saved states hold every prompt position's logits and its cache counts none of
    them (a 164-problem eval on a real model reached 24 GB); promptkit's keeps the last position's only."""
    backend = LlamaBackend(tiny_gguf, n_ctx=2048, n_threads=1, prefix_cache=64 << 20)
    plain = LlamaBackend(tiny_gguf, n_ctx=2048, n_threads=1, prefix_cache=False)
    try:
        prompts = [("shared context " * 40) + f"question {i}?" for i in range(3)]
        answers = [(await backend.generate(ask(p, max_tokens=6, temperature=0))).text for p in prompts]
        again = (await backend.generate(ask(prompts[0], max_tokens=6, temperature=0))).text
        states = list(backend.llama.cache.cache_state.values())
        assert states and all(state.scores.shape[0] == 1 for state in states)
        counted = sum(s.llama_state_size + s.scores.nbytes + s.input_ids.nbytes for s in states)
        assert backend.prefix_cache_stats().size_bytes == counted
        # Restoring a state with one row of logits gives the same answers as no cache at all.
        assert backend.prefix_cache_stats().hits >= 1
        expected = [(await plain.generate(ask(p, max_tokens=6, temperature=0))).text for p in prompts]
        assert answers == expected and again == expected[0]
    finally:
        backend.close()
        plain.close()


async def test_context_overflow_is_a_model_request_error(backend):
    with pytest.raises(ModelRequestError) as info:
        await backend.generate(ask("word " * 3000, max_tokens=4))
    assert str(backend.model_path) in str(info.value)
    assert "context window" in str(info.value)


async def test_timeout_ends_the_call_and_frees_the_model(backend, monkeypatch):
    evaluated = _count_evaluated_tokens(backend.llama, monkeypatch)
    with pytest.raises(RequestTimeout, match="0.005 s"):
        await backend.generate(ask("go on forever", max_tokens=1900, temperature=0, timeout_s=0.005))
    response = await backend.generate(ask("after", max_tokens=4, temperature=0))
    assert response.usage.output_tokens == 4
    # The timed-out call was ended at its deadline, not left to run to 1,900 tokens on the worker thread.
    assert len(evaluated) < 500


def test_missing_file_is_unavailable_and_names_the_path(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(BackendUnavailable) as info:
        LlamaBackend(missing)
    assert str(missing) in str(info.value)


def test_a_file_that_is_not_a_model_is_unavailable(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    backend = LlamaBackend(junk)
    with pytest.raises(BackendUnavailable, match="cannot load"):
        backend.load()


def test_without_llama_cpp_the_error_says_how_to_install(tiny_gguf, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'promptkit\[local\]'"):
        LlamaBackend(tiny_gguf)


@pytest.mark.parametrize("bad", [{"prefix_cache": -1}, {"n_ctx": 0}])
def test_bad_options_are_config_errors(tiny_gguf, bad):
    with pytest.raises(ConfigError):
        LlamaBackend(tiny_gguf, **bad)


def test_capabilities():
    caps = LlamaBackend.capabilities
    assert (caps.structured_output, caps.streaming, caps.embeddings, caps.tools) == (True, True, False, False)


def test_generate_sync_works_from_plain_code(backend):
    response = backend.generate_sync(ask("sync", max_tokens=3, temperature=0))
    assert response.usage.output_tokens == 3


@pytest.mark.parametrize("bad", [{"max_tokens": 0}, {"n_threads": 0}, {"n_threads": "many"}])
def test_bad_limits_are_config_errors(tiny_gguf, bad):
    with pytest.raises(ConfigError):
        LlamaBackend(tiny_gguf, **bad)


async def test_a_call_without_max_tokens_is_capped(tiny_gguf):
    capped = LlamaBackend(tiny_gguf, n_ctx=2048, n_threads=1, max_tokens=7)
    try:
        response = await capped.generate(ask("write forever", temperature=0))
        assert response.usage.output_tokens <= 7 and response.finish_reason == "length"
        asked = await capped.generate(ask("write forever", temperature=0, max_tokens=9))
        assert asked.usage.output_tokens == 9, "the request's own max_tokens wins"
    finally:
        capped.close()


def test_the_context_window_is_n_ctx(backend):
    assert backend.context_window == 2048


async def test_watch_tokens_reports_each_token_of_a_call(backend):
    seen: list[TokenProgress] = []
    with watch_tokens(seen.append):
        response = await backend.generate(ask("count", max_tokens=6, temperature=0))
    await backend.generate(ask("unwatched", max_tokens=3, temperature=0))
    assert [p.output_tokens for p in seen] == list(range(6)), "once before each answer token"
    assert {p.prompt_tokens for p in seen} == {response.usage.input_tokens}
    assert seen[0].model == backend.model_path.name and seen[-1].seconds >= 0


async def test_cancelling_a_call_stops_the_model_at_its_next_token(backend, monkeypatch):
    evaluated = _count_evaluated_tokens(backend.llama, monkeypatch)
    started = threading.Event()
    blocker = asyncio.ensure_future(asyncio.sleep(10))  # another task: the call goes to the worker thread
    with watch_tokens(lambda p: started.set() if p.output_tokens >= 5 else None):
        call = asyncio.ensure_future(backend.generate(ask("go on forever", max_tokens=1900, temperature=0)))
    while not started.is_set():
        await asyncio.sleep(0.005)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    blocker.cancel()
    # The model is free again at once, and the cancelled call did not run on to 1,900 tokens.
    response = await asyncio.wait_for(backend.generate(ask("after", max_tokens=2, temperature=0)), 10)
    assert response.usage.output_tokens == 2
    assert len(evaluated) < 500


def test_auto_threads_leaves_busy_cores_to_their_processes():
    import os
    import subprocess

    cores = len(os.sched_getaffinity(0))
    assert auto_threads() in range(1, cores + 1)
    if cores < 2:
        pytest.skip("needs two cores to see one taken")
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores - 1)]
    try:
        time.sleep(0.3)
        assert auto_threads(sample_s=0.3) == 1
    finally:
        for p in spinners:
            p.kill()
            p.wait()


async def test_threads_are_chosen_when_the_model_loads(tiny_gguf):
    auto = LlamaBackend(tiny_gguf, n_ctx=512)  # n_threads="auto" by default
    try:
        assert 1 <= auto.n_threads <= len(__import__("os").sched_getaffinity(0))
    finally:
        auto.close()


async def test_auto_threads_follow_the_load_from_call_to_call(tiny_gguf):
    import os
    import subprocess

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores to see one taken")
    auto = LlamaBackend(tiny_gguf, n_ctx=512, prefix_cache=False)
    try:
        auto.load()
        spinners = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(len(os.sched_getaffinity(0)) - 1)
        ]
        try:
            time.sleep(1.3)
            await auto.generate(ask("busy", max_tokens=2))
            assert auto.llama.n_threads == 1, "a neighbour holds a core: one thread"
        finally:
            for p in spinners:
                p.kill()
                p.wait()
        if auto_threads(sample_s=1.3) < len(os.sched_getaffinity(0)):
            pytest.skip("another process keeps a core busy: cannot see the return to every core")
        await auto.generate(ask("quiet", max_tokens=2))
        assert auto.llama.n_threads == len(os.sched_getaffinity(0)), "the neighbour left: every core again"
    finally:
        auto.close()


def test_a_looping_answer_is_recognised_and_other_text_is_not():
    from promptkit.backends._llama import _looping

    block = list(range(100, 130))  # 30 tokens
    assert _looping([1, 2, 3, *block * 4])
    assert not _looping([1, 2, 3, *block * 3]), "three repeats may be legitimate code"
    assert not _looping(list(range(500)))
    assert not _looping([7] * 10), "too short to judge"


def test_sampling_defaults_apply_to_every_call_and_are_checked(tiny_gguf):
    with pytest.raises(ConfigError, match="sampling takes"):
        LlamaBackend(tiny_gguf, sampling={"temperature": 0})
    b = LlamaBackend(tiny_gguf, n_ctx=512, n_threads=1, sampling={"repeat_penalty": 1.05})
    assert b._call_kwargs(ask("x"))["repeat_penalty"] == 1.05
    assert b._call_kwargs(ask("x", params={"repeat_penalty": 1.2}))["repeat_penalty"] == 1.2


def test_a_call_given_up_stops_between_prompt_batches():
    from promptkit.backends._llama import _Halted, _wrap_eval

    class FakeLlama:
        n_batch = 4

        def __init__(self) -> None:
            self.batches: list[list[int]] = []

        def eval(self, tokens):  # type: ignore[no-untyped-def]
            self.batches.append(list(tokens))

    llama = FakeLlama()
    given_up = threading.Event()
    _wrap_eval(llama, None, given_up.is_set)
    llama.eval(list(range(10)))
    assert llama.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]], "read in n_batch pieces, in order"
    llama.batches.clear()

    def evaluate_then_give_up(tokens):  # type: ignore[no-untyped-def]
        llama.batches.append(list(tokens))
        given_up.set()

    llama2 = FakeLlama()
    llama2.eval = evaluate_then_give_up  # type: ignore[method-assign]
    _wrap_eval(llama2, None, given_up.is_set)
    with pytest.raises(_Halted):
        llama2.eval(list(range(10)))
    assert llama.batches == [[0, 1, 2, 3]], "the rest of the prompt is never read"


async def test_a_trailing_assistant_message_is_continued_not_answered(backend):
    prefill = "Sure:\n```python\n"
    question = [Message(role="user", content="Write a function.")]
    plain = await backend.generate(GenerateRequest(messages=question, max_tokens=8, temperature=0))
    continued = await backend.generate(
        GenerateRequest(
            messages=[*question, Message(role="assistant", content=prefill)], max_tokens=8, temperature=0
        )
    )
    assert continued.text.startswith(prefill) and len(continued.text) > len(prefill)
    assert continued.usage.output_tokens == 8
    # The prompt is the chat prompt plus the prefill's own tokens: no closed turn, no second assistant header.
    llama = backend.llama
    added = len(llama.tokenize(prefill.encode(), add_bos=False, special=True))
    assert continued.usage.input_tokens == plain.usage.input_tokens + added
    chunks = [
        c
        async for c in backend.stream(
            GenerateRequest(
                messages=[*question, Message(role="assistant", content=prefill)], max_tokens=8, temperature=0
            )
        )
    ]
    assert chunks[0] == prefill and "".join(chunks) == continued.text
    with pytest.raises(ModelRequestError, match="cannot be combined"):
        await backend.generate(
            GenerateRequest(
                messages=[*question, Message(role="assistant", content=prefill)],
                max_tokens=8,
                params={"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            )
        )
