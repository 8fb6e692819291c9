"""Memory of the local backend's prompt-prefix cache over many calls: promptkit's cache vs llama-cpp-python's own.

llama-cpp-python's LlamaRAMCache keeps, with every saved prompt state, the logits of every prompt position
(tokens x vocabulary floats) but counts only the KV bytes against its capacity, so an eval over a real model
grows without bound (a HumanEval run reached 24 GB and was killed). promptkit's cache keeps the last
position's logits only and counts what it keeps. Each variant runs in its own child process on the same
prompts (distinct HumanEval problems, short answers); the script prints each one's peak RSS and the answers'
equality (the cache must not change them).

    python bench/prefix_cache_memory.py                       # 0.5B, 24 calls
    python bench/prefix_cache_memory.py --model qwen2.5-coder-1.5b --calls 12
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"


def child(model: str, calls: int, variant: str) -> None:
    sys.path.insert(0, str(ROOT))
    from promptkit.backends import GenerateRequest, LlamaBackend
    from promptkit.types import Message

    backend = LlamaBackend(model, n_ctx=4096, max_tokens=16)
    if variant == "llama-cpp-python":
        from llama_cpp import LlamaRAMCache

        backend.llama.set_cache(LlamaRAMCache())
    problems = [json.loads(line) for line in gzip.open(DATA, "rt")][:calls]
    answers = []
    started = time.perf_counter()

    async def run() -> None:
        for p in problems:
            request = GenerateRequest(
                messages=[
                    Message(role="user", content=f"Complete this function.\n```python\n{p['prompt']}```")
                ],
                temperature=0.0,
            )
            answers.append((await backend.generate(request)).text)

    asyncio.run(run())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cache = backend.llama.cache
    print(
        json.dumps(
            {
                "variant": variant,
                "peak_rss_mb": round(peak_mb),
                "entries": len(cache.cache_state),
                "counted_mb": round(cache.cache_size / 2**20, 1),
                "seconds": round(time.perf_counter() - started, 1),
                "answers": answers,
            }
        )
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="qwen2.5-coder-0.5b")
    p.add_argument("--calls", type=int, default=24)
    p.add_argument("--child", choices=["promptkit", "llama-cpp-python"])
    args = p.parse_args()
    if args.child:
        child(args.model, args.calls, args.child)
        return 0
    if not DATA.is_file():
        print(f"no HumanEval data at {DATA}", file=sys.stderr)
        return 2
    results = {}
    for variant in ("promptkit", "llama-cpp-python"):
        out = subprocess.run(
            [sys.executable, __file__, "--model", args.model, "--calls", str(args.calls), "--child", variant],
            capture_output=True,
            text=True,
            check=True,
        )
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    mine, theirs = results["promptkit"], results["llama-cpp-python"]
    print(f"{args.model}, {args.calls} calls with distinct prompts, 16 answer tokens each")
    for r in (mine, theirs):
        print(
            f"  {r['variant']:<17} peak RSS {r['peak_rss_mb']:>6} MB, {r['entries']} cached states counted as "
            f"{r['counted_mb']} MB, {r['seconds']} s"
        )
    print(f"  peak RSS ratio promptkit / llama-cpp-python: {mine['peak_rss_mb'] / theirs['peak_rss_mb']:.3f}")
    print(f"  same answers: {mine['answers'] == theirs['answers']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
