"""Eval runner throughput against a loopback OpenAI-compatible stub with fixed latency, via litellm.

    python bench/eval_throughput.py [--n 1000] [--concurrency 32] [--latency 0.1] [--cache] [--ledger] [--check]

A suite of ``n`` items, one variant, one model (``litellm:openai/stub`` on a ``StubOpenAIServer`` that waits
``latency`` seconds per answer) runs at ``concurrency``. The ideal rate is ``concurrency / latency`` items/s
(320/s by default); the runner's own work (rendering, routing, litellm, scoring, the SQLite run log) is what
keeps it below that. Prints achieved items/s, the ideal and their ratio (target >= 0.95). The response cache
and ledger are off unless asked for, so every item is a real HTTP call.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

from promptkit.backends import StubOpenAIServer  # noqa: E402

TARGET = 0.95

SUITE = """\
name: throughput
variants:
  - {{name: plain, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: Echo.}}}}
models: [stub]
dataset: {{path: data.jsonl, id_field: id, inputs: {{input: q}}, expected: a}}
scorers:
  - {{type: contains}}
concurrency: {concurrency}
cache: {cache}
max_attempts: 1
"""

CONFIG = """\
[models.stub]
model = "litellm:openai/stub"
api_base = "{base}"
api_key_env = "PROMPTKIT_BENCH_KEY"
concurrency = {concurrency}
timeout_s = 30
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--cache", action="store_true", help="use the response cache (cold: every call misses)")
    parser.add_argument("--ledger", action="store_true", help="record every attempt in the ledger")
    parser.add_argument("--check", action="store_true", help="exit 1 when the ratio is below the target")
    args = parser.parse_args()

    from promptkit.evals import run_suite

    with tempfile.TemporaryDirectory() as folder, StubOpenAIServer(reply="ok", latency_s=args.latency) as server:
        root = Path(folder)
        os.chdir(root)
        os.environ["PROMPTKIT_HOME"] = str(root / "state")
        os.environ["PROMPTKIT_BENCH_KEY"] = "sk-local-bench"
        (root / "promptkit.toml").write_text(CONFIG.format(base=server.base_url, concurrency=args.concurrency))
        (root / "suite.yaml").write_text(SUITE.format(concurrency=args.concurrency, cache=str(args.cache).lower()))
        with (root / "data.jsonl").open("w") as handle:
            for n in range(args.n):
                handle.write(json.dumps({"id": f"i{n}", "q": f"item number {n}", "a": "ok"}) + "\n")
        # Warm up: imports (litellm), the connection pool and the template, outside the timed run.
        warm = root / "warm.yaml"
        warm.write_text((root / "suite.yaml").read_text().replace("data.jsonl", "warm.jsonl"))
        (root / "warm.jsonl").write_text(json.dumps({"id": "w", "q": "warm", "a": "ok"}) + "\n")
        run_suite(warm, progress=False, ledger=args.ledger)

        started = time.perf_counter()
        log = run_suite(root / "suite.yaml", progress=False, ledger=args.ledger)
        elapsed = time.perf_counter() - started
        errors = sum(1 for r in log.results if r.error)
        passed = sum(1 for r in log.results if r.passed)
        requests = server.request_count

    rate = args.n / elapsed
    ideal = args.concurrency / args.latency
    ratio = rate / ideal
    print(f"items: {args.n}  concurrency: {args.concurrency}  latency: {args.latency:g} s  "
          f"cache: {args.cache}  ledger: {args.ledger}")
    print(f"requests: {requests}  errors: {errors}  passed: {passed}")
    print(f"elapsed: {elapsed:.2f} s  achieved: {rate:.1f} items/s  ideal: {ideal:.1f} items/s  "
          f"ratio: {ratio:.3f} (target >= {TARGET})")
    if errors:
        print("errors in the run: the measurement is not valid", file=sys.stderr)
        return 1
    return 1 if args.check and ratio < TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
