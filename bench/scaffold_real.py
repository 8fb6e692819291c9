"""The example specs scaffolded by the real local models, as a user runs them: the table issue 13 asks for.

Each example runs `promptkit scaffold SPEC --router promptkit.toml --no-cache --json` in a subprocess, with the
router `promptkit init` writes (Qwen2.5-Coder 0.5B as tier 0 with one attempt, the 1.5B as tier 1), so the
figures are what a user gets. Per example: wall time, steps passed, the app's own test suite (sandboxed); per
model step: the tier that passed it, attempts on each tier, tokens and seconds. Reports are kept under --out, so
`--table-only` prints the table again without running anything. Model-bound: minutes per example on 2 cores;
run it on a quiet machine, one at a time with any other model job.

    python bench/scaffold_real.py                        # every examples/*.yaml
    python bench/scaffold_real.py examples/todo_api.yaml
    python bench/scaffold_real.py --table-only

Learning where feature steps start (issue 18's live router, on real outcomes): the runs' ledger is under
``--out``/home; train a tier policy on it and scaffold again with it as ``[router.learned]``:

    python bench/scaffold_real.py --out build/scaffold_first
    promptkit route train --ledger build/scaffold_first/home/ledger.sqlite --out build/tier-policy.json
    python bench/scaffold_real.py --out build/scaffold_learned --policy build/tier-policy.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 600.0  # issue 13: each example under 10 minutes on 2 cores with local models only
GOAL_SMALL_SHARE = 0.9  # ... and >= 90% of feature steps passed by the 0.5B without escalation


def _promptkit() -> list[str]:
    return [sys.executable, "-m", "promptkit.cli"]


def run_example(spec: Path, out: Path, env: dict[str, str], policy: Path | None = None) -> dict[str, Any]:
    """Scaffold ``spec`` into ``out/<name>``; the report as JSON, with the wall time and per-tier attempts.
    ``policy``: a tier policy the router starts calls with (``[router.learned]``)."""
    project = out / spec.stem
    config = out / "promptkit.toml"
    if not config.exists():
        subprocess.run([*_promptkit(), "init", "--dir", str(out)], check=True, env=env, capture_output=True)
        if policy is not None:
            with config.open("a") as f:
                f.write(f"\n[router.learned]\npolicy = {json.dumps(str(policy.resolve()))}\n")
    elif policy is not None and "\n[router.learned]" not in config.read_text():
        raise SystemExit(f"--policy needs a fresh --out: {config} exists without [router.learned]")
    shutil.rmtree(project, ignore_errors=True)  # a fresh project each run
    started = time.perf_counter()
    done = subprocess.run(
        [
            *_promptkit(),
            "scaffold",
            str(spec),
            "-o",
            str(project),
            "--router",
            str(config),
            "--no-cache",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if not done.stdout.strip():
        raise SystemExit(
            f"scaffold of {spec} printed no report (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    report = json.loads(done.stdout)
    report["wall_s"] = wall
    report["tiers_tried"] = _attempts_per_tier(project / ".promptkit/runs" / report["run_id"] / "log.jsonl")
    (out / f"{spec.stem}.json").write_text(json.dumps(report, indent=1))
    return report


def _attempts_per_tier(log: Path) -> dict[str, dict[str, int]]:
    tried: dict[str, Counter[str]] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event.get("event") == "attempt":
                tried.setdefault(event["step"], Counter())[str(event.get("tier"))] += 1
    return {step: dict(counts) for step, counts in tried.items()}


def print_table(reports: dict[str, dict[str, Any]]) -> None:
    feature_steps = small_first = 0
    for name, report in reports.items():
        steps = report["steps"]
        passed = sum(s["status"] == "passed" for s in steps)
        tests = report.get("app_tests") or {}
        print(
            f"\n{name}: {report['wall_s']:.0f} s wall, {passed}/{len(steps)} steps passed; "
            f"the app's own tests: {tests.get('summary', 'none')}"
        )
        print(
            f"  {'step':34} {'status':7} {'passed by':10} {'attempts per tier':22} {'tokens in+out':14} {'s':>5}"
        )
        for step in steps:
            if (
                step["kind"] == "generate-code"
            ):  # a feature's implementation (skipped ones count as not passed)
                feature_steps += 1
                small_first += step["status"] == "passed" and step["escalations"] == 0 and step["tier"] == 0
            tried = report["tiers_tried"].get(step["id"])
            if not tried:
                continue  # a rendered step, or one skipped: no model call
            by = step["tier_name"] if step["status"] == "passed" else "-"
            attempts = ", ".join(f"{tier} {n}" for tier, n in tried.items())
            tokens = f"{step['input_tokens']}+{step['output_tokens']}"
            print(
                f"  {step['id']:34} {step['status']:7} {by:10} {attempts:22} {tokens:14} {step['duration_s']:5.0f}"
            )
        skipped = [s["id"] for s in steps if s["status"] == "skipped"]
        if skipped:
            print(f"  skipped (a step they need failed): {', '.join(skipped)}")
        ledger = report.get("ledger") or {}
        print(
            f"  model calls {ledger.get('calls', 0)}, compute {ledger.get('compute_s', 0):.0f} s, "
            f"escalations {sum(s['escalations'] for s in steps)}; goal: under {GOAL_S:.0f} s "
            f"({'met' if report['wall_s'] < GOAL_S else 'NOT met'})"
        )
    if feature_steps:
        share = small_first / feature_steps
        print(
            f"\nfeature steps passed by tier 0 without escalation: {small_first}/{feature_steps} ({share:.0%}); "
            f"goal >= {GOAL_SMALL_SHARE:.0%} ({'met' if share >= GOAL_SMALL_SHARE else 'NOT met'})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("specs", nargs="*", type=Path, help="default: every examples/*.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "scaffold_real")
    parser.add_argument(
        "--table-only", action="store_true", help="print the table of the reports under --out"
    )
    parser.add_argument(
        "--policy",
        type=Path,
        help="a tier policy (promptkit route train) for the router's [router.learned]; with a fresh --out",
    )
    args = parser.parse_args(argv)
    specs = args.specs or sorted((ROOT / "examples").glob("*.yaml"))
    args.out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict[str, Any]] = {}
    env = {**os.environ, "PROMPTKIT_HOME": os.environ.get("PROMPTKIT_HOME", str(args.out / "home"))}
    for spec in specs:
        saved = args.out / f"{spec.stem}.json"
        if args.table_only:
            if saved.exists():
                reports[spec.stem] = json.loads(saved.read_text())
            continue
        load = os.getloadavg()[0]
        print(
            f"scaffolding {spec.name} with the local models (load {load:.1f}) ...",
            file=sys.stderr,
            flush=True,
        )
        reports[spec.stem] = run_example(spec, args.out, env, args.policy)
        print(f"  {reports[spec.stem]['wall_s']:.0f} s", file=sys.stderr, flush=True)
    if not reports:
        print(f"no reports under {args.out}", file=sys.stderr)
        return 1
    print_table(reports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
