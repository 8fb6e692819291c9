"""Per-call overhead of promptkit's remote backend against raw litellm, over real loopback HTTP.

    python bench/remote_call.py [--n 300] [--max-tokens 16] [--model PATH] [--structured] [--check]

A = ``await LiteLLMBackend.generate(request)``; B = ``await litellm.acompletion(**same kwargs)``. Both talk to
the same llama-cpp-python OpenAI-compatible server (started with ``start_llama_server`` on a tiny random model
made by ``make_tiny_gguf``), with the same messages, ``max_tokens``, ``temperature=0`` and timeout. B gets the
exact kwargs A sends (``build_kwargs``), so only promptkit's own work differs: request building, the
semaphore, the exception guard and response conversion (usage, price lookup). Calls are interleaved and the
order flips every iteration, so drift in machine or server load hits both sides equally. Prints both medians
and A/B; the target is A/B <= 1.05. ``--check`` exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pydantic import BaseModel, Field  # noqa: E402

from promptkit.backends._base import GenerateRequest  # noqa: E402
from promptkit.backends._litellm import LiteLLMBackend, _import_litellm  # noqa: E402
from promptkit.backends._tiny_gguf import make_tiny_gguf  # noqa: E402
from promptkit.backends.llama_server import start_llama_server  # noqa: E402
from promptkit.types import Message  # noqa: E402

TARGET = 1.05
PROMPT = "Summarise the plot of a short story about a lighthouse keeper in two sentences."


class Answer(BaseModel):
    title: str = Field(max_length=16)
    score: int


async def run(
    base_url: str, alias: str, n: int, max_tokens: int, warmup: int, structured: bool
) -> tuple[list[float], list[float]]:
    litellm = _import_litellm()
    backend = LiteLLMBackend(f"openai/{alias}", api_base=base_url, api_key="sk-local", timeout_s=60)
    request = GenerateRequest(
        messages=[Message(role="user", content=PROMPT)],
        max_tokens=max_tokens,
        temperature=0,
        output_model=Answer if structured else None,
    )
    raw_kwargs: dict[str, Any] = backend.build_kwargs(request)
    raw_kwargs["api_key"] = "sk-local"

    async def promptkit_call() -> float:
        started = time.perf_counter()
        await backend.generate(request)
        return time.perf_counter() - started

    async def raw_call() -> float:
        started = time.perf_counter()
        await litellm.acompletion(**raw_kwargs)
        return time.perf_counter() - started

    for _ in range(warmup):
        await promptkit_call()
        await raw_call()
    ours: list[float] = []
    raw: list[float] = []
    for i in range(n):
        if i % 2 == 0:
            ours.append(await promptkit_call())
            raw.append(await raw_call())
        else:
            raw.append(await raw_call())
            ours.append(await promptkit_call())
    return ours, raw


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300, help="calls per side (at least 200)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: a fresh tiny model)")
    parser.add_argument(
        "--structured", action="store_true", help="request structured output (instructor TOOLS)"
    )
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio exceeds {TARGET}")
    args = parser.parse_args()
    if args.n < 200:
        parser.error("--n must be at least 200")

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or make_tiny_gguf(Path(tmp) / "tiny.gguf", n_ctx=2048)
        with start_llama_server(model, alias="tiny", timeout=60, extra_args=["--n_ctx", "2048"]) as server:
            ours, raw = asyncio.run(
                run(server.base_url, server.alias, args.n, args.max_tokens, args.warmup, args.structured)
            )

    ours_median = statistics.median(ours)
    raw_median = statistics.median(raw)
    ratio = ours_median / raw_median
    kind = "structured (TOOLS)" if args.structured else "plain"
    print(
        f"remote call, {kind}, n={args.n} per side, max_tokens={args.max_tokens}, loopback llama-cpp-python server"
    )
    print(f"  promptkit LiteLLMBackend.generate  median {ours_median * 1000:8.3f} ms")
    print(f"  raw litellm.acompletion            median {raw_median * 1000:8.3f} ms")
    print(f"  ratio A/B = {ratio:.3f} (target <= {TARGET})")
    if args.check and ratio > TARGET:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
