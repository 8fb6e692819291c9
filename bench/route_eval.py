"""Full ``route eval`` figures: RouteLLM's recorded outcomes (APGR/CPT beside the paper's best published
routers, plus the dollar table at RouteLLM's prices), or any RouterBench-format outcome data (N models, AIQ).

Runs ``promptkit.evals.routing.run_route_eval``, the same function as ``promptkit route eval``. Every learned
router is scored on held-out prompts (5-fold CV, seeded; cross-domain: trained on the other domains) with 1,000
bootstrap resamples for the CIs; prompts are embedded once with all-MiniLM-L6-v2 (llama.cpp) and cached in the
state folder. The ``lexical-*`` routers and the dollar routers need no embedding.

    python bench/route_eval.py                                  # RouteLLM, all three benchmarks -> bench/out/route
    python bench/route_eval.py --benchmark gsm8k --bootstrap 200
    python bench/route_eval.py --routers random,oracle,lexical-logreg,lexical-knn   # no embedder loaded
    python bench/route_eval.py --data path/to/routerbench/ --out bench/out/routerbench
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from promptkit.evals.routing import BENCHMARKS, load_router_embedder, run_route_eval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=None, help="RouteLLM folder or RouterBench-format data")
    parser.add_argument("--benchmark", choices=[*BENCHMARKS, "all"], default="all")
    parser.add_argument("--routers", default=None, help="two-model routers (default: all)")
    parser.add_argument("--cost-routers", default=None, help="N-model dollar routers (default: all)")
    parser.add_argument("--split", choices=["in-domain", "cross-domain", "both"], default="both")
    parser.add_argument("--no-dollars", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/out/route"))
    args = parser.parse_args(argv)

    started = time.perf_counter()
    result = run_route_eval(
        args.data,
        benchmarks=None if args.benchmark == "all" else [args.benchmark],
        routers=[r for r in args.routers.split(",") if r] if args.routers else None,
        cost_routers=[r for r in args.cost_routers.split(",") if r] if args.cost_routers else None,
        splits=("in-domain", "cross-domain") if args.split == "both" else (args.split,),
        dollars=not args.no_dollars,
        folds=args.folds,
        bootstrap=args.bootstrap,
        seed=args.seed,
        limit=args.limit,
        embedder=lambda: load_router_embedder(n_threads=args.threads),
        out=args.out,
        progress=lambda msg: print(f"[{time.perf_counter() - started:7.1f} s] {msg}", file=sys.stderr),
    )
    print(result.markdown())
    print(f"written to {args.out}/ in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
