"""What OpenTelemetry tracing costs a generate() call: off (the default) and on, side by side in one run.

    python bench/tracing_overhead.py [--calls 2000] [--rounds 4]

"off" is promptkit with no tracer provider (every span call returns NO_SPAN); "on" sends promptkit's spans to
an OpenTelemetry SDK TracerProvider with a BatchSpanProcessor and an exporter that drops them, so the number is
promptkit's instrumentation plus the SDK's span bookkeeping, not a network. Rounds alternate off/on so that
machine noise hits both. The call is the cheapest there is (a scripted backend answering at once, no cache,
no ledger), so the ratio is the worst case; a real model call takes milliseconds to seconds.

Also printed: the cost of one no-op span (enter + exit) while tracing is off, with opentelemetry not imported
and with it imported but unconfigured, and the import time of promptkit.tracing. Needs promptkit[otel].
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import promptkit.tracing as tracing  # noqa: E402
from promptkit.backends import ScriptedBackend  # noqa: E402
from promptkit.generation import agenerate  # noqa: E402
from promptkit.prompts import Template  # noqa: E402
from promptkit.routing import Router, Tier  # noqa: E402

TEMPLATE = {
    "name": "bench_qa",
    "version": "1.0.0",
    "description": "Answer a question (benchmark fixture).",
    "inputs": {"question": {"type": "string"}},
    "output": {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
        "required": ["answer", "confidence"],
    },
    "messages": [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "{{ question }}"},
    ],
}
ANSWER = json.dumps({"answer": "Paris", "confidence": 0.9})


def enabled_ns(n: int = 200_000) -> float:
    """Nanoseconds for one ``tracing.enabled()`` check while tracing is off."""
    check = tracing.enabled
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter_ns()
        for _ in range(n):
            check()
        best = min(best, (time.perf_counter_ns() - started) / n)
    return best


def calls_per_generate() -> dict[str, int]:
    """How often one generate() call asks ``enabled()`` and opens a ``span()`` while tracing is off."""
    counts = {"enabled": 0, "span": 0}
    real_enabled, real_span = tracing.enabled, tracing.span

    def counting_enabled() -> bool:
        counts["enabled"] += 1
        return real_enabled()

    def counting_span(*args, **kwargs):  # type: ignore[no-untyped-def]
        counts["span"] += 1
        return real_span(*args, **kwargs)

    tracing.enabled, tracing.span = counting_enabled, counting_span  # type: ignore[assignment]
    try:
        asyncio.run(per_call_us(10))
    finally:
        tracing.enabled, tracing.span = real_enabled, real_span  # type: ignore[assignment]
    return {k: v // 10 for k, v in counts.items()}


def noop_span_ns(n: int = 200_000) -> float:
    """Nanoseconds for ``with tracing.span(name): pass`` while tracing is off."""
    span = tracing.span
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter_ns()
        for _ in range(n):
            with span("promptkit.bench"):
                pass
        best = min(best, (time.perf_counter_ns() - started) / n)
    return best


async def per_call_us(calls: int, undecorated: bool = False) -> list[float]:
    template = Template.from_dict(TEMPLATE)
    router = Router([Tier("scripted", [ScriptedBackend(default=ANSWER)])])
    call = agenerate.__wrapped__ if undecorated else agenerate  # type: ignore[attr-defined]
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        await call(template, {"question": f"q{i}"}, router=router, cache=False, ledger=False)
        samples.append(time.perf_counter() - started)
    return samples


def sdk_provider() -> object:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans):  # type: ignore[no-untyped-def]
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    # A queue that holds a whole round: no span is dropped (dropping would be cheaper than exporting).
    provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=1 << 17, schedule_delay_millis=200))
    return provider


def import_ms() -> float:
    # promptkit's package and errors module first: what tracing itself adds is measured.
    code = (
        "import time, promptkit.errors; t = time.perf_counter(); import promptkit.tracing; "
        "print((time.perf_counter() - t) * 1e3)"
    )
    # With bytecode cached, as an installed package has it (PYTHONDONTWRITEBYTECODE would time the compiler).
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env
                ).stdout
            )
            for _ in range(6)
        ]
    return min(runs[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    unimported = (noop_span_ns(), enabled_ns()) if "opentelemetry.trace" not in sys.modules else None
    counts = calls_per_generate()
    import opentelemetry.trace  # noqa: F401  (imported, no provider: the check asks the API each time)

    unconfigured = (noop_span_ns(), enabled_ns())
    provider = sdk_provider()

    asyncio.run(per_call_us(200))  # warm every path
    off: list[float] = []
    on: list[float] = []
    bare: list[float] = []
    for _ in range(args.rounds):
        tracing.configure(tracer_provider=None)
        bare += asyncio.run(per_call_us(args.calls, undecorated=True))
        assert not tracing.enabled()
        off += asyncio.run(per_call_us(args.calls))
        tracing.configure(tracer_provider=provider)
        assert tracing.enabled()
        on += asyncio.run(per_call_us(args.calls))
    tracing.configure(tracer_provider=None)
    provider.shutdown()  # type: ignore[attr-defined]

    off_us = statistics.median(off) * 1e6
    on_us = statistics.median(on) * 1e6
    bare_us = statistics.median(bare) * 1e6
    print(f"generate() per call, median of {len(off)} calls each (scripted backend, no cache, no ledger):")
    print(f"  tracing off : {off_us:8.1f} us")
    print(f"  tracing on  : {on_us:8.1f} us   (SDK, batch processor, exporter that drops spans)")
    print(f"  ratio on/off: {on_us / off_us:8.2f}x   (+{on_us - off_us:.1f} us per call)")
    print(f"  without the generate span decorator (still off): {bare_us:8.1f} us")
    print("while tracing is off, per check (enabled()) and per no-op span (with tracing.span(...): pass):")
    if unimported is not None:
        print(f"  opentelemetry not imported         : {unimported[1]:5.0f} ns, {unimported[0]:5.0f} ns")
    print(f"  opentelemetry imported, no provider: {unconfigured[1]:5.0f} ns, {unconfigured[0]:5.0f} ns")
    print(f"  per generate() call: {counts['enabled']} checks + {counts['span']} no-op span(s)")
    if unimported is not None:
        spent = counts["enabled"] * unimported[1] + counts["span"] * unimported[0]
        print(
            f"  = {spent / 1e3:.2f} us of the {off_us:.1f} us call ({100 * spent / 1e3 / off_us:.1f}%), plus the decorator"
        )
    print(
        f"import promptkit.tracing after promptkit.errors (fresh interpreter, best of 5): {import_ms():.2f} ms"
    )


if __name__ == "__main__":
    main()
