"""Per-call overhead of promptkit's local backend against raw llama-cpp-python.

    python bench/local_call.py [--n 300] [--max-tokens 32] [--model PATH] [--check]

A = ``await LlamaBackend.generate(request)``; B = ``Llama.create_chat_completion`` called directly. Both use
the same loaded ``Llama`` (the backend's), the same prompt, ``max_tokens`` and ``temperature=0``. Calls are
interleaved, and the order flips every iteration, so drift in machine load hits both sides equally. Prints
both medians and A/B; the target is A/B <= 1.05. ``--check`` exits 1 when the target is missed.

A second pass repeats it with another task pending on the event loop, which sends promptkit's call through the
model's worker thread (on an idle loop it runs on the loop's thread). There a third side, C = the raw call
through ``run_in_executor`` (what asyncio code must do to keep its loop free), shows what the hand-off costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptkit.backends._base import GenerateRequest  # noqa: E402
from promptkit.backends._llama import LlamaBackend  # noqa: E402
from promptkit.backends._tiny_gguf import make_tiny_gguf  # noqa: E402
from promptkit.types import Message  # noqa: E402

TARGET = 1.05
PROMPT = "Summarise the plot of a short story about a lighthouse keeper in two sentences."


async def run(
    model: Path, n: int, max_tokens: int, warmup: int, threads: int | None, busy: bool
) -> tuple[list[float], list[float], list[float]]:
    backend = LlamaBackend(model, n_ctx=2048, n_threads=threads)
    llama = backend.load()
    lock = backend.lock
    request = GenerateRequest(
        messages=[Message(role="user", content=PROMPT)], max_tokens=max_tokens, temperature=0
    )
    raw_messages = [{"role": "user", "content": PROMPT}]

    async def promptkit_call() -> float:
        started = time.perf_counter()
        await backend.generate(request)
        return time.perf_counter() - started

    def raw_call() -> float:
        started = time.perf_counter()
        with lock:
            llama.create_chat_completion(messages=raw_messages, max_tokens=max_tokens, temperature=0)
        return time.perf_counter() - started

    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1)

    async def raw_threaded_call() -> float:
        started = time.perf_counter()
        await loop.run_in_executor(executor, raw_call)
        return time.perf_counter() - started

    pending = asyncio.create_task(asyncio.Event().wait()) if busy else None
    for _ in range(warmup):
        await promptkit_call()
        raw_call()
        if busy:
            await raw_threaded_call()
    ours: list[float] = []
    raw: list[float] = []
    threaded: list[float] = []
    for i in range(n):
        if i % 2 == 0:
            ours.append(await promptkit_call())
            raw.append(raw_call())
            if busy:
                threaded.append(await raw_threaded_call())
        else:
            if busy:
                threaded.append(await raw_threaded_call())
            raw.append(raw_call())
            ours.append(await promptkit_call())
    if pending is not None:
        pending.cancel()
    executor.shutdown()
    await backend.aclose()
    return ours, raw, threaded


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300, help="calls per side (at least 200)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (0: its defaults)")
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: a fresh tiny model)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio exceeds {TARGET}")
    args = parser.parse_args()
    if args.n < 200:
        parser.error("--n must be at least 200")

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or make_tiny_gguf(Path(tmp) / "tiny.gguf", n_ctx=2048)
        threads = args.threads or None
        ours, raw, _ = asyncio.run(run(model, args.n, args.max_tokens, args.warmup, threads, busy=False))
        busy_ours, busy_raw, busy_threaded = asyncio.run(
            run(model, args.n, args.max_tokens, args.warmup, threads, busy=True)
        )

    ours_median = statistics.median(ours)
    raw_median = statistics.median(raw)
    ratio = ours_median / raw_median
    print(
        f"model: {args.model or 'tiny random-weight GGUF'}  n={args.n} per side  max_tokens={args.max_tokens}"
    )
    print(f"raw llama_cpp create_chat_completion  median {raw_median * 1e3:8.3f} ms")
    print(f"promptkit LlamaBackend.generate       median {ours_median * 1e3:8.3f} ms")
    print(f"ratio (promptkit / raw)               {ratio:8.4f}  (target <= {TARGET})")
    print(f"median overhead per call              {(ours_median - raw_median) * 1e6:8.1f} us")
    busy_raw_median = statistics.median(busy_raw)
    busy_ours_median = statistics.median(busy_ours)
    threaded_median = statistics.median(busy_threaded)
    print("with another task pending on the loop (promptkit's call goes through the model's worker thread):")
    print(f"  raw, direct (blocks the loop)       median {busy_raw_median * 1e3:8.3f} ms")
    print(f"  raw, through run_in_executor        median {threaded_median * 1e3:8.3f} ms")
    print(f"  promptkit LlamaBackend.generate     median {busy_ours_median * 1e3:8.3f} ms")
    print(
        f"  ratio promptkit / raw direct {busy_ours_median / busy_raw_median:.4f}, "
        f"promptkit / raw through run_in_executor {busy_ours_median / threaded_median:.4f}"
    )
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
