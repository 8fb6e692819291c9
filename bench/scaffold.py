"""Offline scaffold of every example spec, end to end: plan, execute (render steps), verify in the sandbox.

No model is configured, so model steps are skipped (as `promptkit scaffold` does without --model); the time is
split into planning, applying the rendered files, and the verifiers (sandboxed compile, ruff, pytest).
Target: each example under 30 s on 2 cores.

    python bench/scaffold.py                    # every examples/*.yaml
    python bench/scaffold.py examples/todo_api.yaml --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from promptkit.execution import Executor
from promptkit.planning import get_planner, load_spec

TARGET_S = 30.0
ROOT = Path(__file__).resolve().parents[1]


def scaffold_once(spec: Path) -> dict[str, float]:
    started = time.perf_counter()
    plan = get_planner("playbook").plan(load_spec(spec))
    planned = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pk-bench-") as folder:
        executor = Executor(plan, Path(folder) / "out", cache=False, ledger=False)
        try:
            report = asyncio.run(executor.run())
        finally:
            executor.close()
    total = time.perf_counter() - started
    if not report.ok:
        failed = [s.id for s in report.steps if s.status == "failed"]
        raise SystemExit(f"{spec.name}: steps failed: {', '.join(failed)}")
    return {
        "plan_s": planned - started,
        "apply_s": executor.timings["apply_s"],
        "verifiers_s": executor.timings["verifiers_s"],
        "total_s": total,
        "passed": float(report.count("passed")),
        "skipped": float(report.count("skipped")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("specs", nargs="*", type=Path, help="spec files (default: examples/*.yaml)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per spec; the median is shown")
    args = parser.parse_args(argv)
    specs = args.specs or sorted((ROOT / "examples").glob("*.yaml"))

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"offline scaffold (median of {args.repeat}), target < {TARGET_S:g} s each")
    for column in (
        "spec",
        "steps passed/skipped",
        "plan s",
        "apply s",
        "verifiers s",
        "other s",
        "total s",
        "ok",
    ):
        table.add_column(column, justify="left" if column == "spec" else "right")
    worst = 0.0
    for spec in specs:
        runs = [scaffold_once(spec) for _ in range(max(1, args.repeat))]
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        other = med["total_s"] - med["plan_s"] - med["apply_s"] - med["verifiers_s"]
        worst = max(worst, med["total_s"])
        table.add_row(
            spec.stem,
            f"{med['passed']:.0f}/{med['skipped']:.0f}",
            f"{med['plan_s']:.2f}",
            f"{med['apply_s']:.2f}",
            f"{med['verifiers_s']:.2f}",
            f"{other:.2f}",
            f"{med['total_s']:.2f}",
            "yes" if med["total_s"] < TARGET_S else "NO",
        )
    Console().print(table)
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
