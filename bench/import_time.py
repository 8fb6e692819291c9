"""Time `import promptkit` in fresh interpreters, beside a bare `python -c pass` measured in the same run.

    .venv/bin/python bench/import_time.py [--runs 20]

Target: promptkit's own import cost (median, minus the bare interpreter start) at most 0.3 s, with neither
litellm nor llama_cpp imported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _time(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bare, full = [], []
    for _ in range(args.runs):  # interleaved so drift hits both equally
        bare.append(_time("pass"))
        full.append(_time("import promptkit"))
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, promptkit; print(sorted(m for m in ('litellm','llama_cpp') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    b, f = statistics.median(bare), statistics.median(full)
    print(f"interpreter start (median of {args.runs}): {b * 1000:.1f} ms")
    print(f"python -c 'import promptkit':           {f * 1000:.1f} ms")
    print(f"promptkit's own import cost:            {(f - b) * 1000:.1f} ms  (target <= 300 ms)")
    print(f"heavy SDKs imported: {check}")


if __name__ == "__main__":
    main()
