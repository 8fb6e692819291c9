"""Peak memory of a large eval run: 20,000 items at concurrency 32 on an in-process function backend.

    python bench/eval_memory.py [--n 20000] [--concurrency 32] [--check]

Results stream to the SQLite run log as they finish (the runner never holds them all twice); the returned
EvalLog and the JSON file are built from it at the end. Prints the process's peak RSS before and after the
run (target <= 300 MB) and the size of the log. The response cache and ledger are off.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_MB = 300

SUITE = """\
name: memory
variants:
  - {{name: plain, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: Echo.}}}}
models: [fake]
dataset: {{path: data.jsonl, id_field: id, inputs: {{input: q}}, expected: a}}
scorers:
  - {{type: contains}}
  - {{type: latency, max_s: 5}}
concurrency: {concurrency}
cache: false
"""


def peak_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--check", action="store_true", help="exit 1 when the peak is above the target")
    args = parser.parse_args()

    from promptkit.backends import FunctionBackend
    from promptkit.evals import run_suite

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.chdir(root)
        os.environ["PROMPTKIT_HOME"] = str(root / "state")
        (root / "suite.yaml").write_text(SUITE.format(concurrency=args.concurrency))
        with (root / "data.jsonl").open("w") as handle:
            for n in range(args.n):
                handle.write(
                    json.dumps({"id": f"item-{n:06d}", "q": f"please echo item number {n}", "a": "echo"})
                    + "\n"
                )
        backend = FunctionBackend(lambda request: "echo: " + request.messages[-1].content, name="fake")
        before = peak_mb()
        started = time.perf_counter()
        log = run_suite(
            root / "suite.yaml",
            out=root / "log.json",
            progress=False,
            ledger=False,
            backends={"fake": backend},
        )
        elapsed = time.perf_counter() - started
        after = peak_mb()
        size = (root / "log.json").stat().st_size / 1e6
        results = len(log.results)

    print(f"items: {args.n}  concurrency: {args.concurrency}  results: {results}  elapsed: {elapsed:.1f} s")
    print(
        f"peak RSS before the run: {before:.0f} MB  after: {after:.0f} MB (target <= {TARGET_MB} MB)  "
        f"log.json: {size:.1f} MB"
    )
    return 1 if args.check and after > TARGET_MB else 0


if __name__ == "__main__":
    sys.exit(main())
