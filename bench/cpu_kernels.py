"""llama.cpp's CPU kernels side by side: the build setup.sh chose (AVX-512 here) against the portable AVX2 build.

    python bench/cpu_kernels.py --other /tmp/portable-venv/bin/python [--models qwen2.5-coder-0.5b ...]
        [--prompt-tokens 512] [--output-tokens 64] [--rounds 3]

Make the other interpreter once: `python -m venv /tmp/portable-venv && bash scripts/build_llama.sh
/tmp/portable-venv/bin/python portable` (about 5 minutes on 2 cores). Each round runs one child process per
build, alternating which goes first, on the same GGUF file, prompt and thread count (every core); a child
loads the model, prefills the prompt cold and decodes a fixed number of tokens (end-of-text banned). Prints
prefill and decode tokens/s per build (median of the rounds) and the ratios. Run it on a quiet machine: two
CPU-bound jobs at once ruin both figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHILD = r"""
import json, os, sys, time
from llama_cpp import Llama, LogitsProcessorList, llama_print_system_info
path, prompt_tokens, output_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
threads = len(os.sched_getaffinity(0))
llm = Llama(model_path=path, n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
line = "    total = sum(item.price * item.quantity for item in order.items)  # line {}\n"
text = "".join(line.format(i) for i in range(400))
tokens = llm.tokenize(text.encode())[:prompt_tokens]
eos = llm.token_eos()
def ban(ids, scores):
    scores[eos] = -float("inf")
    return scores
llm.reset()
start = time.perf_counter()
llm.eval(tokens)
prefill = time.perf_counter() - start
stamps = []
def stamp(ids, scores):
    stamps.append(time.perf_counter())
    return ban(ids, scores)
llm.reset()
llm.create_completion(
    llm.detokenize(tokens).decode(errors="ignore"), max_tokens=output_tokens, temperature=0,
    logits_processor=LogitsProcessorList([stamp]),
)
decode = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
kernels = [k.split("=")[0].strip() for k in llama_print_system_info().decode().split("|") if k.strip().endswith("= 1")]
print(json.dumps({"prefill_tps": len(tokens) / prefill, "decode_tps": 1 / decode, "threads": threads,
                  "kernels": kernels}))
"""


def run(python: str, path: Path, prompt_tokens: int, output_tokens: int) -> dict[str, object]:
    done = subprocess.run(
        [python, "-c", CHILD, str(path), str(prompt_tokens), str(output_tokens)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise SystemExit(f"{python} failed: {done.stderr[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    from promptkit.models import resolve_local_model

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--other", required=True, help="Python of the build to compare (e.g. portable)")
    parser.add_argument("--this", default=sys.executable, help="Python of the build under test")
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for name in args.models:
        path = resolve_local_model(name)
        results: dict[str, list[dict[str, object]]] = {"this": [], "other": []}
        for round_ in range(args.rounds):
            order = ["this", "other"] if round_ % 2 == 0 else ["other", "this"]
            for side in order:
                python = args.this if side == "this" else args.other
                results[side].append(run(python, path, args.prompt_tokens, args.output_tokens))
        med = {
            side: {k: statistics.median(float(r[k]) for r in rs) for k in ("prefill_tps", "decode_tps")}  # type: ignore[arg-type]
            for side, rs in results.items()
        }
        print(
            f"\n{name} ({args.prompt_tokens}-token prompt, {args.output_tokens} tokens, {args.rounds} rounds)"
        )
        for side in ("this", "other"):
            kernels = ", ".join(str(k) for k in results[side][0]["kernels"])  # type: ignore[union-attr]
            print(
                f"  {side:5}  prefill {med[side]['prefill_tps']:7.1f} tok/s   decode {med[side]['decode_tps']:6.1f} "
                f"tok/s   threads {results[side][0]['threads']}   [{kernels}]"
            )
        print(
            f"  ratio  prefill {med['this']['prefill_tps'] / med['other']['prefill_tps']:.2f}x   "
            f"decode {med['this']['decode_tps'] / med['other']['decode_tps']:.2f}x"
        )
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
