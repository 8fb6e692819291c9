"""Eval throughput with several answers decoded at once (continuous batching) vs one at a time.

The same HumanEval items run through `promptkit eval`'s runner on the same local model, greedy, first with
the sequential in-process backend (one call at a time), then with ``LlamaBackend(parallel=P)`` and the
suite's concurrency set to P, so that P answers share each forward pass. Prints output tokens per second,
the ratio to sequential, how many answers are token-for-token the sequential ones, and hidden-test passes.

    .venv/bin/python bench/batched_decoding.py --model qwen2.5-coder-0.5b --items 16 --parallel 2 4 8

Each parallel row runs twice, without and with prefix sharing (a prompt copies the start it shares with a
sequence already in the batch's KV cache: here the chat template's system prompt and the instructions);
"prompt reused" is the share of prompt tokens copied instead of evaluated.

Run it on a quiet machine: llama.cpp's threads slow down a lot when anything else wants the cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from promptkit.backends import LlamaBackend  # noqa: E402
from promptkit.evals import load_suite, run_suite  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="catalog name or GGUF path")
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--parallel", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-tokens", type=int, default=384)
    return parser.parse_args()


def run(
    model: str, items: int, parallel: int, threads: int, max_tokens: int, share: bool = True
) -> tuple[float, list, float]:
    suite = load_suite(ROOT / "evals" / "humaneval.yaml")
    suite = suite.with_overrides(models=["m"], limit=items)
    spec = suite.spec.model_copy(update={"concurrency": parallel, "max_tokens": max_tokens})
    spec.variants[0] = spec.variants[0].model_copy(update={"max_tokens": max_tokens})
    suite = type(suite)(spec, path=suite.path, base_dir=suite.base_dir)
    backend = LlamaBackend(model, n_threads=threads, parallel=parallel, n_ctx=2048, prefix_cache=share)
    backend.load()
    started = time.perf_counter()
    log = run_suite(suite, backends={"m": backend}, progress=False, cache=False, ledger=False)
    wall = time.perf_counter() - started
    engine = backend._engine
    reused = engine.reused_tokens / max(engine.prompt_tokens, 1) if engine is not None else 0.0
    backend.close()
    results = sorted(log.results, key=lambda r: r.item_id)
    return wall, results, reused


def main() -> int:
    args = parse_args()
    load = os.getloadavg()
    print(
        f"model {args.model}, {args.items} HumanEval items, greedy, max_tokens {args.max_tokens}, "
        f"{args.threads} threads; load average before: {load[0]:.2f}"
    )
    base_wall, base, _ = run(args.model, args.items, 1, args.threads, args.max_tokens)
    base_tokens = sum(r.output_tokens for r in base)
    base_rate = base_tokens / base_wall
    print(
        f"{'setup':<22} {'wall s':>8} {'out tokens':>10} {'tokens/s':>9} {'ratio':>6} {'same answer':>11}"
        f" {'passed':>7} {'prompt reused':>13}"
    )
    passed = sum(bool(r.passed) for r in base)
    print(
        f"{'sequential':<22} {base_wall:>8.1f} {base_tokens:>10} {base_rate:>9.1f} {1.0:>6.2f} {'-':>11}"
        f" {passed:>7} {'-':>13}"
    )
    for parallel in args.parallel:
        for share in (False, True):
            wall, results, reused = run(
                args.model, args.items, parallel, args.threads, args.max_tokens, share
            )
            tokens = sum(r.output_tokens for r in results)
            same = sum(a.output == b.output for a, b in zip(base, results, strict=True))
            passed = sum(bool(r.passed) for r in results)
            rate = tokens / wall
            name = f"parallel {parallel}" + (", shared" if share else "")
            print(
                f"{name:<22} {wall:>8.1f} {tokens:>10} {rate:>9.1f} {rate / base_rate:>6.2f}"
                f" {same:>5}/{len(results):<5} {passed:>7} {reused:>12.0%}"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
