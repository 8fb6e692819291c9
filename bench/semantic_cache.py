"""Semantic cache benchmarks, printed side by side:

1. lookup latency with 100,000 cached entries (p50/p99, embedding excluded), brute force vs HNSW, and the
   embedding call's own latency;
2. memory per 100,000 entries (index in RAM, SQLite on disk);
3. GPTCache's mock_data table (cache every origin, query every paraphrase) beside GPTCache's published one.

    python bench/semantic_cache.py [--entries 100000] [--queries 500]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from promptkit.backends import GenerateResponse
from promptkit.cache import (
    SemanticCache,
    calibrate_protocol,
    make_index,
    protocol_candidates,
    protocol_outcome,
)
from promptkit.embeddings import EmbeddingCache, LlamaEmbedder, convert_minilm_to_gguf

MOCK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gptcache" / "mock_data.json"
GPTCACHE = {0.95: (425, 25, 549), 0.9: (804, 77, 118), 0.8: (904, 92, 3)}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pk-semantic-bench-"))
    embedder = LlamaEmbedder(
        convert_minilm_to_gguf(tmp / "minilm.gguf"),
        cache=EmbeddingCache(Path(tempfile.gettempdir()) / "promptkit-test-embeddings.sqlite"),
    )
    data = json.loads(MOCK.read_text())
    origins = list(dict.fromkeys(d["origin"] for d in data))
    queries = [d["similar"] for d in data]
    row = {o: i for i, o in enumerate(origins)}
    expected = [row[d["origin"]] for d in data]
    t = time.perf_counter()
    origin_vecs, Q = embedder.embed_array(origins), embedder.embed_array(queries)
    print(
        f"embedded {len(origins) + len(queries)} sentences in {time.perf_counter() - t:.1f} s (or from cache)"
    )

    # -- 1 + 2: latency and memory at scale ------------------------------------------------------------
    rng = np.random.default_rng(0)
    filler_n = args.entries - len(origins)
    filler = rng.normal(size=(filler_n, origin_vecs.shape[1])).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    vectors = np.vstack([origin_vecs, filler])
    texts = origins + [f"filler question number {i} about topic {i % 997}" for i in range(filler_n)]
    print(f"\n== {len(vectors):,} cached entries (the {len(origins)} mock_data origins + random fillers) ==")
    print(
        f"{'index':8} {'build s':>8} {'RAM MiB':>8} {'search p50':>11} {'p99 ms':>7} {'lookup p50':>11} {'p99 ms':>7}"
    )
    for kind in ("brute", "hnsw"):
        before = rss_mb()
        t = time.perf_counter()
        index = make_index(vectors.shape[1], kind)  # type: ignore[arg-type]
        index.add(range(1, len(vectors) + 1), vectors)
        build = time.perf_counter() - t
        ram = rss_mb() - before
        search = []
        for i in range(args.queries):
            t = time.perf_counter()
            index.search(Q[i % len(Q)], 10)
            search.append(time.perf_counter() - t)
        path = tmp / f"{kind}.sqlite"
        cache = SemanticCache(path, embedder=embedder, index=kind, threshold=0.745, margin=0.025)
        cache.store_many([(q, GenerateResponse(text=str(i))) for i, q in enumerate(texts)], vectors=vectors)
        cache.lookup(queries[0], vector=Q[0])  # builds the in-memory index from SQLite
        lookups = []
        for i in range(args.queries):
            t = time.perf_counter()
            cache.decide(queries[i % len(queries)], vector=Q[i % len(Q)], count=False)
            lookups.append(time.perf_counter() - t)
        print(
            f"{kind:8} {build:8.1f} {ram:8.0f} {pct(search, 50):11.3f} {pct(search, 99):7.3f}"
            f" {pct(lookups, 50):11.3f} {pct(lookups, 99):7.3f}"
        )
        cache.close()
        size = sum(p.stat().st_size for p in tmp.glob(f"{kind}.sqlite*"))
        print(
            f"{'':8} SQLite on disk {size / 2**20:.0f} MiB; index file {sum(p.stat().st_size for p in (tmp / 'semantic_index').glob('*.npz')) / 2**20:.0f} MiB (all scopes so far)"
        )
        del index
    embed = []
    for i in range(50):
        text = f"how do I configure option {i} of the cache?"
        t = time.perf_counter()
        embedder._compute([text])  # the model itself, past the embedding cache
        embed.append(time.perf_counter() - t)
    print(
        f"embedding one question (MiniLM, llama.cpp): p50 {pct(embed, 50):.1f} ms, p99 {pct(embed, 99):.1f} ms"
    )

    # -- 3: GPTCache's table -----------------------------------------------------------------------------
    top, cosines = protocol_candidates(origin_vecs, Q, 10)
    bare = protocol_outcome(origins, queries, expected, top, cosines, lexical_weight=0.0, guards=())
    full = protocol_outcome(origins, queries, expected, top, cosines)
    print(
        f"\n== GPTCache mock_data: {len(queries)} queries, {len(origins)} distinct origins (correct/wrong/miss) =="
    )
    print(f"{'setting':44} {'GPTCache':>16} {'promptkit':>16}")
    for threshold, (c, w, m) in GPTCACHE.items():
        ours = bare.table(threshold, 0.0)
        print(
            f"{'cosine >= ' + str(threshold) + ' (MiniLM, no margin/guards)':44} {f'{c}/{w}/{m}':>16} {ours['correct']}/{ours['wrong']}/{ours['miss']:>5}"
        )
    order = np.random.default_rng(0).permutation(len(queries))
    cal, rep = order[: len(order) // 2], order[len(order) // 2 :]
    for name, outcome in (
        ("blend + margin, no guards", protocol_outcome(origins, queries, expected, top, cosines, guards=())),
        ("blend + margin + guards (default)", full),
    ):
        result = calibrate_protocol(outcome, cal, target_false_hit=0.01)
        r = outcome.table(result.threshold, result.margin, rep)  # type: ignore[arg-type]
        a = outcome.table(result.threshold, result.margin)  # type: ignore[arg-type]
        print(
            f"{name}: calibrated on {len(cal)} (threshold {result.threshold}, margin {result.margin}) ->"
            f" reported half {r['correct']}/{r['wrong']}/{r['miss']} of {len(rep)}"
            f" ({r['correct'] / len(rep):.1%} correct, {r['wrong'] / len(rep):.1%} wrong); all 999: {a['correct']}/{a['wrong']}/{a['miss']}"
        )


if __name__ == "__main__":
    main()
