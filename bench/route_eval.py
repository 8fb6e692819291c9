"""Full ``route eval`` figures on RouteLLM's recorded outcomes, beside the paper's best published routers.

Every learned router is scored on held-out queries (5-fold CV, seeded) with 1,000 bootstrap resamples for the
CIs; prompts are embedded once with all-MiniLM-L6-v2 (llama.cpp) and cached in the state folder. The
``lexical-*`` routers need no embedding (hashed TF-IDF + prompt statistics, refitted per training fold).

    python bench/route_eval.py                                  # all three benchmarks, written to bench/out/route
    python bench/route_eval.py --benchmark gsm8k --bootstrap 200
    python bench/route_eval.py --benchmark mmlu --limit 4000    # a seeded sample when embedding 14k is too slow
    python bench/route_eval.py --routers random,oracle,lexical-logreg,lexical-knn   # no embedder loaded
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from promptkit.routing.learned import (
    BENCHMARKS,
    DEFAULT_ROUTERS,
    ROUTERS,
    embed_texts,
    evaluate_benchmark,
    load_routellm,
    load_router_embedder,
)
from promptkit.routing.learned._report import markdown_report, plot_report, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--benchmark", choices=[*BENCHMARKS, "all"], default="all")
    parser.add_argument("--routers", default=",".join(DEFAULT_ROUTERS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/out/route"))
    args = parser.parse_args(argv)

    routers = [r for r in args.routers.split(",") if r]
    embed = any(ROUTERS[r].needs_embeddings for r in routers)
    embedder = load_router_embedder(n_threads=args.threads) if embed else None
    reports = []
    for name in BENCHMARKS if args.benchmark == "all" else (args.benchmark,):
        data = load_routellm(name, limit=args.limit, seed=args.seed)
        embeddings = None
        if embedder is not None:
            started = time.perf_counter()
            embeddings = embed_texts(data.prompts, embedder)
            print(
                f"{name}: {len(data)} queries, embedded in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
        started = time.perf_counter()
        report = evaluate_benchmark(
            data,
            routers=routers,
            embeddings=embeddings,
            folds=args.folds,
            bootstrap=args.bootstrap,
            seed=args.seed,
            progress=lambda msg: print(msg, file=sys.stderr),
        )
        print(f"{name}: evaluated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        reports.append(report)
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown_report(reports)
    (args.out / "route_eval.md").write_text(text, encoding="utf-8")
    write_json(reports, args.out / "route_eval.json")
    for report in reports:
        plot_report(report, args.out / f"{report.benchmark}.png")
    print(text)
    print(f"written to {args.out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
