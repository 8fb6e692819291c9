"""Prompt-lookup decoding on whole-file rewrites: tokens/s with and without, and whether the output is the same.

A repair or a refactor answer mostly copies the file it was given. With prompt lookup the local backend
drafts the next tokens by finding the last few generated tokens in the prompt and copying what followed;
the model checks a whole draft in one forward pass and keeps the tokens it agrees with. At temperature 0
the answer should be the plain one, token for token.

The files are small modules of this Python's standard library (fixed for a given interpreter), each with one
small edit asked for (rename its first function and update the callers), answered as the whole file.
`--task write` measures the other side: answers that copy little (the first HumanEval problems, each function
written from its docstring), where drafts are rarely accepted and only their cost shows.

    .venv/bin/python bench/prompt_lookup.py --model qwen2.5-coder-0.5b --draft 10
    .venv/bin/python bench/prompt_lookup.py --task write --files 8

Run it on a quiet machine; the two setups alternate per file so that a change of load hits both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from promptkit.backends import GenerateRequest, LlamaBackend  # noqa: E402
from promptkit.types import Message  # noqa: E402

FILES = ("bisect.py", "colorsys.py", "keyword.py", "this.py", "struct.py", "glob.py")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--draft", type=int, nargs="+", default=[10])
    parser.add_argument("--task", choices=("rewrite", "write"), default="rewrite")
    parser.add_argument(
        "--files", type=int, default=4, help="how many files (or HumanEval problems) to answer"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-tokens", type=int, default=1200)
    return parser.parse_args()


def task(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    first = re.search(r"^def (\w+)\(", source, re.M)
    name = first.group(1) if first else "main"
    return (
        f"In this file, rename the function `{name}` to `{name}_v2` and update every call to it. "
        "Change nothing else. Answer with the whole new file in one Python code block.\n\n"
        f"```python\n{source}```"
    )


def write_tasks(count: int) -> list[tuple[str, str]]:
    """(name, prompt) for the first ``count`` HumanEval problems: write the function from its docstring."""
    import gzip
    import json

    data = ROOT.parent / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"
    with gzip.open(data, "rt", encoding="utf-8") as handle:
        problems = [json.loads(line) for line in handle][:count]
    return [
        (
            p["task_id"].replace("HumanEval/", "HE/"),
            "Complete this function. Answer with the whole function in one Python code block.\n\n"
            f"```python\n{p['prompt']}```",
        )
        for p in problems
    ]


async def answer(backend: LlamaBackend, prompt: str, max_tokens: int) -> tuple[str, int, float]:
    request = GenerateRequest(
        messages=[Message(role="user", content=prompt)], temperature=0, max_tokens=max_tokens
    )
    started = time.perf_counter()
    response = await backend.generate(request)
    return response.text, response.usage.output_tokens, time.perf_counter() - started


async def main() -> int:
    args = parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if args.task == "write":
        tasks = write_tasks(args.files)
    else:
        paths = [stdlib / name for name in FILES if (stdlib / name).is_file()][: args.files]
        tasks = [(path.name, task(path)) for path in paths]
    setups = {"plain": LlamaBackend(args.model, n_threads=args.threads, prefix_cache=False, n_ctx=4096)}
    for n in args.draft:
        setups[f"lookup {n}"] = LlamaBackend(
            args.model, n_threads=args.threads, prefix_cache=False, n_ctx=4096, prompt_lookup=n
        )
    for backend in setups.values():
        backend.load()
    print(
        f"model {args.model}, {len(tasks)} {'whole-file rewrites' if args.task == 'rewrite' else 'functions written'}, "
        f"greedy, {args.threads} threads; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    totals = {name: [0, 0.0] for name in setups}
    same = {name: 0 for name in setups}
    for label, prompt in tasks:
        texts = {}
        for name, backend in setups.items():
            text, tokens, seconds = await answer(backend, prompt, args.max_tokens)
            texts[name] = text
            totals[name][0] += tokens
            totals[name][1] += seconds
            same[name] += text == texts["plain"]
            print(
                f"  {label:<12} {name:<10} {tokens:>5} tokens {seconds:>6.1f} s {tokens / seconds:>6.1f} tokens/s"
            )
    base = totals["plain"][0] / totals["plain"][1]
    print(f"{'setup':<10} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'ratio':>6} {'same output':>11}")
    for name, (tokens, seconds) in totals.items():
        rate = tokens / seconds
        print(
            f"{name:<10} {tokens:>7} {seconds:>8.1f} {rate:>9.1f} {rate / base:>6.2f} {same[name]:>5}/{len(tasks)}"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for backend in setups.values():
        backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
