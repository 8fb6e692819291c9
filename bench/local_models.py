"""Local GGUF models measured the way the field reports them, plus promptkit's overhead on each.

    python bench/local_models.py [--models qwen2.5-coder-0.5b qwen2.5-coder-1.5b] [--prompt-tokens 512]
        [--output-tokens 128] [--repeats 3] [--n-ctx 4096] [--threads auto]

Runs ``promptkit.backends.bench_local_model`` on each model in turn (never two at once), all at temperature 0
on the same deterministic code prompt: load time; cold prefill (TTFT and prefill tokens/s); decode (TPOT and
tokens/s, exactly --output-tokens per run, end-of-generation banned); the GB/s of weights that decode reads
(tokens/s x file size: one sequence's decode is bound by memory bandwidth); peak RSS; promptkit's
``LlamaBackend`` against raw ``create_chat_completion`` on the same loaded weights, alternated, measured side by
side in the same run (target <= 1.02); and prefix reuse: the TTFT of a second call that shares a long system
prompt with the first, over the first's (target <= 0.25). Medians over --repeats.

Prints a table per model, a summary table and the load average before and after (other busy processes on the
machine slow everything down, and auto threads use only the cores they leave free). Exits 1, with the
``promptkit models pull`` command to run, when a model is not installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptkit.backends import LocalBenchResult, bench_local_model  # noqa: E402
from promptkit.backends._bench import OVERHEAD_TARGET, PREFIX_REUSE_TARGET  # noqa: E402
from promptkit.errors import BackendUnavailable  # noqa: E402
from promptkit.models import catalog_entry, resolve_local_model  # noqa: E402

DEFAULT_MODELS = ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
COLUMNS = (
    ("model", 20),
    ("load s", 7),
    ("TTFT s", 7),
    ("prefill tok/s", 13),
    ("TPOT ms", 8),
    ("decode tok/s", 12),
    ("GB/s read", 9),
    ("peak RSS MB", 11),
    ("pk/raw", 7),
    ("prefix TTFT", 11),
)


def _threads(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {number}")
    return number


def missing(models: list[str]) -> list[str]:
    """One line per model that cannot be found, with what to do about it."""
    problems = []
    for name in models:
        try:
            resolve_local_model(name)
        except BackendUnavailable as exc:
            if catalog_entry(name) is not None:
                problems.append(f"{name} is not installed; run: promptkit models pull {name}")
            else:
                problems.append(f"{name}: {exc}")
    return problems


def summary_row(result: LocalBenchResult) -> list[str]:
    return [
        result.model,
        f"{result.load_s:.2f}",
        f"{result.ttft_s:.3f}",
        f"{result.prefill_tokens_per_s:.1f}",
        f"{result.tpot_s * 1e3:.2f}",
        f"{result.decode_tokens_per_s:.2f}",
        f"{result.decode_gb_per_s:.2f}",
        f"{result.peak_rss_mb:.0f}",
        f"{result.overhead_ratio:.4f}",
        f"{result.prefix_ttft_ratio:.3f}",
    ]


def print_table(rows: list[list[str]]) -> None:
    header = [name for name, _ in COLUMNS]
    widths = [max(width, *(len(row[i]) for row in rows)) for i, (_, width) in enumerate(COLUMNS)]

    def line(cells: list[str]) -> str:
        first, *rest = zip(cells, widths, strict=True)
        return "  ".join([f"{first[0]:<{first[1]}}", *(f"{cell:>{width}}" for cell, width in rest)])

    print(line(header))
    for row in rows:
        print(line(row))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="catalog names or GGUF paths")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=_threads, default="auto", help="llama.cpp threads, or auto")
    args = parser.parse_args()
    if args.prompt_tokens < 1 or args.output_tokens < 2 or args.repeats < 1:
        parser.error("--prompt-tokens must be >= 1, --output-tokens >= 2 and --repeats >= 1")

    problems = missing(args.models)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        return 1

    load_before = os.getloadavg()
    results = []
    for name in args.models:  # one at a time: two models at once would share the cores and the memory bus
        result = bench_local_model(
            name,
            n_ctx=args.n_ctx,
            n_threads=args.threads,
            prompt_tokens=args.prompt_tokens,
            output_tokens=args.output_tokens,
            repeats=args.repeats,
            progress=lambda line, name=name: print(f"[{name}] {line}", file=sys.stderr, flush=True),
        )
        results.append(result)
        print(f"\n== {name}")
        for line in result.lines():
            print(f"  {line}")
        print(
            f"  decode reads ~ {result.decode_gb_per_s:.2f} GB/s of weights (tokens/s x file size); "
            "this machine's memory bandwidth is the limit for one sequence",
            flush=True,
        )
    load_after = os.getloadavg()

    print(
        f"\nprompt ~{args.prompt_tokens} tokens, {args.output_tokens} output tokens, {args.repeats} repeat(s), "
        f"n_ctx {args.n_ctx}, threads {args.threads}; temperature 0"
    )
    print(
        f"load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} cores"
    )
    print_table([summary_row(result) for result in results])
    print(
        f"pk/raw: promptkit LlamaBackend / raw create_chat_completion, median of alternated pairs "
        f"(target <= {OVERHEAD_TARGET}); prefix TTFT: second call's TTFT / first's with a shared system prompt "
        f"(target <= {PREFIX_REUSE_TARGET})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
