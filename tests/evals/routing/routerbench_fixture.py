"""A small RouterBench-format folder written by the tests: 3 models with per-call dollar prices, 2 benchmarks.

Each prompt says how hard it is ("easy", "medium", "hard"): every model passes easy ones, the mid and big model
medium ones, only the big model hard ones (plus a little seeded noise), so a router that reads the prompt can
learn which model is enough. Written in RouterBench's wide layout (``<model>``, ``<model>|total_cost``,
``<model>|model_response``, ``eval_name``, ``sample_id``), one CSV per benchmark, or in the long layout as JSONL.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

MODELS = ("cheap/small", "mid/medium", "big/large")
PRICE_PER_CHAR = {"cheap/small": 1e-7, "mid/medium": 1e-6, "big/large": 1e-5}
LEVEL = {"easy": 0, "medium": 1, "hard": 2}
WORDS = ("apple", "river", "stone", "cloud", "paper", "glass", "tiger", "piano", "lemon", "orbit")


def rows(benchmark: str, n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(f"{benchmark}-{seed}")
    out = []
    for i in range(n):
        level = rng.choice(list(LEVEL))
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
        prompt = f"{benchmark} question {i}: a {level} one about {words}"
        row: dict[str, object] = {"sample_id": f"{benchmark}.{i}", "prompt": prompt, "eval_name": benchmark}
        for rank, model in enumerate(MODELS):
            passed = rank >= LEVEL[level]
            if rng.random() < 0.05:  # a little noise: real outcomes are never this clean
                passed = not passed
            row[model] = 1.0 if passed else 0.0
            row[f"{model}|total_cost"] = round(PRICE_PER_CHAR[model] * (len(prompt) + 40), 10)
            row[f"{model}|model_response"] = f"answer from {model}"
        out.append(row)
    return out


def write_wide(folder: Path, n: int = 90, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for benchmark in ("arith", "trivia"):
        data = rows(benchmark, n, seed)
        with (folder / f"{benchmark}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(data[0]))
            writer.writeheader()
            writer.writerows(data)
    return folder


def write_long(path: Path, n: int = 60, seed: int = 0, prompt_key: str = "prompt") -> Path:
    """The long layout, one JSON line per (prompt, model); ``prompt_key`` renames the prompt column."""
    lines = []
    for row in rows("arith", n, seed) + rows("trivia", n, seed):
        for model in MODELS:
            lines.append(
                json.dumps(
                    {
                        prompt_key: row["prompt"],
                        "model": model,
                        "score": row[model],
                        "cost": row[f"{model}|total_cost"],
                        "domain": row["eval_name"],
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
