"""Exact-cache hit latency on a large file.

Fills a cache with N entries (default 1,000,000, each a realistic ~1 KB answer) in big transactions, then times
random-key ``get`` hits one by one and prints p50/p99 (target: p99 <= 1 ms) and the fill time.

    python bench/cache_hit.py                       # the full run
    python bench/cache_hit.py --entries 20000       # a quick one
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from promptkit.backends import GenerateResponse
from promptkit.cache import ExactCache
from promptkit.types import Usage

_WORDS = (
    "the model returned a concise answer with citations and a short explanation of each step "
    "before the final result which the validator accepted on the first attempt without re-asking"
).split()


def key_of(i: int) -> str:
    return hashlib.sha256(f"request-{i}".encode()).hexdigest()


def answer(i: int, size: int, rng: random.Random) -> GenerateResponse:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return GenerateResponse(
        text=f"[{i}] " + " ".join(words),
        model="openai/gpt-4o-mini",
        finish_reason="stop",
        usage=Usage(input_tokens=rng.randrange(200, 2000), output_tokens=rng.randrange(50, 400)),
        latency_s=rng.uniform(0.3, 3.0),
        cost_usd=rng.uniform(1e-4, 5e-3),
    )


def responses(n: int, size: int, seed: int) -> Iterator[tuple[str, GenerateResponse]]:
    rng = random.Random(seed)
    # A pool of bodies keeps the fill bound by SQLite, not by text generation; the index makes each one unique.
    pool = [answer(0, size, rng) for _ in range(64)]
    for i in range(n):
        body = pool[i % len(pool)]
        yield key_of(i), body.model_copy(update={"text": f"[{i}]{body.text[3:]}"})


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries to fill (default 1,000,000)")
    parser.add_argument(
        "--lookups", type=int, default=10_000, help="random-key hits to time (default 10,000)"
    )
    parser.add_argument(
        "--size", type=int, default=800, help="characters of answer text per entry (default 800)"
    )
    parser.add_argument("--batch", type=int, default=50_000, help="entries per fill transaction")
    parser.add_argument(
        "--path", type=Path, default=None, help="cache file to use and keep (default: a temp file)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.entries < 1 or args.lookups < 1:
        parser.error("--entries and --lookups must be positive")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or Path(tmp) / "bench-cache.sqlite"
        with ExactCache(path) as cache:
            existing = cache.stats().entries
            fill_s = 0.0
            if existing < args.entries:
                start = time.perf_counter()
                cache.set_many(responses(args.entries, args.size, args.seed), batch_size=args.batch)
                fill_s = time.perf_counter() - start
                print(
                    f"fill: {args.entries:,} entries in {fill_s:.1f} s ({args.entries / fill_s:,.0f} entries/s)"
                )
            else:
                print(f"fill: reusing {existing:,} entries in {path}")
            size_mb = sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if p.exists()) / 1e6
            print(f"file: {size_mb:,.0f} MB")

            rng = random.Random(args.seed + 1)
            keys = [key_of(rng.randrange(args.entries)) for _ in range(args.lookups)]
            for key in keys[:200]:  # warm this thread's connection and statement cache
                cache.get(key)
            timings: list[float] = []
            misses = 0
            for key in keys:
                t0 = time.perf_counter_ns()
                entry = cache.get(key)
                timings.append((time.perf_counter_ns() - t0) / 1e6)
                misses += entry is None
            if misses:
                print(f"error: {misses} of {len(keys)} lookups missed a key that was stored", file=sys.stderr)
                return 1
        timings.sort()
        p50, p99 = percentile(timings, 0.50), percentile(timings, 0.99)
        print(
            f"get hit over {len(timings):,} random keys: p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
            f"mean {statistics.fmean(timings):.3f} ms, max {timings[-1]:.3f} ms"
        )
        verdict = "meets" if p99 <= 1.0 else "MISSES"
        # On a shared machine the tail is mostly preemption; say how busy it was.
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"p99 target 1 ms: {verdict} (load average {load} on {os.cpu_count()} CPUs)")
    return 0 if p99 <= 1.0 else 2


if __name__ == "__main__":
    sys.exit(main())
