"""Measure a local GGUF model the way the field reports it, and what promptkit adds on top of llama.cpp.

    from promptkit.backends import bench_local_model

    result = bench_local_model("qwen2.5-coder-0.5b", prompt_tokens=512, output_tokens=128, repeats=3)
    print("\\n".join(result.lines()))

Every run is at temperature 0, on a fixed prompt built deterministically to about ``prompt_tokens`` tokens (the
numbered lines of a small Python module, then a request for code). The end-of-generation tokens are banned, so
every run decodes exactly the tokens asked for. The phases, one after another in this process:

1. load: ``llama_cpp.Llama(...)`` on the file, timed;
2. prefill and decode, on that raw ``Llama`` with no prompt cache and its KV state reset before each run (a cold
   prefill): a logits processor stamps the time at which each answer token's logits are ready, which gives the
   time to first token (TTFT), prefill tokens/s (prompt tokens / TTFT) and the time per output token
   (TPOT = (t_last - t_first) / (n - 1)); medians over ``repeats`` runs;
3. overhead: the same chat request through ``LlamaBackend.generate_sync`` (prefix cache off) and through
   ``create_chat_completion`` on the backend's own ``Llama`` (same weights, same state), alternated and reset
   before each call; the median of the paired ratios promptkit / raw (target <= 1.02);
4. prefix reuse: pairs of chat calls through ``LlamaBackend`` (prefix cache on) that share a long system prompt
   and differ in a short user message, a new system prompt for each pair; TTFT of each call (call start to the
   first ``watch_tokens`` callback, which fires after prefill), medians, and the median ratio second / first
   (target <= 0.25);
5. peak RSS of the process (``ru_maxrss``).

Decode is bound by memory bandwidth: each token reads all the weights once, so decode tokens/s times the file
size (``decode_gb_per_s``) is how fast this machine streams them, and the limit for one sequence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptkit.errors import BackendUnavailable, ConfigError

__all__ = ["bench_local_model", "LocalBenchResult", "OVERHEAD_TARGET", "PREFIX_REUSE_TARGET"]

OVERHEAD_TARGET = 1.02
PREFIX_REUSE_TARGET = 0.25

# The prompt's material: a small module, numbered line by line and repeated to the length asked for.
_MODULE = '''\
"""Orders: load them, total them, report them."""
from dataclasses import dataclass, field


@dataclass
class Item:
    sku: str
    price: float
    quantity: int = 1


@dataclass
class Order:
    id: int
    customer: str
    items: list[Item] = field(default_factory=list)

    def total(self) -> float:
        return sum(item.price * item.quantity for item in self.items)


def load_orders(rows: list[dict]) -> list[Order]:
    orders: dict[int, Order] = {}
    for row in rows:
        order = orders.setdefault(row["order"], Order(row["order"], row["customer"]))
        order.items.append(Item(row["sku"], float(row["price"]), int(row["quantity"])))
    return list(orders.values())


def best_customers(orders: list[Order], n: int = 3) -> list[tuple[str, float]]:
    spent: dict[str, float] = {}
    for order in orders:
        spent[order.customer] = spent.get(order.customer, 0.0) + order.total()
    return sorted(spent.items(), key=lambda pair: -pair[1])[:n]
'''
_HEADER = "# orders.py\n"
_ASK = "Write pytest tests for orders.py."
# The two short user messages of the prefix-reuse calls.
_PREFIX_ASKS = ("Write pytest tests for Order.total.", "Write a docstring for load_orders.")
# A short warm-up request (first calls on a fresh context pay one-time costs).
_WARMUP = "Write hello world in Python."


@dataclass(frozen=True)
class LocalBenchResult:
    """What :func:`bench_local_model` measured. Times in seconds, medians over the repeats."""

    model: str
    path: str
    weights_bytes: int  # the GGUF's size: what one decoded token reads from memory
    n_threads: int
    n_ctx: int
    llama_cpp_version: str
    cpu_features: tuple[str, ...]  # llama.cpp's CPU kernels that are on (AVX2, AVX512, AVX512_VNNI, ...)
    repeats: int
    load_s: float
    prompt_tokens: int  # of the raw completion prompt, as llama.cpp counted them
    ttft_s: float
    prefill_tokens_per_s: float
    output_tokens: int  # decoded per run
    tpot_s: float
    decode_tokens_per_s: float
    peak_rss_mb: float  # MiB (ru_maxrss)
    raw_chat_s: float
    promptkit_chat_s: float
    overhead_ratio: float  # median over the pairs of promptkit / raw
    prefix_prompt_tokens: int
    prefix_first_ttft_s: float
    prefix_second_ttft_s: float
    prefix_ttft_ratio: float  # second / first

    @property
    def decode_gb_per_s(self) -> float:
        """Bytes of weights read per second while decoding (tokens/s x file size), in GB/s."""
        return self.decode_tokens_per_s * self.weights_bytes / 1e9

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["cpu_features"] = list(self.cpu_features)
        data["decode_gb_per_s"] = self.decode_gb_per_s
        return data

    def rows(self) -> list[tuple[str, str]]:
        """(measure, value) pairs, for a table."""
        mib = self.weights_bytes / (1 << 20)
        return [
            ("model", f"{self.model} ({Path(self.path).name}, {mib:.1f} MiB)"),
            ("llama.cpp", f"llama-cpp-python {self.llama_cpp_version}; CPU: {' '.join(self.cpu_features)}"),
            ("threads / n_ctx", f"{self.n_threads} / {self.n_ctx}"),
            ("load", f"{self.load_s:.3f} s"),
            (
                "prefill",
                f"{self.prompt_tokens} tokens: TTFT {self.ttft_s:.3f} s, "
                f"{self.prefill_tokens_per_s:.1f} tokens/s",
            ),
            (
                "decode",
                f"{self.output_tokens} tokens: TPOT {self.tpot_s * 1e3:.2f} ms, "
                f"{self.decode_tokens_per_s:.2f} tokens/s",
            ),
            ("weights read", f"{self.decode_gb_per_s:.2f} GB/s (decode tokens/s x file size)"),
            ("peak RSS", f"{self.peak_rss_mb:.0f} MB"),
            (
                "promptkit / raw",
                f"{self.overhead_ratio:.4f} (target <= {OVERHEAD_TARGET}); medians: raw "
                f"{self.raw_chat_s:.3f} s, promptkit {self.promptkit_chat_s:.3f} s",
            ),
            (
                "prefix reuse",
                f"TTFT {self.prefix_first_ttft_s:.3f} s -> {self.prefix_second_ttft_s:.3f} s, ratio "
                f"{self.prefix_ttft_ratio:.3f} (target <= {PREFIX_REUSE_TARGET}; "
                f"{self.prefix_prompt_tokens}-token prompt)",
            ),
            ("repeats", str(self.repeats)),
        ]

    def lines(self) -> list[str]:
        """Human-readable rows, one measure each."""
        return [f"{label:<16} {value}" for label, value in self.rows()]


def cpu_features(system_info: str) -> tuple[str, ...]:
    """The features llama.cpp reports as on (``NAME = 1``) in ``llama_print_system_info()``, in its order."""
    seen: dict[str, None] = {}
    for name in re.findall(r"([A-Za-z0-9_]+) = 1\b", system_info):
        seen.setdefault(name, None)
    return tuple(seen)


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _numbered_lines() -> Iterator[str]:
    lines = _MODULE.splitlines()
    number = 0
    while True:
        for line in lines:
            number += 1
            yield f"{number:4d} {line}".rstrip() + "\n"


def _wrap(body: str) -> str:
    return f"{_HEADER}{body.rstrip()}\n\n{_ASK}\n"


def build_prompt(count: Callable[[str], int], target: int) -> str:
    """A code prompt of about ``target`` tokens (``count`` tokenizes): numbered module lines, cut to fit, and a
    request for code. Deterministic for a given tokenizer; never shorter than the header and the request."""
    if count(_wrap("")) >= target:
        return _wrap("")
    lines = _numbered_lines()
    parts: list[str] = []
    body = ""
    while (short := target - count(_wrap(body))) >= 0:  # enough lines to pass the target
        added = 0
        while added <= short + 8:  # counted one by one: an estimate, checked against the whole above
            parts.append(next(lines))
            added += count(parts[-1])
        body = "".join(parts)
    low, high = 0, len(body)  # the longest cut of the body whose prompt stays within the target
    while low < high:
        middle = (low + high + 1) // 2
        if count(_wrap(body[:middle])) <= target:
            low = middle
        else:
            high = middle - 1
    return _wrap(body[:low])


def _eog_tokens(llama: Any) -> list[int]:
    """Every end-of-generation token of the model's vocabulary (EOS, EOT, <|im_end|>, ...)."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    found = [token for token in range(llama.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, token)]
    eos = llama.token_eos()
    if eos >= 0 and eos not in found:
        found.append(eos)
    return found


def _stamping_processor(banned: list[int], stamps: list[float]) -> Callable[[Any, Any], Any]:
    """A logits processor that records when each answer token's logits are ready and bans ``banned``."""
    minus_inf = float("-inf")

    def process(input_ids: Any, scores: Any) -> Any:
        stamps.append(time.perf_counter())
        for token in banned:
            scores[token] = minus_inf
        return scores

    return process


def _check_threads(n_threads: int | str) -> int:
    from promptkit.backends._llama import auto_threads

    if n_threads == "auto":
        return auto_threads()
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ConfigError(f"n_threads must be a positive number or 'auto', got {n_threads!r}")
    return n_threads


def bench_local_model(
    model: str | Path,
    *,
    n_ctx: int = 4096,
    n_threads: int | str = "auto",
    prompt_tokens: int = 512,
    output_tokens: int = 128,
    repeats: int = 3,
    progress: Callable[[str], None] | None = None,
) -> LocalBenchResult:
    """Measure the local GGUF ``model`` (a path, or an installed catalog name) as described in this module.

    ``n_threads``: a number, or ``"auto"`` (the cores other processes leave free, chosen once at the start and
    used by every phase). ``progress`` is called with one line before each phase. Loads the model three
    times, one after another (raw, backend without and with prefix cache); never two at once.

    Raises ``BackendUnavailable`` for a missing file, an uninstalled catalog model (with the pull command) or a
    missing llama-cpp-python, and ``ConfigError`` for settings that cannot work.
    """
    from promptkit.models import resolve_local_model

    given = Path(model).expanduser()
    name = given.name if given.is_file() else str(model)
    path = resolve_local_model(model)  # BackendUnavailable, with the pull command for a catalog name
    where = str(path)
    if prompt_tokens < 1:
        raise ConfigError(f"prompt_tokens must be at least 1, got {prompt_tokens}", location=where)
    if output_tokens < 2:
        raise ConfigError(
            f"output_tokens must be at least 2 (TPOT needs two), got {output_tokens}", location=where
        )
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}", location=where)
    if prompt_tokens + output_tokens + 32 > n_ctx:
        raise ConfigError(
            f"n_ctx {n_ctx} cannot hold {prompt_tokens} prompt + {output_tokens} output tokens "
            "and the chat template",
            location=where,
        )
    try:
        import llama_cpp
    except ImportError:
        from promptkit.backends._llama import _INSTALL_HINT

        raise BackendUnavailable(_INSTALL_HINT, location=where) from None
    from promptkit.backends._base import GenerateRequest
    from promptkit.backends._llama import LlamaBackend, watch_tokens
    from promptkit.types import Message

    say = progress or (lambda line: None)
    threads = _check_threads(n_threads)
    weights_bytes = path.stat().st_size

    # 1. load --------------------------------------------------------------------------------------------
    say(f"loading {name} ({weights_bytes / 1e6:.1f} MB, n_ctx={n_ctx}, n_threads={threads})")
    started = time.perf_counter()
    try:
        llama = llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise BackendUnavailable(f"llama.cpp cannot load this model: {exc}", location=where) from None
    load_s = time.perf_counter() - started
    try:
        info = llama_cpp.llama_print_system_info()
        features = cpu_features(info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info))
        banned = _eog_tokens(llama)

        def count(text: str) -> int:
            return len(llama.tokenize(text.encode("utf-8"), add_bos=True, special=False))

        prompt = build_prompt(count, prompt_tokens)
        if count(prompt) + output_tokens + 32 > n_ctx:
            raise ConfigError(
                f"n_ctx {n_ctx} cannot hold the {count(prompt)}-token prompt and {output_tokens} output tokens",
                location=where,
            )

        # 2. prefill and decode, cold, on the raw Llama ------------------------------------------------------
        from llama_cpp import LogitsProcessorList

        llama.set_cache(None)  # no prompt cache: every prefill is cold
        ttfts: list[float] = []
        tpots: list[float] = []
        measured_prompt = decoded = 0
        for run in range(repeats):
            say(f"prefill + decode {run + 1}/{repeats}: {output_tokens} tokens after a cold prefill")
            llama.reset()
            stamps: list[float] = []
            processors = LogitsProcessorList([_stamping_processor(banned, stamps)])
            started = time.perf_counter()
            out = llama.create_completion(
                prompt, max_tokens=output_tokens, temperature=0, logits_processor=processors
            )
            if len(stamps) < 2:
                raise ConfigError(f"only {len(stamps)} token(s) decoded; TPOT needs two", location=where)
            ttfts.append(stamps[0] - started)
            tpots.append((stamps[-1] - stamps[0]) / (len(stamps) - 1))
            measured_prompt = int(out["usage"]["prompt_tokens"])
            decoded = int(out["usage"]["completion_tokens"])
    finally:
        llama.close()
    ttft_s = statistics.median(ttfts)
    tpot_s = statistics.median(tpots)

    # 3. promptkit's overhead against raw create_chat_completion, same weights and state ---------------------
    bias = {token: float("-inf") for token in banned}
    messages = [{"role": "user", "content": prompt}]
    request = GenerateRequest(
        messages=[Message(role="user", content=prompt)],
        temperature=0,
        max_tokens=output_tokens,
        params={"logit_bias": bias},
    )
    say(f"overhead: promptkit LlamaBackend vs raw create_chat_completion, {repeats} call(s) each")
    with contextlib.closing(
        LlamaBackend(path, n_ctx=n_ctx, n_threads=threads, prefix_cache=False)
    ) as backend:
        shared = backend.load()
        lock = backend.lock

        def raw_call(chat: list[dict[str, str]], max_tokens: int) -> float:
            with lock:
                shared.reset()
                begun = time.perf_counter()
                shared.create_chat_completion(
                    messages=chat, temperature=0, max_tokens=max_tokens, logit_bias=bias
                )
                return time.perf_counter() - begun

        def promptkit_call(call: GenerateRequest) -> float:
            with lock:
                shared.reset()
            begun = time.perf_counter()
            backend.generate_sync(call)
            return time.perf_counter() - begun

        raw_call([{"role": "user", "content": _WARMUP}], 2)
        warmup = [Message(role="user", content=_WARMUP)]
        promptkit_call(request.model_copy(update={"messages": warmup, "max_tokens": 2}))
        raw_times: list[float] = []
        ours_times: list[float] = []
        for run in range(repeats):  # the order flips every pair, so drift hits both sides alike
            if run % 2 == 0:
                raw_times.append(raw_call(messages, output_tokens))
                ours_times.append(promptkit_call(request))
            else:
                ours_times.append(promptkit_call(request))
                raw_times.append(raw_call(messages, output_tokens))
    overhead = statistics.median([ours / raw for ours, raw in zip(ours_times, raw_times, strict=True)])

    # 4. prefix reuse through the backend's prompt-prefix cache ----------------------------------------------
    with contextlib.closing(LlamaBackend(path, n_ctx=n_ctx, n_threads=threads, prefix_cache=True)) as backend:
        cached = backend.load()

        def ttft(call: GenerateRequest) -> tuple[float, int]:
            first: list[float] = []

            def on_tokens(_progress: Any) -> None:
                if not first:
                    first.append(time.perf_counter())

            with watch_tokens(on_tokens):
                begun = time.perf_counter()
                response = backend.generate_sync(call)
            if not first:  # pragma: no cover - the callback fires before the first answer token
                raise ConfigError("no answer token was generated", location=where)
            return first[0] - begun, response.usage.input_tokens

        firsts: list[float] = []
        seconds: list[float] = []
        prefix_prompt = 0
        for run in range(repeats):
            say(f"prefix reuse {run + 1}/{repeats}: two chat calls sharing a long system prompt")
            # Each pair gets its own system prompt (a numbered first line), so its first call shares no more
            # than the chat template's opening tokens with anything evaluated or cached before: a cold prefill
            # (after the first pair, plus restoring a cached state, a copy far cheaper than the prefill).
            system = f"# take {run + 1}\n{prompt}"
            with backend.lock:
                cached.reset()
            pair = [
                ttft(
                    GenerateRequest(
                        messages=[Message(role="system", content=system), Message(role="user", content=ask)],
                        temperature=0,
                        max_tokens=min(4, output_tokens),
                    )
                )
                for ask in _PREFIX_ASKS
            ]
            firsts.append(pair[0][0])
            seconds.append(pair[1][0])
            prefix_prompt = prefix_prompt or pair[0][1]

    return LocalBenchResult(
        model=name,
        path=str(path),
        weights_bytes=weights_bytes,
        n_threads=threads,
        n_ctx=n_ctx,
        llama_cpp_version=str(getattr(llama_cpp, "__version__", "unknown")),
        cpu_features=features,
        repeats=repeats,
        load_s=load_s,
        prompt_tokens=measured_prompt,
        ttft_s=ttft_s,
        prefill_tokens_per_s=measured_prompt / ttft_s,
        output_tokens=decoded,
        tpot_s=tpot_s,
        decode_tokens_per_s=1.0 / tpot_s,
        peak_rss_mb=_peak_rss_mb(),
        raw_chat_s=statistics.median(raw_times),
        promptkit_chat_s=statistics.median(ours_times),
        overhead_ratio=overhead,
        prefix_prompt_tokens=prefix_prompt,
        prefix_first_ttft_s=statistics.median(firsts),
        prefix_second_ttft_s=statistics.median(seconds),
        prefix_ttft_ratio=statistics.median(
            [second / first for first, second in zip(firsts, seconds, strict=True)]
        ),
    )
