"""Embedding speed of the default local embedder (all-MiniLM-L6-v2 GGUF on llama.cpp).

    python bench/embed.py [--model PATH] [--threads N] [--repeats 5] [--singles 200] [--dtype f16]

Texts are the first 100 real user questions of GPTCache's ``mock_data.json`` (``../shared/data``), or generated
sentences if that file is absent. Reports: conversion time (when no --model is given), the wall time to embed
the 100 texts in one batched call (median of --repeats), and the p50/p99 latency of embedding one text at a time,
which is what a learned router pays per decision. No cache is used, so every number is real model work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptkit.embeddings import LlamaEmbedder, convert_minilm_to_gguf  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gptcache" / "mock_data.json"


def texts(n: int) -> list[str]:
    if DATA.is_file():
        rows = json.loads(DATA.read_text(encoding="utf-8"))
        found = [row["origin"] for row in rows if isinstance(row, dict) and row.get("origin")]
        if len(found) >= n:
            return found[:n]
    return [f"Question {i}: how would you explain topic number {i} to a new colleague?" for i in range(n)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, help="a GGUF embedder; default: convert all-MiniLM-L6-v2 to a temp file"
    )
    parser.add_argument("--dtype", default="f16", choices=["f32", "f16", "q8_0"])
    parser.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads (default: llama.cpp's choice)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--singles", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            started = time.perf_counter()
            model = convert_minilm_to_gguf(Path(tmp) / f"minilm-{args.dtype}.gguf", dtype=args.dtype)
            print(
                f"convert ({args.dtype}): {time.perf_counter() - started:.2f} s, {model.stat().st_size / 1e6:.1f} MB"
            )
        started = time.perf_counter()
        embedder = LlamaEmbedder(model, n_threads=args.threads)
        print(
            f"load: {time.perf_counter() - started:.2f} s  (dim {embedder.dim}, max_tokens {embedder.max_tokens})"
        )

        batch = texts(100)
        embedder.embed(batch[:8])  # warm-up
        walls = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            embedder.embed(batch)
            walls.append(time.perf_counter() - started)
        print(
            f"100 texts, batched: median {statistics.median(walls) * 1000:.0f} ms (min {min(walls) * 1000:.0f} ms)"
        )

        singles = []
        for i in range(args.singles):
            text = batch[i % len(batch)]
            started = time.perf_counter()
            embedder.embed_one(text)
            singles.append(time.perf_counter() - started)
        print(
            f"one text at a time ({args.singles} calls): p50 {percentile(singles, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(singles, 0.99) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
