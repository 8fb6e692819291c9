"""The local backend: a GGUF model run in-process by llama-cpp-python.

One loaded model is shared by every backend that asks for the same file with the same load parameters (a small
module-level pool, reference-counted). llama.cpp contexts are not thread-safe, so each loaded model has one
worker thread that runs its calls in order, plus a lock for anyone who uses the ``Llama`` object directly.
When the calling event loop has nothing else to run, a call runs on the loop's own thread instead (see
``_loop_is_idle``): the hand-off to the worker and back costs 100-200 µs of thread wake-ups and buys nothing there.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import functools
import importlib.util
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from promptkit.backends._base import BaseBackend, Capabilities, GenerateRequest, GenerateResponse
from promptkit.backends._grammar import apply_grammar_fix, json_schema_grammar
from promptkit.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    ModelRequestError,
    PromptkitError,
    RequestTimeout,
)
from promptkit.types import Usage

__all__ = [
    "LlamaBackend",
    "PrefixCacheStats",
    "DEFAULT_PREFIX_CACHE_BYTES",
    "DEFAULT_MAX_TOKENS",
    "TokenProgress",
    "auto_threads",
    "loaded_model_count",
    "watch_tokens",
]

DEFAULT_PREFIX_CACHE_BYTES = 2 << 30  # llama-cpp-python's own default for LlamaRAMCache
# A call that sets no max_tokens stops here: a small model that loops would otherwise write until the
# context is full (minutes on a CPU).
DEFAULT_MAX_TOKENS = 1024
_INSTALL_HINT = "llama-cpp-python is not installed: pip install 'promptkit[local]'"
# Keys of request.params that would break the call's contract if a caller could override them.
_RESERVED_PARAMS = frozenset({"messages", "stream", "grammar", "logits_processor"})


@dataclass(frozen=True)
class PrefixCacheStats:
    """What the prompt-prefix cache of one loaded model has done so far."""

    lookups: int
    hits: int
    entries: int
    size_bytes: int
    capacity_bytes: int


class _DeadlinePassed(Exception):
    """The call's timeout passed before it could start or finish."""


@dataclass(eq=False)
class _LoadedModel:
    key: tuple[Any, ...]
    llama: Any
    cache: Any | None
    capacity_bytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptkit-llama")
    )
    refs: int = 0
    threads: _ThreadChooser | None = None  # set for n_threads="auto"
    # The running call's stop flag and deadline (set under ``lock`` for the call's duration).
    stop: Any = None  # threading.Event or _CancelRequested: anything with is_set()
    deadline: float | None = None

    formatter: Any = None  # the GGUF chat template, for continuing an assistant message (built on first use)

    def halted(self) -> bool:
        stop, deadline = self.stop, self.deadline
        return (stop is not None and stop.is_set()) or (deadline is not None and time.monotonic() > deadline)

    @property
    def name(self) -> str:
        return Path(self.key[0]).name

    def close(self) -> None:
        with self.lock:
            self.llama.close()


_pool: dict[tuple[Any, ...], _LoadedModel] = {}
_pool_lock = threading.Lock()


@atexit.register
def _close_pool() -> None:
    # Free the models while llama_cpp's module globals still exist; a Llama left to __del__ at interpreter
    # teardown raises "Exception ignored ... 'NoneType' object is not callable".
    with _pool_lock:
        models = list(_pool.values())
        _pool.clear()
    for model in models:
        model.close()
        model.executor.shutdown(wait=False)


def loaded_model_count() -> int:
    """How many distinct models are loaded in this process right now."""
    with _pool_lock:
        return len(_pool)


def _state_bytes(state: Any) -> int:
    return int(state.llama_state_size) + int(state.scores.nbytes) + int(state.input_ids.nbytes)


def _counting_ram_cache(capacity_bytes: int, *, last_logits_only: bool = True) -> Any:
    """A ``LlamaRAMCache`` that counts its lookups and prefix hits, and its real size.

    llama-cpp-python's saved state copies the logits of every prompt position (tokens x vocabulary floats:
    about 180 MB for a 300-token prompt of a 152k-token vocabulary) while its cache counts only the KV bytes,
    so a long eval grew past 24 GB and was killed. Only the last position's logits are read again (the next
    token's; a restored prefix re-evaluates at least its last token), so the rest is dropped, unless the model
    keeps every position's logits (``logits_all``, for prompt logprobs); the size counts what is kept.
    """
    from llama_cpp import LlamaRAMCache

    class _CountingRAMCache(LlamaRAMCache):  # type: ignore[misc]
        def __init__(self, capacity: int) -> None:
            super().__init__(capacity_bytes=capacity)
            self.lookups = 0
            self.hits = 0

        @property
        def cache_size(self) -> int:
            return sum(_state_bytes(state) for state in self.cache_state.values())

        def __getitem__(self, key: Any) -> Any:
            self.lookups += 1
            value = super().__getitem__(key)  # KeyError on a miss, as llama-cpp-python expects
            self.hits += 1
            return value

        def __setitem__(self, key: Any, value: Any) -> None:
            if last_logits_only and value.scores is not None and len(value.scores) > 1:
                value.scores = value.scores[-1:].copy()  # load_state broadcasts it back over the prefix
            super().__setitem__(key, value)

    return _CountingRAMCache(capacity_bytes)


def _load(key: tuple[Any, ...], path: Path, capacity_bytes: int, load_kwargs: dict[str, Any]) -> _LoadedModel:
    try:
        import llama_cpp
    except ImportError:
        raise BackendUnavailable(_INSTALL_HINT, location=str(path)) from None
    apply_grammar_fix()
    chooser = None
    if load_kwargs.get("n_threads") == "auto":
        # Chosen when the model loads, then again while it computes (_ThreadChooser); the pool key keeps
        # "auto", so backends share one loaded model.
        threads = auto_threads()
        chooser = _ThreadChooser(threads)
        load_kwargs = {**load_kwargs, "n_threads": threads}
        if load_kwargs.get("n_threads_batch") == "auto":
            load_kwargs["n_threads_batch"] = threads
    all_logits = bool(load_kwargs.get("logits_all"))  # asked for by the user (logprobs), kept in the cache
    lookup = load_kwargs.get("prompt_lookup")
    if lookup:
        from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

        # Draft tokens copied from the prompt where its last tokens appeared before; verified in one batch.
        # Verifying needs every position's logits: llama-cpp-python switches that on for a draft model but
        # sizes its logits array from the logits_all argument, so a prompt over n_batch tokens fails unless
        # it is passed too.
        load_kwargs = {k: v for k, v in load_kwargs.items() if k != "prompt_lookup"}
        load_kwargs["draft_model"] = LlamaPromptLookupDecoding(num_pred_tokens=lookup)
        load_kwargs["logits_all"] = True
    try:
        llama = llama_cpp.Llama(model_path=str(path), **load_kwargs)
    except TypeError as exc:
        raise ConfigError(f"invalid llama.cpp option: {exc}", location=str(path)) from None
    except (ValueError, RuntimeError, OSError) as exc:
        raise BackendUnavailable(f"llama.cpp cannot load this model: {exc}", location=str(path)) from None
    cache = None
    if capacity_bytes > 0:
        cache = _counting_ram_cache(capacity_bytes, last_logits_only=not all_logits)
        llama.set_cache(cache)
    model = _LoadedModel(key=key, llama=llama, cache=cache, capacity_bytes=capacity_bytes, threads=chooser)
    _wrap_eval(llama, chooser, model.halted)
    return model


def _acquire(
    key: tuple[Any, ...], path: Path, capacity_bytes: int, load_kwargs: dict[str, Any]
) -> _LoadedModel:
    with _pool_lock:
        model = _pool.get(key)
        if model is None:
            model = _pool[key] = _load(key, path, capacity_bytes, load_kwargs)
        model.refs += 1
        return model


def _release(model: _LoadedModel) -> None:
    with _pool_lock:
        model.refs -= 1
        if model.refs > 0 or _pool.get(model.key) is not model:
            return
        del _pool[model.key]
    # Queued behind any call still running on the model's worker thread.
    model.executor.submit(model.close)
    model.executor.shutdown(wait=False)


def _freeze(options: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in options.items()))


def _cache_capacity(prefix_cache: bool | int, where: str) -> int:
    if isinstance(prefix_cache, bool):
        return DEFAULT_PREFIX_CACHE_BYTES if prefix_cache else 0
    if not isinstance(prefix_cache, int) or prefix_cache < 0:
        raise ConfigError(
            f"prefix_cache must be true, false or a size in bytes, got {prefix_cache!r}", location=where
        )
    return prefix_cache


@functools.lru_cache(maxsize=256)
def _grammar_for(output_model: type[BaseModel]) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(json_schema_grammar(output_model), verbose=False)


# Sampling settings a backend may default for every call (a request's params still win).
_SAMPLING_KEYS = frozenset(
    {"repeat_penalty", "top_k", "top_p", "min_p", "presence_penalty", "frequency_penalty"}
)

# Calls whose output a grammar constrains: forcing end-of-text there could leave the grammar unfinished.
_CONSTRAINED_KEYS = ("grammar", "response_format", "tools", "functions")


@dataclass(frozen=True)
class TokenProgress:
    """How far a local call has got: its model, the prompt's tokens, answer tokens so far, seconds since the
    first answer token."""

    model: str
    prompt_tokens: int
    output_tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds > 0 else 0.0


_on_tokens: contextvars.ContextVar[Callable[[TokenProgress], None] | None] = contextvars.ContextVar(
    "promptkit_on_tokens", default=None
)


@contextlib.contextmanager
def watch_tokens(callback: Callable[[TokenProgress], None]) -> Iterator[None]:
    """Call ``callback`` (from the model's thread) after each token of every local call made inside the block.

    For progress displays: keep the callback cheap, it runs between tokens."""
    token = _on_tokens.set(callback)
    try:
        yield
    finally:
        _on_tokens.reset(token)


def _cpu_ticks() -> tuple[int, int]:
    """(busy ticks of the whole machine, busy ticks of this process) from /proc."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    with open("/proc/self/stat", encoding="ascii") as handle:
        own = handle.read().rsplit(")", 1)[1].split()
    return sum(fields[:8]) - idle, int(own[11]) + int(own[12])


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _free_cores(cores: int, before: tuple[int, int], after: tuple[int, int], seconds: float) -> int:
    """Cores left over from other processes between two ``_cpu_ticks`` samples ``seconds`` apart."""
    ticks = seconds * os.sysconf("SC_CLK_TCK")
    if ticks <= 0:
        return cores
    others = max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / ticks)
    return max(1, min(cores, cores - int(others + 0.5)))


def auto_threads(sample_s: float = 0.1) -> int:
    """Threads for a local model: every core this process may use, less the cores other processes keep busy.

    llama.cpp's threads wait for each other at every layer, spinning; a thread whose core is taken by another
    process stalls the rest, so on a 2-core machine with one other busy process 2 threads run far slower than
    1. Measured over ``sample_s`` from /proc; where that cannot be read, every core.
    """
    cores = _cores()
    try:
        before = _cpu_ticks()
        time.sleep(sample_s)
        return _free_cores(cores, before, _cpu_ticks(), sample_s)
    except (OSError, ValueError, IndexError):
        return cores


class _ThreadChooser:
    """Re-chooses an "auto" model's thread count while it computes, from the CPU use of other processes
    since the last choice: at most once a second, between two batches of the prompt or two answer tokens
    (reading /proc costs ~50 µs). A count chosen once would keep a model on one thread long after a
    neighbour that was busy at load time has gone, or on every core while a neighbour now needs one."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.cores = _cores()
        self.at = time.monotonic()
        try:
            self.sample: tuple[int, int] | None = _cpu_ticks()
        except (OSError, ValueError, IndexError):
            self.sample = None

    def adjust(self, llama: Any) -> None:
        now = time.monotonic()
        if self.sample is None or now - self.at < 1.0:
            return
        try:
            sample = _cpu_ticks()
        except (OSError, ValueError, IndexError):
            return
        threads = _free_cores(self.cores, self.sample, sample, now - self.at)
        self.sample, self.at = sample, now
        if threads != self.threads:
            llama._ctx.set_n_threads(threads, threads)
            llama.n_threads = llama.n_threads_batch = threads
            self.threads = threads


class _CancelRequested:
    """A stop flag for a call made on the event loop's own thread: set once the calling task is asked to
    cancel. asyncio.run turns Ctrl-C into exactly that, but only delivers it when the loop runs again, which a
    blocking call on the loop's thread would delay to its end."""

    def __init__(self) -> None:
        self.task = asyncio.current_task()

    def is_set(self) -> bool:
        task = self.task
        if task is None:
            return False
        cancelling = getattr(task, "cancelling", None)  # Python 3.11+
        return bool(cancelling()) if cancelling is not None else bool(getattr(task, "_must_cancel", False))


class _Halted(Exception):
    """The call was given up (cancelled, or past its deadline) while its prompt was being read."""


def _wrap_eval(llama: Any, chooser: _ThreadChooser | None, halted: Callable[[], bool]) -> None:
    """Make ``llama.eval`` (every prompt batch, every answer token) first let ``chooser`` re-choose the
    threads, and stop a call given up while its prompt is read: a 2,000-token prompt is seconds of C code
    that no logits processor interrupts (it only runs once the answer starts)."""
    evaluate = llama.eval
    step = max(1, int(llama.n_batch))

    def eval_batches(tokens: Any) -> None:
        for start in range(0, len(tokens), step):
            if halted():
                raise _Halted
            if chooser is not None:
                chooser.adjust(llama)
            evaluate(tokens if len(tokens) <= step else tokens[start : start + step])

    llama.eval = eval_batches


def _watcher(
    model: _LoadedModel,
    on_tokens: Callable[[TokenProgress], None] | None,
    constrained: bool,
    bias: dict[int, float] | None = None,
) -> Callable[[Any, Any], Any]:
    """A logits processor run before each answer token: it reports progress, and once the running call is
    given up (``model.halted()``: its stop flag set or its deadline passed) or its answer loops it makes
    end-of-text the only choice (not under a grammar, which must finish).

    It runs inside a ctypes callback, where exceptions are swallowed, so it cannot abort the call; ending the
    answer early is the way to free the model for the calls queued behind it.
    """
    eos = model.llama.token_eos()
    name = model.name
    state: dict[str, Any] = {"prompt": None, "first": 0.0}

    def check(input_ids: Any, scores: Any) -> Any:
        if state["prompt"] is None:
            state["prompt"] = len(input_ids)
            state["first"] = time.perf_counter()
        done = len(input_ids) - state["prompt"]
        for token, value in (bias or {}).items():
            scores[token] += value
        if on_tokens is not None:
            on_tokens(TokenProgress(name, state["prompt"], done, time.perf_counter() - state["first"]))
        ended = model.halted()
        if not ended and done and done % _LOOP_CHECK_EVERY == 0:
            ended = _looping(input_ids[state["prompt"] :])
        if ended and not constrained:
            scores[:] = -float("inf")
            scores[eos] = 0.0
        return scores

    return check


# A greedy small model can fall into a loop, writing the same lines until max_tokens: an answer whose last
# _LOOP_MIN_PERIOD+ tokens repeat _LOOP_REPEATS times in a row is ended there (its text fails its checks and
# the errors go back to the model, a minute sooner on a CPU). Legitimate code rarely repeats a 24-token block
# four times over.
_LOOP_CHECK_EVERY = 16
_LOOP_MIN_PERIOD = 24
_LOOP_MAX_PERIOD = 256
_LOOP_REPEATS = 4


# create_chat_completion's keys that a plain completion has no use for, or cannot honour.
_CHAT_ONLY_KEYS = ("messages", "response_format", "tools", "tool_choice", "functions", "function_call")


def _continuation_formatter(model: _LoadedModel) -> Any:
    """The GGUF's chat template set up as llama-cpp-python sets it up for chat completions."""
    if model.formatter is None:
        from llama_cpp import llama_chat_format

        llama = model.llama
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelRequestError(
                "cannot continue an assistant message: the GGUF has no chat template", location=model.name
            )
        eos, bos = llama.token_eos(), llama.token_bos()
        model.formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
    return model.formatter


def _chat(model: _LoadedModel, kwargs: dict[str, Any]) -> Any:
    """A chat completion. A trailing assistant message is continued, not answered: the model writes on
    from its text (a prefill such as an opened code fence), and the answer includes it."""
    messages = kwargs["messages"]
    if not messages or messages[-1]["role"] != "assistant":
        return model.llama.create_chat_completion(**kwargs)
    unsupported = sorted(k for k in _CHAT_ONLY_KEYS[1:] if kwargs.get(k) is not None)
    if unsupported:
        raise ModelRequestError(
            f"a trailing assistant message cannot be combined with {unsupported}", location=model.name
        )
    rendered = _continuation_formatter(model)(messages=messages[:-1])
    prefill = messages[-1]["content"]
    tokens = model.llama.tokenize(
        (rendered.prompt + prefill).encode("utf-8"), add_bos=not rendered.added_special, special=True
    )
    options = {k: v for k, v in kwargs.items() if k not in _CHAT_ONLY_KEYS}
    options["stop"] = [*(options.get("stop") or []), *rendered.stop]
    options.setdefault("max_tokens", None)  # create_completion's own default is 16 tokens
    completion = model.llama.create_completion(
        prompt=tokens, stopping_criteria=rendered.stopping_criteria, **options
    )
    if options.get("stream"):
        return _continued_chunks(prefill, completion)
    choice = completion["choices"][0]
    return {
        "choices": [
            {
                "message": {"role": "assistant", "content": prefill + choice["text"]},
                "finish_reason": choice.get("finish_reason"),
            }
        ],
        "usage": completion.get("usage"),
    }


def _continued_chunks(prefill: str, chunks: Any) -> Iterator[dict[str, Any]]:
    """Completion chunks shaped as chat deltas, the prefill first."""
    try:
        yield {"choices": [{"delta": {"content": prefill}}]}
        for chunk in chunks:
            yield {"choices": [{"delta": {"content": chunk["choices"][0]["text"]}}]}
    finally:
        chunks.close()


# What the batch engine honours; anything else (a grammar, penalties, logit_bias) runs sequentially.
_BATCHABLE_KEYS = frozenset({"messages", "temperature", "max_tokens", "top_p", "stop", "seed"})


def _batchable(kwargs: dict[str, Any]) -> bool:
    extra = set(kwargs) - _BATCHABLE_KEYS
    return not extra or (extra == {"repeat_penalty"} and kwargs["repeat_penalty"] == 1.0)


def _looping(tokens: Any) -> bool:
    """Whether ``tokens`` end in a block repeated ``_LOOP_REPEATS`` times back to back."""
    import numpy as np

    tail = np.asarray(tokens)
    for period in range(_LOOP_MIN_PERIOD, min(_LOOP_MAX_PERIOD, len(tail) // _LOOP_REPEATS) + 1):
        last = tail[-period:]
        if all(np.array_equal(tail[-(k + 1) * period : -k * period], last) for k in range(1, _LOOP_REPEATS)):
            return True
    return False


def _loop_is_idle(loop: asyncio.AbstractEventLoop) -> bool:
    """True when nothing but the calling task could run on ``loop`` while a call blocks its thread.

    That is: asyncio's own selector loop, not in debug mode (it would report the call as a slow callback), with
    no other task, no ready callback, no timer, no signal handler and no watched file descriptor besides its
    wake-up pipe. Other threads can still hand it work (``call_soon_threadsafe``); that waits, as it would for
    any blocking call. Anything unknown (uvloop, a private attribute that moved) answers False.
    """
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop) or loop.get_debug():
        return False
    try:
        if loop._ready or loop._scheduled or getattr(loop, "_signal_handlers", None):  # type: ignore[attr-defined]
            return False
        if len(loop._selector.get_map()) > 1:  # type: ignore[attr-defined]
            return False
    except AttributeError:
        return False
    tasks = asyncio.all_tasks(loop)
    return len(tasks) == 1 and asyncio.current_task(loop) in tasks


def _consume_exception(future: asyncio.Future[Any]) -> None:
    # The caller gave up on this call; retrieve its outcome so asyncio does not log it as never retrieved.
    if not future.cancelled():
        future.exception()


class LlamaBackend(BaseBackend):
    """A local GGUF model, run in-process with llama-cpp-python.

    ``n_threads`` sets the threads for generation and (unless ``n_threads_batch`` is given) prompt evaluation:
    ``"auto"`` (default) uses the cores that other processes leave free, chosen when the model loads and
    re-checked while it computes (see :func:`auto_threads`); ``None`` keeps llama-cpp-python's defaults (half the cores). ``max_tokens`` caps an
    answer whose request sets none (``None``: no cap). ``sampling`` sets defaults for every call, e.g.
    ``{"repeat_penalty": 1.05}`` (Qwen's own setting, which keeps greedy small models out of loops).
    ``prefix_cache``: ``True`` keeps up to 2 GiB of llama.cpp states keyed by prompt tokens, so a call that
    shares a long prefix with an earlier one (not just the previous one) skips re-evaluating it; an ``int`` sets
    the capacity in bytes; ``False`` or ``0`` turns it off. ``parallel``: decode up to this many answers at once
    in one batch (continuous batching, :mod:`promptkit.backends._llama_batch`; each gets ``n_ctx`` tokens),
    for callers that send several requests concurrently, such as an eval suite with ``concurrency:``;
    grammar-constrained calls still run one at a time; with ``prefix_cache`` on, a batched prompt copies the
    start it shares with any sequence still in the batch's KV cache instead of evaluating it again.
    ``prompt_lookup``: draft this many tokens per step by copying from the prompt (llama-cpp-python's
    prompt-lookup decoding), for answers that mostly copy their input, such as whole-file edits; 0 (default)
    turns it off. Other keyword arguments go to ``llama_cpp.Llama``.
    The model loads on first use (or on :meth:`load`) and is shared with other backends for the same file
    and parameters; :meth:`aclose` gives it back, and the last backend to close it frees it.
    """

    name = "local"
    capabilities: ClassVar[Capabilities] = Capabilities(
        structured_output=True, streaming=True, embeddings=False, tools=False, prefill=True
    )

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | str | None = "auto",
        seed: int = 0,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        sampling: dict[str, Any] | None = None,
        prefix_cache: bool | int = True,
        chat_format: str | None = None,
        parallel: int = 1,
        prompt_lookup: int = 0,
        verbose: bool = False,
        **llama_kwargs: Any,
    ) -> None:
        path = Path(model_path).expanduser()
        label = path.name
        if not path.is_file():  # a catalog name ("local:qwen2.5-coder-0.5b") means the model store's file
            from promptkit.models import resolve_local_model

            path = resolve_local_model(model_path)
            label = str(model_path)
        where = str(path)
        if importlib.util.find_spec("llama_cpp") is None:
            raise BackendUnavailable(_INSTALL_HINT, location=where)
        if n_ctx < 1:
            raise ConfigError(f"n_ctx must be at least 1, got {n_ctx}", location=where)
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {max_tokens}", location=where)
        if (
            n_threads is not None
            and n_threads != "auto"
            and (not isinstance(n_threads, int) or n_threads < 1)
        ):
            raise ConfigError(
                f"n_threads must be a positive number, 'auto' or None, got {n_threads!r}", location=where
            )
        if not isinstance(parallel, int) or parallel < 1:
            raise ConfigError(
                f"parallel must be a positive number of slots, got {parallel!r}", location=where
            )
        self.parallel = parallel
        self._engine: Any = None
        self.max_tokens = max_tokens
        unknown = set(sampling or {}) - _SAMPLING_KEYS
        if unknown:
            raise ConfigError(
                f"sampling takes {sorted(_SAMPLING_KEYS)}, not {sorted(unknown)}", location=where
            )
        self.sampling = dict(sampling or {})
        self.model_path = path.resolve()
        self.model_name = path.name
        self.name = f"local:{label}"
        self._capacity = _cache_capacity(prefix_cache, where)
        load_kwargs: dict[str, Any] = {"n_ctx": n_ctx, "seed": seed, "verbose": verbose, **llama_kwargs}
        if n_threads is not None:
            load_kwargs["n_threads"] = n_threads
            # Prompt evaluation too: llama.cpp would otherwise use every core there, and its spinning threads
            # slow to a crawl on a busy machine.
            load_kwargs.setdefault("n_threads_batch", n_threads)
        if chat_format is not None:
            load_kwargs["chat_format"] = chat_format
        if not isinstance(prompt_lookup, int) or prompt_lookup < 0:
            raise ConfigError(
                f"prompt_lookup must be a number of draft tokens (0: off), got {prompt_lookup!r}",
                location=where,
            )
        if prompt_lookup:
            load_kwargs["prompt_lookup"] = prompt_lookup
        self._load_kwargs = load_kwargs
        stat = self.model_path.stat()
        # A rewritten file (new mtime or size) is a different model.
        self._key = (
            str(self.model_path),
            stat.st_mtime_ns,
            stat.st_size,
            self._capacity,
            _freeze(load_kwargs),
        )
        self._model: _LoadedModel | None = None
        self._closed = False
        self._state_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LlamaBackend({str(self.model_path)!r}, n_ctx={self._load_kwargs['n_ctx']})"

    @property
    def context_window(self) -> int:
        """Tokens the loaded context holds, prompt and answer together (``n_ctx``)."""
        return int(self._load_kwargs["n_ctx"])

    @property
    def n_threads(self) -> int | None:
        """Threads the loaded model generates with (None: llama-cpp-python's default); loads the model."""
        return self._loaded().llama.n_threads  # type: ignore[no-any-return]

    # -- loading -------------------------------------------------------------------------------------------

    def _loaded(self) -> _LoadedModel:
        model = self._model
        if model is not None:
            return model
        with self._state_lock:
            if self._closed:
                raise BackendUnavailable("this backend is closed", location=str(self.model_path))
            if self._model is None:
                self._model = _acquire(self._key, self.model_path, self._capacity, self._load_kwargs)
            return self._model

    def load(self) -> Any:
        """Load the model now (it otherwise loads on the first call) and return the ``llama_cpp.Llama``."""
        return self._loaded().llama

    @property
    def llama(self) -> Any:
        """The shared ``llama_cpp.Llama``. Hold :attr:`lock` while calling it directly."""
        return self._loaded().llama

    @property
    def lock(self) -> threading.Lock:
        """The lock that serialises every call to this loaded model."""
        return self._loaded().lock

    def prefix_cache_stats(self) -> PrefixCacheStats | None:
        """Counters of the loaded model's prompt-prefix cache; None when the cache is off or nothing is loaded."""
        model = self._model
        if model is None or model.cache is None:
            return None
        with model.lock:
            cache = model.cache
            return PrefixCacheStats(
                lookups=cache.lookups,
                hits=cache.hits,
                entries=len(cache.cache_state),
                size_bytes=cache.cache_size,
                capacity_bytes=model.capacity_bytes,
            )

    async def _model_async(self) -> _LoadedModel:
        model = self._model
        if model is not None:
            return model
        return await asyncio.to_thread(self._loaded)

    # -- calls ---------------------------------------------------------------------------------------------

    def _call_kwargs(self, request: GenerateRequest) -> dict[str, Any]:
        messages = []
        for m in request.messages:
            message = {"role": m.role, "content": m.content}
            if m.name is not None:
                message["name"] = m.name
            messages.append(message)
        kwargs: dict[str, Any] = {"messages": messages, **self.sampling}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        elif self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.params:
            reserved = _RESERVED_PARAMS.intersection(request.params)
            if reserved:
                raise ModelRequestError(f"params may not set {sorted(reserved)}", location=self.name)
            if request.output_model is not None and "response_format" in request.params:
                raise ModelRequestError(
                    "give either output_model or params['response_format'], not both", location=self.name
                )
            kwargs.update(request.params)
        if request.output_model is not None:
            kwargs["grammar"] = _grammar_for(request.output_model)
        return kwargs

    def _error(self, exc: Exception, request: GenerateRequest) -> PromptkitError:
        where = str(self.model_path)
        if isinstance(exc, PromptkitError):
            return exc
        if isinstance(exc, _DeadlinePassed):
            return RequestTimeout(f"no answer within {request.timeout_s} s", location=where)
        if isinstance(exc, ValueError) and "context window" in str(exc):
            return ModelRequestError(f"prompt too long: {exc}", location=where)
        if isinstance(exc, (ValueError, TypeError)):
            return ModelRequestError(f"llama.cpp rejected the request: {exc}", location=where)
        return BackendError(f"llama.cpp failed: {type(exc).__name__}: {exc}", location=where)

    @staticmethod
    def _call(
        model: _LoadedModel,
        kwargs: dict[str, Any],
        deadline: float | None,
        stop: threading.Event | _CancelRequested | None = None,
        on_tokens: Callable[[TokenProgress], None] | None = None,
    ) -> tuple[Any, float]:
        """The completion and its compute seconds; the caller holds ``model.lock``."""
        if deadline is not None and time.monotonic() > deadline:
            raise _DeadlinePassed  # timed out while queued: don't start
        if stop is not None and stop.is_set():
            raise asyncio.CancelledError  # given up while queued
        # A stop or a deadline ends the call between two tokens through the model's eval (_wrap_eval), at no
        # cost per token. The watcher, a per-token Python callback through llama.cpp's sampler (~25 µs a
        # token), runs only where it is needed: for progress, and to end a looping answer in timed calls (the
        # executor's, scaffold's); an untimed call is bounded by max_tokens.
        if deadline is not None or on_tokens is not None:
            constrained = any(key in kwargs for key in _CONSTRAINED_KEYS)
            from llama_cpp import LogitsProcessorList

            # llama-cpp-python drops logit_bias when a logits processor is given (it assigns the None that
            # list.extend returns), so the watcher applies the bias itself.
            bias = {int(k): float(v) for k, v in (kwargs.pop("logit_bias", None) or {}).items()}
            watcher = _watcher(model, on_tokens, constrained, bias)
            kwargs["logits_processor"] = LogitsProcessorList([watcher])
        started = time.perf_counter()
        model.stop, model.deadline = stop, deadline
        try:
            completion = _chat(model, kwargs)
        except _Halted:
            if deadline is not None and time.monotonic() > deadline:
                raise _DeadlinePassed from None
            raise asyncio.CancelledError from None
        finally:
            model.stop = model.deadline = None
        elapsed = time.perf_counter() - started
        if deadline is not None and time.monotonic() > deadline:
            raise _DeadlinePassed
        return completion, elapsed

    @staticmethod
    def _run(
        model: _LoadedModel,
        kwargs: dict[str, Any],
        deadline: float | None,
        stop: threading.Event | None = None,
        on_tokens: Callable[[TokenProgress], None] | None = None,
    ) -> tuple[Any, float]:
        with model.lock:
            return LlamaBackend._call(model, kwargs, deadline, stop, on_tokens)

    @staticmethod
    def _run_here(
        model: _LoadedModel, kwargs: dict[str, Any], on_tokens: Callable[[TokenProgress], None] | None
    ) -> tuple[Any, float] | None:
        """Run an untimed call on this thread if the model is free this instant; None if it is busy."""
        if not model.lock.acquire(blocking=False):
            return None
        try:
            return LlamaBackend._call(model, kwargs, None, _CancelRequested(), on_tokens)
        finally:
            model.lock.release()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        started = time.perf_counter()
        model = await self._model_async()
        kwargs = self._call_kwargs(request)
        if self.parallel > 1 and _batchable(kwargs):
            try:
                return await self._generate_batched(model, kwargs, request, started)
            except Exception as exc:
                raise self._error(exc, request) from None
        loop = asyncio.get_running_loop()
        on_tokens = _on_tokens.get()
        stop = threading.Event()
        try:
            done = None
            if request.timeout_s is None and _loop_is_idle(loop):
                done = self._run_here(model, kwargs, on_tokens)
            if done is not None:
                completion, compute_s = done
            else:
                deadline = None if request.timeout_s is None else time.monotonic() + request.timeout_s
                call = loop.run_in_executor(
                    model.executor, self._run, model, kwargs, deadline, stop, on_tokens
                )
                # A running llama.cpp call cannot be interrupted: stop waiting at the deadline (or when the
                # caller is cancelled, e.g. by Ctrl-C), and let the watcher (or max_tokens, under a grammar)
                # end the call on the worker thread at its next token.
                try:
                    completion, compute_s = await asyncio.wait_for(asyncio.shield(call), request.timeout_s)
                except asyncio.TimeoutError:
                    call.add_done_callback(_consume_exception)
                    raise _DeadlinePassed from None
                except asyncio.CancelledError:
                    stop.set()
                    call.add_done_callback(_consume_exception)
                    raise
        except Exception as exc:
            raise self._error(exc, request) from None
        choice = completion["choices"][0]
        usage = completion.get("usage") or {}
        return GenerateResponse(
            text=choice["message"].get("content") or "",
            model=request.model or self.model_name,
            finish_reason=choice.get("finish_reason"),
            usage=Usage(
                input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0)
            ),
            latency_s=time.perf_counter() - started,
            compute_s=compute_s,
            cost_usd=None,
        )

    def _batch_engine(self, model: _LoadedModel) -> Any:
        with self._state_lock:
            if self._engine is None:
                from promptkit.backends._llama_batch import BatchEngine

                self._engine = BatchEngine(
                    model.llama,
                    slots=self.parallel,
                    ctx_per_slot=self.context_window,
                    n_threads=model.llama.n_threads,
                    share_prefixes=self._capacity > 0,
                )
            return self._engine

    async def _generate_batched(
        self, model: _LoadedModel, kwargs: dict[str, Any], request: GenerateRequest, started: float
    ) -> GenerateResponse:
        """One answer through the batch engine: formatted and tokenised exactly as :func:`_chat` does."""
        messages = kwargs["messages"]
        prefill = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
        rendered = _continuation_formatter(model)(messages=messages[:-1] if prefill else messages)
        tokens = model.llama.tokenize(
            (rendered.prompt + prefill).encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        chat_stop = (
            rendered.stop if isinstance(rendered.stop, list) else [rendered.stop] if rendered.stop else []
        )
        future, cancel = self._batch_engine(model).submit(
            tokens,
            max_tokens=kwargs.get("max_tokens") or self.context_window,
            temperature=float(kwargs.get("temperature", 0.2)),
            top_p=float(kwargs.get("top_p", 0.95)),
            seed=int(kwargs.get("seed", 0)),
            stop=[*(kwargs.get("stop") or []), *chat_stop],
            looping=_looping,
        )
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), request.timeout_s)
        except asyncio.TimeoutError:
            cancel.set()
            raise _DeadlinePassed from None
        except asyncio.CancelledError:
            cancel.set()
            raise
        return GenerateResponse(
            text=prefill + result.text,
            model=request.model or self.model_name,
            finish_reason=result.finish_reason,
            usage=Usage(input_tokens=result.prompt_tokens, output_tokens=result.completion_tokens),
            latency_s=time.perf_counter() - started,
            compute_s=result.compute_s,
            cost_usd=None,
        )

    async def stream(self, request: GenerateRequest) -> AsyncIterator[str]:
        """Yield text chunks as llama.cpp produces them. Leaving the loop early stops generation."""
        model = await self._model_async()
        kwargs = self._call_kwargs(request)
        kwargs["stream"] = True
        deadline = time.monotonic() + request.timeout_s if request.timeout_s is not None else None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def produce() -> None:
            try:
                with model.lock:
                    chunks = _chat(model, kwargs)
                    try:
                        for chunk in chunks:
                            if stop.is_set():
                                break
                            if deadline is not None and time.monotonic() > deadline:
                                raise _DeadlinePassed
                            text = chunk["choices"][0]["delta"].get("content")
                            if text:
                                put("chunk", text)
                    finally:
                        chunks.close()
            except Exception as exc:
                put("error", exc)
            finally:
                put("done", None)

        worker = loop.run_in_executor(model.executor, produce)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "chunk":
                    yield value
                elif kind == "error":
                    raise self._error(value, request) from None
                else:
                    break
        finally:
            stop.set()
            await asyncio.shield(worker)

    # -- closing -------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Give the shared model back; the last backend using it frees it. Safe to call twice."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            model, self._model = self._model, None
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        if model is not None:
            _release(model)

    async def aclose(self) -> None:
        self.close()
