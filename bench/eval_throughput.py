"""Eval runner throughput against a loopback OpenAI-compatible stub with fixed latency.

    python bench/eval_throughput.py [--n 1000] [--concurrency 32] [--latency 0.1] [--cache] [--ledger]
                                    [--backend both|openai|litellm|function] [--thread-stub] [--check]

A suite of ``n`` items, one variant, one model on a ``StubOpenAIServer`` that waits ``latency`` seconds per
answer, runs at ``concurrency``. The ideal rate is ``concurrency / latency`` items/s (320/s by default); the
runner's own work (rendering, routing, the HTTP client, scoring, the SQLite run log) is what keeps it below
that. The stub serves from a child process, so that its CPU does not compete with the client for the GIL
(``--thread-stub`` puts it back in a thread of this process, as before, for comparison). The response cache and
ledger are off unless asked for, so every item is a real HTTP call.

Backends, each measured beside the bare transport at the same concurrency against the same server:
``openai`` (promptkit's OpenAICompatBackend, ``openai:`` scheme; target ratio >= 0.95) against bare
``OpenAICompatBackend.generate``; ``litellm`` (``litellm:openai/stub``) against bare ``litellm.acompletion`` (the
ceiling any litellm-based runner can reach here); ``both`` runs the two. ``function`` swaps HTTP for an
in-process FunctionBackend that sleeps ``latency``: the harness's own overhead. Prints the load average too:
the ratio moves with it on a shared machine, and the stub's realised latency (arrival of each request to its
answer being written, recorded by the stub itself), so that a slow stub cannot pass for a slow runner.
``--check`` exits 1 when the ``openai`` (else the only) backend's ratio is below the target.

With exactly ``n`` items at ``concurrency`` the best reachable time is ceil(n / concurrency) * latency, so the
best ratio for the defaults is 1000/320/3.2 = 0.977.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

from promptkit.backends import StubOpenAIServer  # noqa: E402

TARGET = 0.95

SUITE = """\
name: throughput
variants:
  - {{name: plain, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: Echo.}}}}
models: [{model}]
dataset: {{path: data.jsonl, id_field: id, inputs: {{input: q}}, expected: a}}
scorers:
  - {{type: contains}}
concurrency: {concurrency}
cache: {cache}
max_attempts: 1
"""

CONFIG = """\
[models.stub_litellm]
model = "litellm:openai/stub"
api_base = "{base}"
api_key_env = "PROMPTKIT_BENCH_KEY"
concurrency = {concurrency}
timeout_s = 30

[models.stub_openai]
model = "openai:stub"
api_base = "{base}"
api_key_env = "PROMPTKIT_BENCH_KEY"
concurrency = {concurrency}
max_concurrency = {concurrency}
timeout_s = 30

[models.stub_function]
model = "litellm:openai/unused"
concurrency = {concurrency}
"""


def _sleeper(latency: float) -> object:
    import asyncio

    from promptkit.backends import FunctionBackend

    async def answer(request: object) -> str:
        await asyncio.sleep(latency)
        return "ok"

    return FunctionBackend(answer, name="stub_function")


async def _rate(call: Any, n: int, concurrency: int) -> float:
    """Items/s of ``call(i)`` for ``n`` items, ``concurrency`` in flight, after one warm round."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await call(i)

    await asyncio.gather(*(one(i) for i in range(concurrency)))
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


def _raw_litellm(base_url: str, n: int, concurrency: int) -> float:
    """Bare litellm.acompletion: the ceiling for any litellm-based runner on this machine."""
    import litellm

    async def call(i: int) -> None:
        await litellm.acompletion(
            model="openai/stub",
            api_base=base_url,
            api_key="sk-local-bench",
            messages=[{"role": "user", "content": f"item number {i}"}],
            temperature=0,
        )

    return asyncio.run(_rate(call, n, concurrency))


def _raw_compat(base_url: str, n: int, concurrency: int) -> float:
    """Bare OpenAICompatBackend.generate: the transport's own ceiling, without the runner."""
    from promptkit.backends import GenerateRequest, OpenAICompatBackend
    from promptkit.types import Message

    async def run() -> float:
        backend = OpenAICompatBackend(base_url, "stub", max_concurrency=concurrency)

        async def call(i: int) -> None:
            request = GenerateRequest(
                messages=[Message(role="user", content=f"item number {i}")], temperature=0
            )
            await backend.generate(request)

        try:
            return await _rate(call, n, concurrency)
        finally:
            await backend.aclose()

    return asyncio.run(run())


def _run(root: Path, args: argparse.Namespace, backend: str, server: Any) -> dict[str, Any]:
    from promptkit.evals import run_suite

    model = f"stub_{backend}"
    suite = root / f"suite_{backend}.yaml"
    suite.write_text(SUITE.format(concurrency=args.concurrency, cache=str(args.cache).lower(), model=model))
    # Warm up: imports, the connection pool and the template, outside the timed run.
    warm = root / f"warm_{backend}.yaml"
    warm.write_text(suite.read_text().replace("data.jsonl", "warm.jsonl"))
    backends = {model: _sleeper(args.latency)} if backend == "function" else None
    run_suite(warm, progress=False, ledger=args.ledger, backends=backends)
    before = server.request_count
    started = time.perf_counter()
    log = run_suite(suite, progress=False, ledger=args.ledger, backends=backends)
    elapsed = time.perf_counter() - started
    answered = [r.latency_s for r in server.requests[before:] if r.latency_s is not None]
    requests = server.request_count - before
    ceiling = None
    if backend == "litellm":
        ceiling = _raw_litellm(server.base_url, args.n, args.concurrency)
    elif backend == "openai":
        ceiling = _raw_compat(server.base_url, args.n, args.concurrency)
    return {
        "backend": backend,
        "rate": args.n / elapsed,
        "elapsed": elapsed,
        "requests": requests,
        "errors": sum(1 for r in log.results if r.error),
        "passed": sum(1 for r in log.results if r.passed),
        "ceiling": ceiling,
        "stub_latency": (sum(answered) / len(answered), max(answered)) if answered else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument(
        "--cache", action="store_true", help="use the response cache (cold: every call misses)"
    )
    parser.add_argument("--ledger", action="store_true", help="record every attempt in the ledger")
    parser.add_argument("--backend", choices=["both", "openai", "litellm", "function"], default="both")
    parser.add_argument(
        "--thread-stub", action="store_true", help="serve from a thread of this process, not a child"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the ratio is below the target")
    args = parser.parse_args()
    chosen = ["openai", "litellm"] if args.backend == "both" else [args.backend]

    results = []
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory() as folder,
        StubOpenAIServer(reply="ok", latency_s=args.latency, process=not args.thread_stub) as server,
    ):
        root = Path(folder)
        os.chdir(root)
        os.environ["PROMPTKIT_HOME"] = str(root / "state")
        os.environ["PROMPTKIT_BENCH_KEY"] = "sk-local-bench"
        (root / "promptkit.toml").write_text(
            CONFIG.format(base=server.base_url, concurrency=args.concurrency)
        )
        with (root / "data.jsonl").open("w") as handle:
            for n in range(args.n):
                handle.write(json.dumps({"id": f"i{n}", "q": f"item number {n}", "a": "ok"}) + "\n")
        (root / "warm.jsonl").write_text(json.dumps({"id": "w", "q": "warm", "a": "ok"}) + "\n")
        for backend in chosen:
            results.append(_run(root, args, backend, server))
    load_after = os.getloadavg()

    ideal = args.concurrency / args.latency
    print(
        f"items: {args.n}  concurrency: {args.concurrency}  latency: {args.latency:g} s  "
        f"stub: {'thread' if args.thread_stub else 'child process'}  cache: {args.cache}  ledger: {args.ledger}"
    )
    print(
        f"load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} cores"
    )
    failed = False
    for r in results:
        ratio = r["rate"] / ideal
        print(
            f"[{r['backend']}] requests: {r['requests']}  errors: {r['errors']}  passed: {r['passed']}  "
            f"elapsed: {r['elapsed']:.2f} s  achieved: {r['rate']:.1f} items/s  ideal: {ideal:.1f}  "
            f"ratio: {ratio:.3f} (target >= {TARGET})"
        )
        if r["stub_latency"] is not None:
            mean, worst = r["stub_latency"]
            print(
                f"    stub's realised latency (arrival -> answer written): mean {mean * 1e3:.2f} ms, "
                f"max {worst * 1e3:.2f} ms (configured {args.latency * 1e3:g} ms)"
            )
        if r["ceiling"] is not None:
            bare = "litellm.acompletion" if r["backend"] == "litellm" else "OpenAICompatBackend.generate"
            print(
                f"    bare {bare} at the same concurrency: {r['ceiling']:.1f} items/s "
                f"(ceiling ratio {r['ceiling'] / ideal:.3f}); runner / bare: {r['rate'] / r['ceiling']:.3f}"
            )
        if r["errors"]:
            print(f"[{r['backend']}] errors in the run: the measurement is not valid", file=sys.stderr)
            failed = True
    checked = next((r for r in results if r["backend"] == "openai"), results[0])
    if args.check and checked["rate"] / ideal < TARGET:
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
