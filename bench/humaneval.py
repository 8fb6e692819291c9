"""HumanEval through promptkit on local models: each model alone, the verified cascade, and the oracle.

Per problem, side by side (so load drifts hit every arm alike):
  small    the small model alone, one greedy answer;
  large    the large model alone, one greedy answer;
  cascade  generate() with router tiers [small (2 attempts: the answer, then a repair with the failing
           docstring examples fed back), large (1)], accepting an answer only when the examples in the
           problem's own docstring hold (DocstringExamples: the visible tests, never the hidden ones);
  oracle   the better of small and large per problem (computed, not run);
  repair   (after small) where small's answer fails the docstring examples: one repair by the small
           model with them fed back, sampled (--repair-temperature, seed 1) rather than greedy; with it the
           report derives two more cascades from the same answers: without the repair (small, then large)
           and with the sampled repair.
Every final answer is then scored on HumanEval's hidden tests in the sandbox. Compute is the model's own
seconds (prefill + decode, no queueing); the figures are also in the project ledger, one run per arm
(`promptkit ledger show`). Results are appended per (problem, arm) to OUT/results.jsonl, so a killed run
resumes where it stopped (--resume).

    python bench/humaneval.py                        # all 164 problems (about an hour on 2 cores)
    python bench/humaneval.py --limit 10 --arms small
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptkit import Router, Tier, agenerate  # noqa: E402
from promptkit.backends import LlamaBackend  # noqa: E402
from promptkit.errors import AttemptsExhausted  # noqa: E402
from promptkit.evals import DatasetSpec, Generation, build_scorer, load_dataset, mcnemar_exact  # noqa: E402
from promptkit.execution import DocstringExamples, extract_code  # noqa: E402
from promptkit.generation import Feedback  # noqa: E402
from promptkit.prompts import Template  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"
TEMPLATE = ROOT / "evals" / "humaneval" / "complete_function.yaml"
ARMS = ("small", "large", "cascade", "repair")
# Prefill and decode tokens/s measured on the 2-core machine (BENCHMARKS.md, `promptkit models bench`): the
# load-independent cost model. Measured seconds on a shared machine swing several-fold with other work.
RATES = {"qwen2.5-coder-0.5b": (199.6, 25.9), "qwen2.5-coder-1.5b": (93.5, 13.6)}
PUBLISHED = {"qwen2.5-coder-0.5b": 61.6, "qwen2.5-coder-1.5b": 70.7}  # Qwen2.5-Coder report, instruct


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="HumanEval.jsonl(.gz)")
    p.add_argument("--small", default="qwen2.5-coder-0.5b")
    p.add_argument("--large", default="qwen2.5-coder-1.5b")
    p.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of small,large,cascade")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--template", type=Path, default=TEMPLATE, help="a template with one input, code")
    p.add_argument("--max-tokens", type=int, default=768)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repair-temperature", type=float, default=0.6)
    p.add_argument("--out", type=Path, default=ROOT / "build" / "humaneval")
    p.add_argument("--resume", action="store_true", help="keep OUT/results.jsonl and skip what it holds")
    return p.parse_args()


def modelled_s(model: str, input_tokens: int, output_tokens: int) -> float:
    name = next((k for k in RATES if k in model), None)
    if name is None:
        return 0.0
    prefill, decode = RATES[name]
    return input_tokens / prefill + output_tokens / decode


def attempt_rows(attempts: list) -> list[dict]:
    return [
        {
            "model": a.model,
            "modelled_s": modelled_s(a.model, a.usage.input_tokens, a.usage.output_tokens),
            "tier": a.tier_name,
            "outcome": a.outcome,
            "compute_s": a.compute_s or 0.0,
            "input_tokens": a.usage.input_tokens,
            "output_tokens": a.usage.output_tokens,
            "error": (a.error or "")[:300] or None,
        }
        for a in attempts
    ]


async def run_arm(arm: str, item, router: Router, template, args, visible: DocstringExamples) -> dict:
    accept = visible if arm == "cascade" else None
    try:
        result = await agenerate(
            template,
            {"code": item.row["prompt"]},
            router=router,
            accept=accept,
            cache=False,
            run_id=f"humaneval-{arm}",
            temperature=0.0,
            max_tokens=args.max_tokens,
            stop=["```"],
        )
        text, attempts = result.text, result.attempts
    except AttemptsExhausted as exc:  # the cascade's last tier failed the check too: its answer stands
        attempts = list(exc.attempts)
        text = next((a.raw_output for a in reversed(attempts) if a.raw_output), "")
    return {"text": text, "attempts": attempt_rows(attempts)}


async def run_repair(
    item, small_row: dict, router: Router, template, args, visible: DocstringExamples
) -> dict:
    """One sampled repair of the small model's answer, when that answer fails the docstring examples."""
    verdict = await visible(small_row["text"])
    if verdict is True:
        return {"text": small_row["text"], "attempts": [], "needed": False}
    result = await agenerate(
        template,
        {"code": item.row["prompt"]},
        router=router,
        cache=False,
        run_id="humaneval-repair",
        temperature=args.repair_temperature,
        seed=1,
        max_tokens=args.max_tokens,
        stop=["```"],
        feedback=[
            Feedback(1, small_row["text"], f"the answer was rejected by the acceptance check: {verdict}")
        ],
    )
    return {"text": result.text, "attempts": attempt_rows(result.attempts), "needed": True}


async def main() -> int:
    args = parse_args()
    if not args.data.is_file():
        print(f"no HumanEval data at {args.data} (give --data)", file=sys.stderr)
        return 2
    arms = [a for a in args.arms.split(",") if a]
    unknown = set(arms) - set(ARMS)
    if unknown:
        print(f"unknown arms {sorted(unknown)}; choose from {ARMS}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.jsonl"
    if results_path.exists() and not args.resume:
        results_path.unlink()
    done: dict[tuple[str, str], dict] = {}
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[(row["task_id"], row["arm"])] = row

    items = load_dataset(DatasetSpec(path=str(args.data), id_field="task_id", limit=args.limit))
    template = Template.from_file(args.template)
    hidden = build_scorer({"type": "code_exec", "prompt_field": "prompt", "timeout_s": 20})
    small = LlamaBackend(args.small, n_ctx=4096, n_threads=args.threads)
    large = LlamaBackend(args.large, n_ctx=4096, n_threads=args.threads)
    routers = {
        "small": Router([Tier("small", small, max_attempts=1)]),
        "large": Router([Tier("large", large, max_attempts=1)]),
        "cascade": Router([Tier("small", small, max_attempts=2), Tier("large", large, max_attempts=1)]),
    }
    started = time.perf_counter()
    with results_path.open("a", encoding="utf-8") as out:
        for number, item in enumerate(items, 1):
            visible = DocstringExamples(item.row["prompt"], item.row["entry_point"])
            for arm in arms:
                if (item.id, arm) in done:
                    continue
                if arm == "repair":
                    small_row = done.get((item.id, "small"))
                    if small_row is None:
                        raise SystemExit("the repair arm needs the small arm (--arms small,...,repair)")
                    row = await run_repair(item, small_row, routers["small"], template, args, visible)
                else:
                    row = await run_arm(arm, item, routers[arm], template, args, visible)
                score = await hidden(item, Generation(text=row["text"]), None)
                seen = await visible.check_code(extract_code(row["text"], item.row["entry_point"]))
                record = {
                    "task_id": item.id,
                    "arm": arm,
                    "passed": bool(score.passed),
                    "visible": seen is True,
                    "examples": len(visible.examples),
                    **row,
                }
                out.write(json.dumps(record) + "\n")
                out.flush()
                done[(item.id, arm)] = record
            line = "  ".join(f"{arm}={'pass' if done[(item.id, arm)]['passed'] else 'fail'}" for arm in arms)
            print(
                f"[{number}/{len(items)}] {item.id}: {line}  ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    small.close()
    large.close()
    report(items, arms, done, args)
    return 0


def totals(rows: list[dict]) -> dict:
    attempts = [a for r in rows for a in r["attempts"]]
    per_tier: dict[str, int] = {}
    for a in attempts:
        per_tier[a["tier"]] = per_tier.get(a["tier"], 0) + 1
    return {
        "passed": sum(r["passed"] for r in rows),
        "compute_s": sum(a["compute_s"] for a in attempts),
        "modelled_s": sum(a["modelled_s"] for a in attempts),
        "input_tokens": sum(a["input_tokens"] for a in attempts),
        "output_tokens": sum(a["output_tokens"] for a in attempts),
        "calls": per_tier,
    }


def derived(ids: list[str], done: dict, *, repair: bool) -> dict:
    """A cascade computed from the arms' own answers (greedy answers are the same whoever asks): the small
    model's answer if it passes the docstring examples, else (optionally) the sampled repair if that passes,
    else the large model's answer."""
    rows = []
    for i in ids:
        small, large = done[(i, "small")], done[(i, "large")]
        chain = [small]
        if not small["visible"] and repair and done[(i, "repair")]["needed"]:
            chain.append(done[(i, "repair")])
        if not chain[-1]["visible"]:
            chain.append(large)
        rows.append({"passed": chain[-1]["passed"], "attempts": [a for r in chain for a in r["attempts"]]})
    return totals(rows)


def report(items, arms: list[str], done: dict, args) -> None:
    ids = [it.id for it in items if all((it.id, arm) in done for arm in arms)]
    n = len(ids)
    table = {arm: totals([done[(i, arm)] for i in ids]) for arm in arms if arm != "repair"}
    if "small" in arms and "large" in arms:
        best = [
            done[(i, "small")] if done[(i, "small")]["passed"] or not done[(i, "large")]["passed"] else None
            for i in ids
        ]
        table["oracle"] = {
            "passed": sum(1 for b in best if b is None or b["passed"]),
            "compute_s": None,
            "modelled_s": None,
            "input_tokens": None,
            "output_tokens": None,
            "calls": {},
        }
    if {"small", "large"} <= set(arms):
        table["small>large"] = derived(ids, done, repair=False)
    if {"small", "large", "repair"} <= set(arms):
        table["small>repair>large"] = derived(ids, done, repair=True)
    print(
        f"\nHumanEval, {n} problems, greedy, template {args.template.name}, max_tokens {args.max_tokens}, "
        f"{args.threads} threads"
    )
    print(
        f"{'arm':<9} {'pass@1':>14} {'compute s':>10} {'modelled s':>10} {'tokens in+out':>16}  calls per tier"
    )
    for arm, t in table.items():
        rate = f"{t['passed']}/{n} {100 * t['passed'] / max(n, 1):5.1f}%"
        compute = "-" if t["compute_s"] is None else f"{t['compute_s']:.0f}"
        modelled = "-" if t["modelled_s"] is None else f"{t['modelled_s']:.0f}"
        tokens = "-" if t["input_tokens"] is None else f"{t['input_tokens']}+{t['output_tokens']}"
        calls = ", ".join(f"{k} {v}" for k, v in t["calls"].items()) or "-"
        print(f"{arm:<9} {rate:>14} {compute:>10} {modelled:>10} {tokens:>16}  {calls}")
    for arm, model in (("small", args.small), ("large", args.large)):
        if arm in table and model in PUBLISHED and n == 164:
            gap = PUBLISHED[model] - 100 * table[arm]["passed"] / n
            print(f"{model}: published {PUBLISHED[model]}%, gap {gap:+.1f} points")
    if "cascade" in arms and "large" in arms:
        c, g = table["cascade"], table["large"]
        test = mcnemar_exact(
            [done[(i, "cascade")]["passed"] for i in ids], [done[(i, "large")]["passed"] for i in ids]
        )
        ratio = c["compute_s"] / g["compute_s"] if g["compute_s"] else float("nan")
        print(
            f"cascade vs large: pass@1 {c['passed'] - g['passed']:+d} problems, McNemar exact "
            f"p={test.p_value:.3f} ({test.b10} only cascade, {test.b01} only large); compute ratio "
            f"{ratio:.3f} (goal <= 0.60 at no lower pass@1)"
        )
    for arm in ("small", "large"):
        if arm in arms:
            rows = [done[(i, arm)] for i in ids]
            false_accepts = sum(1 for r in rows if r["visible"] and not r["passed"])
            misses = sum(1 for r in rows if not r["visible"] and r["passed"])
            print(
                f"visible check on {arm}: accepts {sum(r['visible'] for r in rows)}, of which wrong "
                f"{false_accepts}; rejects {sum(not r['visible'] for r in rows)}, of which right {misses}"
            )
    summary = {"problems": n, "arms": table}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
