"""Semantic-cache calibration on real labelled question pairs: Quora Question Pairs (QQP), the data GPTCache and
the Redis semantic-cache study (arXiv 2411.05276) use.

``../shared/data/qqp/calibration.jsonl.gz`` (40,298 pairs, ~37% duplicates) is split by a hash of each pair
(``promptkit.cache.split_pairs``, 30% held out). Every setting is calibrated on the calibration part for a
false-hit target (``calibrate_pairs``, the code behind ``promptkit cache calibrate``) and reported on the held-out
part, which neither the threshold nor the learned classifier saw. Hit rate = the share of the duplicate pairs
that hit; false-hit rate = the share of the different pairs that hit; precision = true hits / hits.

Settings: the pure MiniLM cosine (lexical weight 0), the default blend (cosine + 0.25 x character-trigram
cosine), and the learned match classifier (``--scorer``), each with the opposite-meaning guards. Then the
held-out curve: precision at a given hit rate, and hit rate at a given precision (goal: >= 97% precision at
>= 50% hit rate).

    nice -n 19 python bench/cache_qqp.py [--threads 1] [--held-out 0.3] [--targets 0.005 0.01 0.02] [--explore]
    python bench/cache_qqp.py --embedder build/minilm-qqp     # MiniLM fine-tuned by bench/tune_embedder.py

``--explore`` (needs scikit-learn, not a promptkit dependency) also measures levers that promptkit does not ship,
on the same split, their thresholds calibrated on out-of-fold scores of the calibration part: gradient-boosted
trees on the match features (~1 minute), and on the match features plus MiniLM's pair interactions
(|u - v|, u * v; 800 columns, 6 fits: over 30 minutes on a busy 2-core machine).

Embeddings are cached in SQLite (``$TMPDIR/promptkit-test-embeddings.sqlite``, shared with the other benches);
the first run embeds ~73,000 distinct questions (about 10 minutes on one thread of a quiet core).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from promptkit.cache import calibrate_pairs, load_pairs, split_pairs
from promptkit.embeddings import EmbeddingCache, LlamaEmbedder, convert_minilm_to_gguf

QQP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qqp" / "calibration.jsonl.gz"
# A fine grid: probabilities and cosines near the top are where the false-hit targets fall.
GRID = [round(-0.2 + i * 0.0005, 4) for i in range(2401)]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def at_hit_rate(curve, rate: float) -> tuple[float, float] | None:  # type: ignore[no-untyped-def]
    """(precision, threshold) at the highest threshold whose hit rate reaches ``rate``."""
    points = [p for p in curve if p.recall >= rate]
    if not points:
        return None
    p = max(points, key=lambda p: p.threshold)
    return p.precision, p.threshold


def at_precision(curve, precision: float) -> float:  # type: ignore[no-untyped-def]
    """The highest hit rate among thresholds with at least ``precision`` (and at least one hit)."""
    return max((p.recall for p in curve if p.hits and p.precision >= precision), default=0.0)


def explore(pairs, fit, held, embedder, target, results) -> None:  # type: ignore[no-untyped-def]
    """Levers measured, not shipped: gradient-boosted trees (scikit-learn) on the match features, with and
    without MiniLM's pair interactions. Each gets a CalibrationResult-like entry in ``results``."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    from promptkit.cache import CalibrationResult, HeldOut
    from promptkit.cache._calibrate import threshold_curve
    from promptkit.cache._score import match_features

    def rows(part):  # type: ignore[no-untyped-def]
        u, v = embedder.embed_array(part.a), embedder.embed_array(part.b)
        cos = np.einsum("ij,ij->i", u, v)
        scalar = np.vstack(
            [match_features(x, [y], [c])[0] for x, y, c in zip(part.a, part.b, cos, strict=True)]
        )
        return scalar, np.hstack([scalar, np.abs(u - v), u * v])

    (fit_scalar, fit_full), (held_scalar, held_full) = rows(fit), rows(held)
    grid = [round(i * 0.0005, 4) for i in range(2001)]
    for name, x_fit, x_held in (
        ("[explore] boosted trees, match features", fit_scalar, held_scalar),
        ("[explore] boosted trees, + MiniLM |u-v|, u*v", fit_full, held_full),
    ):
        t = time.perf_counter()
        model = HistGradientBoostingClassifier(max_iter=300, random_state=0)
        oof = cross_val_predict(model, x_fit, fit.labels, cv=5, method="predict_proba")[:, 1]
        scores = model.fit(x_fit, fit.labels).predict_proba(x_held)[:, 1]
        curve = threshold_curve(oof, fit.labels, grid)
        ok = [p for p in curve if p.false_hit_rate <= target]
        best = min(ok, key=lambda p: p.threshold)
        held_curve = threshold_curve(scores, held.labels, grid)
        at = next(p for p in held_curve if p.threshold == best.threshold)
        results[name] = CalibrationResult(
            threshold=best.threshold, target_false_hit=target, curve=curve,
            held_out=HeldOut(
                pairs=len(held.labels), positives=sum(held.labels), negatives=len(held.labels) - sum(held.labels),
                hits=at.hits, true_hits=at.true_hits, false_hits=at.false_hits, precision=at.precision,
                hit_rate=at.recall, false_hit_rate=at.false_hit_rate, curve=held_curve,
            ),
        )  # fmt: skip
        print(f"{name}: {time.perf_counter() - t:.0f} s (no guards)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=QQP)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--held-out", type=float, default=0.3)
    parser.add_argument("--targets", type=float, nargs="+", default=[0.005, 0.01, 0.02])
    parser.add_argument("--explore", action="store_true", help="also the scikit-learn levers (slow)")
    parser.add_argument(
        "--embedder",
        type=Path,
        help="a sentence-transformers folder to use instead of MiniLM (bench/tune_embedder.py)",
    )
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data} is missing (shared/data is not beside the repository)")
    started = time.perf_counter()
    print(f"load average at start: {load()} (2 cores shared with others)")
    pairs = load_pairs(args.data)
    fit, held = split_pairs(pairs, args.held_out)
    print(
        f"{args.data.name}: {len(pairs.a):,} pairs ({sum(pairs.labels) / len(pairs.labels):.1%} duplicates);"
        f" calibration part {len(fit.a):,}, held out {len(held.a):,} ({sum(held.labels):,} duplicates)"
    )
    tmp = Path(tempfile.mkdtemp(prefix="pk-qqp-bench-"))
    # The embedding cache's model id is the file's name and hash: keep the name to reuse cached vectors.
    gguf_name = f"{args.embedder.resolve().name}.gguf" if args.embedder else "minilm.gguf"
    print(f"embedder: {args.embedder or 'all-MiniLM-L6-v2'}")
    embedder = LlamaEmbedder(
        convert_minilm_to_gguf(tmp / gguf_name, source=args.embedder),
        n_threads=args.threads,
        cache=EmbeddingCache(Path(tempfile.gettempdir()) / "promptkit-test-embeddings.sqlite"),
    )
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] > 30:
            last[0] = now
            print(f"  {stage}: {done:,}/{total:,} ({now - started:.0f} s)", flush=True)

    settings = (
        ("MiniLM cosine + guards", {"lexical_weight": 0.0}),
        ("blend (w 0.25) + guards, the default", {"lexical_weight": 0.25}),
        ("learned match classifier + guards (--scorer)", {"learn": True}),
    )
    results = {}
    for name, kwargs in settings:
        t = time.perf_counter()
        results[name] = calibrate_pairs(
            pairs, embedder, target_false_hit=args.targets[0], held_out=args.held_out, thresholds=GRID,
            progress=progress, **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip
        print(f"{name}: {time.perf_counter() - t:.0f} s")
    if args.explore:
        explore(pairs, fit, held, embedder, args.targets[0], results)

    print(f"\n== held out: {len(held.a):,} pairs never used to calibrate ==")
    print(
        f"{'setting':46} {'target':>6} {'threshold':>9} {'precision':>9} {'hit rate':>8} {'false hits':>10}"
    )
    for name in results:
        r = results[name]
        held_curve = {p.threshold: p for p in r.held_out.curve}  # type: ignore[union-attr]
        for target in args.targets:
            # What calibrate_pairs picks for this target: the lowest threshold meeting it on the calibration part
            # (both curves share the grid).
            ok = [p.threshold for p in r.curve if p.false_hit_rate <= target]
            if not ok:
                print(f"{name:46} {target:6.3f} {'none':>9}")
                continue
            h = held_curve[min(ok)]
            print(
                f"{name:46} {target:6.3f} {min(ok):9.4f} {h.precision:9.3f} {h.recall:8.3f} {h.false_hit_rate:10.4f}"
            )
    print("\n== held-out curve (any threshold; goal: precision >= 0.97 at hit rate >= 0.50) ==")
    rates = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    precisions = (0.9, 0.95, 0.97, 0.99)
    header = " ".join(f"{'p@' + format(r, '.0%'):>7}" for r in rates)
    header += " " + " ".join(f"{'hit@' + format(p, '.0%'):>8}" for p in precisions)
    print(f"{'setting':46} {header}")
    for name in results:
        curve = results[name].held_out.curve  # type: ignore[union-attr]
        cells = []
        for rate in rates:
            found = at_hit_rate(curve, rate)
            cells.append(f"{found[0]:7.3f}" if found else f"{'-':>7}")
        cells += [f"{at_precision(curve, p):8.3f}" for p in precisions]
        print(f"{name:46} {' '.join(cells)}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at end: {load()}")


if __name__ == "__main__":
    main()
