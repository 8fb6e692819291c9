"""Semantic cache benchmarks, printed side by side:

1. lookup latency with 100,000 cached entries (p50/p99, embedding excluded), brute force vs HNSW, and the
   embedding call's own latency;
2. memory per 100,000 entries (index in RAM, SQLite on disk);
3. GPTCache's mock_data table (cache every origin, query every paraphrase) beside GPTCache's published one,
   then promptkit's second stage calibrated on a seeded half and reported on the other half: the blend (its
   lexical weight tuned on the calibration half) with its margin, and the learned pair scorer (fitted on the
   calibration half) with its confidence; per seed and summarised over ``--seeds``;
4. the same, 5-fold cross-validated: every query reported once, by settings fitted and calibrated on the
   other four folds only (fold assignment seeded, seeds 0..``--seeds``-1). Two calibration rules for the
   learned scorer: on its own training folds ("in-sample"), and cross-fitted (the four calibration folds split
   ten ways again, each query scored by a scorer fitted on the other nine tenths; the deployed scorer is
   fitted on all four folds).

    python bench/semantic_cache.py [--entries 100000] [--queries 500] [--seeds 5]
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
    cross_fitted_outcome,
    fit_protocol_scorer,
    make_index,
    protocol_candidates,
    protocol_outcome,
)
from promptkit.cache._score import text_profile
from promptkit.embeddings import EmbeddingCache, LlamaEmbedder, convert_minilm_to_gguf

MOCK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gptcache" / "mock_data.json"
GPTCACHE = {0.95: (425, 25, 549), 0.9: (804, 77, 118), 0.8: (904, 92, 3)}
LEXICAL_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0)


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return order[: n // 2], order[n // 2 :]


def blend_outcomes(origins, queries, expected, top, cosines, guards):  # type: ignore[no-untyped-def]
    """The blend's outcome per lexical weight (nothing is fitted: the same for every split)."""
    kwargs = {} if guards else {"guards": ()}
    return {
        w: protocol_outcome(origins, queries, expected, top, cosines, lexical_weight=w, **kwargs)
        for w in LEXICAL_WEIGHTS
    }


def blend_run(origins, queries, expected, top, cosines, cal, guards, outcomes=None):  # type: ignore[no-untyped-def]
    """The blend: its lexical weight chosen by the most correct calibration hits, then threshold and margin."""
    outcomes = outcomes or blend_outcomes(origins, queries, expected, top, cosines, guards)
    best = None
    for weight, outcome in outcomes.items():
        result = calibrate_protocol(outcome, cal, target_false_hit=0.01, lexical_weight=weight)
        if result.threshold is None:
            continue
        correct = outcome.table(result.threshold, result.margin, cal)["correct"]  # type: ignore[arg-type]
        if best is None or correct > best[0]:
            best = (correct, outcome, result)
    assert best is not None, "no lexical weight met the target on the calibration half"
    return best[1], best[2]


def learned_run(origins, queries, expected, top, cosines, cal, guards):  # type: ignore[no-untyped-def]
    """The learned pair scorer fitted on the calibration half, then threshold and confidence on it."""
    scorer = fit_protocol_scorer(origins, queries, expected, top, cosines, cal)
    kwargs = {} if guards else {"guards": ()}
    outcome = protocol_outcome(origins, queries, expected, top, cosines, scorer=scorer, **kwargs)
    return outcome, calibrate_protocol(outcome, cal, target_false_hit=0.01)


def cross_fitted_run(origins, queries, expected, top, cosines, cal, guards):  # type: ignore[no-untyped-def]
    """The learned scorer, its threshold and confidence calibrated on cross-fitted calibration queries."""
    kwargs = {} if guards else {"guards": ()}
    honest = cross_fitted_outcome(origins, queries, expected, top, cosines, cal, **kwargs)
    result = calibrate_protocol(honest, cal, target_false_hit=0.01)
    outcome = protocol_outcome(origins, queries, expected, top, cosines, scorer=honest.scorer, **kwargs)
    return outcome, result


def cross_validate(run, n, seed, folds=5, **kwargs):  # type: ignore[no-untyped-def]
    """Out-of-fold totals: each fold reported by settings fitted and calibrated on the other folds only."""
    parts = np.array_split(np.random.default_rng(seed).permutation(n), folds)
    total = {"correct": 0, "wrong": 0, "miss": 0}
    for i, held in enumerate(parts):
        cal = np.concatenate([p for j, p in enumerate(parts) if j != i])
        outcome, result = run(cal=cal, **kwargs)
        table = outcome.table(result.threshold, result.min_lead, held)
        for key in total:
            total[key] += table[key]
    return total


def describe(result) -> str:  # type: ignore[no-untyped-def]
    if result.scorer is not None:
        return f"threshold {result.threshold}, confidence {result.confidence}"
    return f"w {result.lexical_weight}, threshold {result.threshold}, margin {result.margin}"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=5, help="seeded calibration/report splits to summarise")
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

    top, cosines = protocol_candidates(origin_vecs, Q, 10)
    scorer = fit_protocol_scorer(origins, queries, expected, top, cosines)  # for the latency rows only

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
        rows = {}
        for label, scored, cold in (
            ("default", False, False),
            ("scorer", True, False),
            ("scorer cold", True, True),
        ):
            cache.settings = cache.settings.model_copy(
                update={"scorer": scorer if scored else None, "confidence": 0.5}
            )
            lookups = []
            for i in range(args.queries):
                if cold:
                    text_profile.cache_clear()  # no candidate's text profile memoised: the worst case
                t = time.perf_counter()
                cache.decide(queries[i % len(queries)], vector=Q[i % len(Q)], count=False)
                lookups.append(time.perf_counter() - t)
            rows[label] = lookups
        print(
            f"{kind:8} {build:8.1f} {ram:8.0f} {pct(search, 50):11.3f} {pct(search, 99):7.3f}"
            f" {pct(rows['default'], 50):11.3f} {pct(rows['default'], 99):7.3f}"
        )
        for label in ("scorer", "scorer cold"):
            print(
                f"{'':8} {'':>8} {'':>8} {'':>11} {'':>7} {pct(rows[label], 50):11.3f} {pct(rows[label], 99):7.3f}"
                f"  <- lookup with the learned scorer{' (text profiles not memoised)' if label != 'scorer' else ''}"
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
    bare = protocol_outcome(origins, queries, expected, top, cosines, lexical_weight=0.0, guards=())
    print(
        f"\n== GPTCache mock_data: {len(queries)} queries, {len(origins)} distinct origins (correct/wrong/miss) =="
    )
    print(f"{'setting':44} {'GPTCache':>16} {'promptkit':>16}")
    for threshold, (c, w, m) in GPTCACHE.items():
        ours = bare.table(threshold, 0.0)
        print(
            f"{'cosine >= ' + str(threshold) + ' (MiniLM, no margin/guards)':44} {f'{c}/{w}/{m}':>16} {ours['correct']}/{ours['wrong']}/{ours['miss']:>5}"
        )
    blends = {g: blend_outcomes(origins, queries, expected, top, cosines, g) for g in (False, True)}

    def blend(origins, queries, expected, top, cosines, cal, guards):  # type: ignore[no-untyped-def]
        return blend_run(origins, queries, expected, top, cosines, cal, guards, blends[guards])

    runs = (
        ("blend + margin, no guards", blend, False),
        ("blend + margin + guards (default)", blend, True),
        ("learned scorer, no guards", learned_run, False),
        ("learned scorer + guards (calibrated)", learned_run, True),
        ("learned scorer + guards, cross-fitted calibration", cross_fitted_run, True),
    )
    cal, rep = split(len(queries), 0)
    print(f"\ncalibrated on a seeded half (seed 0, {len(cal)} queries), reported on the other {len(rep)}:")
    for name, run, guards in runs:
        outcome, result = run(origins, queries, expected, top, cosines, cal, guards)
        r = outcome.table(result.threshold, result.min_lead, rep)
        a = outcome.table(result.threshold, result.min_lead)
        print(
            f"{name}: {describe(result)} -> reported half {r['correct']}/{r['wrong']}/{r['miss']} of {len(rep)}"
            f" ({r['correct'] / len(rep):.1%} correct, {r['wrong'] / len(rep):.1%} wrong); all 999: {a['correct']}/{a['wrong']}/{a['miss']}"
        )
    print(
        f"\nreported half over seeds 0..{args.seeds - 1} (each: fit and calibrate on its half, report on the rest):"
    )
    for name, run, guards in runs:
        rows = []
        for seed in range(args.seeds):
            cal, rep = split(len(queries), seed)
            outcome, result = run(origins, queries, expected, top, cosines, cal, guards)
            r = outcome.table(result.threshold, result.min_lead, rep)
            rows.append((r["correct"] / len(rep), r["wrong"] / len(rep)))
            print(f"  {name} seed {seed}: {r['correct']}/{r['wrong']}/{r['miss']} ({describe(result)})")
        correct, wrong = np.array(rows).T
        print(
            f"{name}: correct mean {correct.mean():.1%} min {correct.min():.1%};"
            f" wrong mean {wrong.mean():.1%} max {wrong.max():.1%}"
        )

    # -- 4: 5-fold cross-validation: every query reported once, by settings that never saw it --------------
    n = len(queries)
    print(
        f"\n5-fold cross-validation, seeds 0..{args.seeds - 1}: out-of-fold totals over all {n} queries"
        " (target: correct >= 90%, wrong <= 1%)"
    )
    for name, run, guards in runs:
        rows = []
        for seed in range(args.seeds):
            t = time.perf_counter()
            total = cross_validate(
                run, n, seed, origins=origins, queries=queries, expected=expected, top=top, cosines=cosines,
                guards=guards,
            )  # fmt: skip
            rows.append((total["correct"] / n, total["wrong"] / n))
            print(
                f"  {name} seed {seed}: {total['correct']}/{total['wrong']}/{total['miss']}"
                f" ({total['correct'] / n:.1%} correct, {total['wrong'] / n:.1%} wrong; {time.perf_counter() - t:.1f} s)"
            )
        correct, wrong = np.array(rows).T
        met = sum(c >= 0.9 and w <= 0.01 for c, w in rows)
        print(
            f"{name}: correct mean {correct.mean():.1%} min {correct.min():.1%} max {correct.max():.1%};"
            f" wrong mean {wrong.mean():.2%} min {wrong.min():.1%} max {wrong.max():.1%}; target met on {met}/{len(rows)} seeds"
        )


if __name__ == "__main__":
    main()
