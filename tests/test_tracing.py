"""OpenTelemetry traces: off and free by default; with a provider, the span tree of generate(), eval runs and
executor runs, GenAI attribute names, no prompt, answer or secret unless asked; and export over OTLP/HTTP to a
real receiver on 127.0.0.1 (a promptkit process set up the way the CLI does it)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import promptkit.tracing as tracing
from promptkit.backends import FunctionBackend, GenerateRequest, ScriptedBackend, ScriptedReply
from promptkit.cache import ExactCache
from promptkit.errors import RateLimited
from promptkit.generation import generate, reset_defaults
from promptkit.prompts import Template
from promptkit.routing import RetryPolicy, Router, Tier
from promptkit.types import Usage

ROOT = Path(__file__).parents[1]
PROMPT = "PROMPT-MARKER-7f3a what is the capital of France"
SECRET = "sk-live-Zq8rT2vB9nM4kL7pW3xY6cD1"
GOOD = {"answer": "Paris-ANSWER-MARKER", "confidence": 0.9}
WEAK = {"answer": "Lyon-WEAK-MARKER", "confidence": 0.2}
QA = {
    "name": "qa",
    "version": "1.0.0",
    "description": "Answer a question.",
    "tags": {"technique": ["role"], "task": ["general"]},
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


def reply(payload: object, cost: float | None = None) -> ScriptedReply:
    return ScriptedReply(json.dumps(payload), usage=Usage(input_tokens=10, output_tokens=5), cost_usd=cost)


def confident(out: Any) -> bool | str:
    return True if out.confidence >= 0.8 else f"confidence {out.confidence} is below 0.8"


def cascade() -> Router:
    """Re-asks once on the cheap tier, then escalates once: attempts (invalid, invalid/reask, ok/escalation)."""
    cheap = ScriptedBackend([reply(WEAK, 0.001), reply(WEAK, 0.001)], name="cheap")
    strong = ScriptedBackend([reply(GOOD, 0.02)], name="strong")
    return Router([Tier("cheap", [cheap]), Tier("strong", [strong])], max_attempts_per_tier=2)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    reset_defaults()
    yield
    reset_defaults()


@pytest.fixture
def spans() -> Iterator[Any]:
    """promptkit's spans go to an in-memory exporter (the global tracer provider stays untouched)."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure(tracer_provider=provider, record_content=False)
    yield exporter
    tracing.configure(tracer_provider=None, record_content=None)
    provider.shutdown()


def everything(finished: Any) -> str:
    """Every name, attribute value, event and status text of the spans, as one string to search."""
    parts = []
    for s in finished:
        parts += [s.name, s.status.description or "", json.dumps(dict(s.attributes), default=str)]
        for event in s.events:
            parts += [event.name, json.dumps(dict(event.attributes), default=str)]
    return "\n".join(parts)


def by_start(finished: Any, prefix: str) -> list[Any]:
    return sorted((s for s in finished if s.name.startswith(prefix)), key=lambda s: s.start_time)


# --- off ---------------------------------------------------------------------------------------------------


def test_off_without_a_tracer_provider() -> None:
    assert not tracing.enabled()
    assert tracing.span("x") is tracing.NO_SPAN and not tracing.start("y")
    with tracing.span("x", {"a": 1}) as span:
        span.set({"b": 2})
    tracing.record_span("z")  # nothing to record to: a no-op


def test_import_promptkit_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, promptkit, promptkit.generation, promptkit.evals, promptkit.execution, promptkit.tracing\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_setup_installs_nothing_when_nothing_asks_for_export(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.setup() is False
    assert not tracing.enabled()


# --- generate() --------------------------------------------------------------------------------------------


def test_generate_span_tree_with_a_reask_and_an_escalation(spans: Any) -> None:
    result = generate(
        Template.from_dict(QA),
        {"question": f"{PROMPT} {SECRET}"},
        router=cascade(),
        accept=confident,
        cache=False,
        ledger=False,
    )
    assert result.model == "strong"
    finished = spans.get_finished_spans()
    (root,) = [s for s in finished if s.parent is None]
    assert root.name == "promptkit.generate qa"
    assert {s.name for s in finished} == {
        "promptkit.generate qa",
        "promptkit.render",
        "promptkit.route",
        "chat cheap",
        "chat strong",
    }
    assert all(s.context.trace_id == root.context.trace_id for s in finished)
    assert all(s.parent.span_id == root.context.span_id for s in finished if s is not root)

    attempts = by_start(finished, "chat ")
    assert [s.name for s in attempts] == ["chat cheap", "chat cheap", "chat strong"]
    assert [s.attributes.get("promptkit.reason") for s in attempts] == [None, "reask", "escalation"]
    assert [s.attributes["promptkit.outcome"] for s in attempts] == ["invalid", "invalid", "ok"]
    assert [s.attributes["promptkit.tier_name"] for s in attempts] == ["cheap", "cheap", "strong"]
    assert [s.attributes["promptkit.attempt"] for s in attempts] == [1, 2, 3]
    from opentelemetry.trace import SpanKind, StatusCode

    for s in attempts:
        assert s.kind == SpanKind.CLIENT
        assert s.attributes["gen_ai.operation.name"] == "chat"
        assert s.attributes["gen_ai.provider.name"] == "scripted"
        assert s.attributes["gen_ai.request.model"] == s.name.split()[1]
        assert s.attributes["gen_ai.output.type"] == "json"
        assert s.attributes["gen_ai.response.finish_reasons"] == ("stop",)
        assert (s.attributes["gen_ai.usage.input_tokens"], s.attributes["gen_ai.usage.output_tokens"]) == (
            10,
            5,
        )
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert attempts[0].attributes["error.type"] == "invalid"
    assert attempts[2].attributes["promptkit.cost_usd"] == pytest.approx(0.02)

    route = next(s for s in finished if s.name == "promptkit.route")
    assert route.attributes["promptkit.route.tiers"] == ("cheap", "strong")
    assert root.attributes["promptkit.template"] == "qa"
    assert root.attributes["promptkit.model"] == "strong"
    assert (root.attributes["promptkit.attempts"], root.attributes["promptkit.reasks"]) == (3, 1)
    assert root.attributes["promptkit.escalations"] == 1
    assert (root.attributes["gen_ai.usage.input_tokens"], root.attributes["gen_ai.usage.output_tokens"]) == (
        30,
        15,
    )
    assert root.attributes["promptkit.cost_usd"] == pytest.approx(0.022)

    text = everything(finished)
    for secret in (
        PROMPT,
        "PROMPT-MARKER",
        SECRET,
        "Zq8rT2vB9nM4kL7pW3xY6cD1",
        "ANSWER-MARKER",
        "WEAK-MARKER",
    ):
        assert secret not in text, f"{secret!r} leaked into a span"


def test_transport_retry_and_cache_hit_spans(spans: Any, tmp_path: Path) -> None:
    class Sleeps:
        async def __call__(self, seconds: float) -> None:
            return None

    flaky = ScriptedBackend([RateLimited("slow down"), reply(GOOD)], name="flaky")
    router = Router([Tier("t", [flaky])], retry=RetryPolicy(base_delay_s=0.1, max_retries=2), sleep=Sleeps())
    with ExactCache(tmp_path / "cache.sqlite") as cache:
        generate(Template.from_dict(QA), {"question": "q"}, router=router, cache=cache, ledger=False)
        first = spans.get_finished_spans()
        spans.clear()
        again = generate(Template.from_dict(QA), {"question": "q"}, router=router, cache=cache, ledger=False)
    assert again.cached

    attempts = by_start(first, "chat ")
    assert [s.attributes["promptkit.outcome"] for s in attempts] == ["transport_error", "ok"]
    assert attempts[0].attributes["error.type"] == "RateLimited"
    assert attempts[1].attributes["promptkit.reason"] == "retry"
    (lookup,) = [s for s in first if s.name == "promptkit.cache.lookup"]
    assert lookup.attributes["promptkit.cache.hit"] is False

    second = spans.get_finished_spans()
    assert not [s for s in second if s.name.startswith("chat ")]
    (lookup,) = [s for s in second if s.name == "promptkit.cache.lookup"]
    assert (lookup.attributes["promptkit.cache.kind"], lookup.attributes["promptkit.cache.hit"]) == (
        "exact",
        True,
    )
    (hit,) = [s for s in second if s.name == "promptkit.attempt"]
    assert (hit.attributes["promptkit.outcome"], hit.attributes["promptkit.cache"]) == ("cache_hit", "exact")
    (root,) = [s for s in second if s.parent is None]
    assert root.attributes["promptkit.cached"] is True
    assert hit.parent.span_id == root.context.span_id


def test_an_attempt_whose_check_crashes_is_ended_as_an_error_without_the_message(
    spans: Any, tmp_path: Any
) -> None:
    from promptkit.ledger import Ledger

    def broken(out: Any) -> bool:
        raise RuntimeError(f"bug in the check {out.answer}")

    backend = ScriptedBackend([reply(GOOD)], name="only")
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with pytest.raises(RuntimeError):
        generate(
            Template.from_dict(QA),
            {"question": "q"},
            model=backend,
            accept=broken,
            cache=False,
            ledger=ledger,
        )
    # The tokens were spent: the attempt is in the ledger, unjudged, its error naming only the exception type.
    (row,) = ledger.entries()
    assert (row.outcome, row.accepted, row.output_tokens > 0) == ("error", None, True)
    assert row.error == "the acceptance check raised RuntimeError"
    finished = spans.get_finished_spans()
    (attempt,) = by_start(finished, "chat ")
    assert attempt.attributes["promptkit.outcome"] == "error"
    (root,) = [s for s in finished if s.parent is None]
    assert root.attributes["error.type"] == "RuntimeError"
    assert root.status.description == "RuntimeError"  # the message (which quotes the answer) stays out
    assert "ANSWER-MARKER" not in everything(finished)


def test_content_only_when_asked_and_scrubbed(spans: Any) -> None:
    tracing.configure(record_content=True)
    generate(
        Template.from_dict(QA),
        {"question": f"{PROMPT} {SECRET}"},
        router=cascade(),
        accept=confident,
        cache=False,
        ledger=False,
    )
    finished = spans.get_finished_spans()
    last = by_start(finished, "chat ")[-1]
    messages = json.loads(last.attributes["gen_ai.input.messages"])
    assert messages[1]["role"] == "user" and PROMPT in messages[1]["parts"][0]["content"]
    assert "ANSWER-MARKER" in last.attributes["gen_ai.output.messages"]
    first = by_start(finished, "chat ")[0]
    assert "confidence 0.2 is below 0.8" in first.attributes["promptkit.error"]
    text = everything(finished)
    assert "Zq8rT2vB9nM4kL7pW3xY6cD1" not in text  # scrubbed even when content is recorded


# --- eval runs and executor runs ---------------------------------------------------------------------------

SUITE = """\
name: arithmetic
variants:
  - {name: plain, template: few_shot, examples: {strategy: first_k, k: 0}, inputs: {instruction: Compute.}}
models: [m1]
dataset: {path: data.jsonl, id_field: id, inputs: {input: q}, expected: a}
scorers:
  - {type: numeric}
repeats: 1
concurrency: 2
seed: 7
"""


def write_suite(folder: Path, items: int = 3) -> None:
    rows = [{"id": f"i{n}", "q": f"{n} + {n}", "a": str(2 * n)} for n in range(items)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "suite.yaml").write_text(SUITE, encoding="utf-8")


def adder(request: GenerateRequest) -> str:
    a, b = (int(x) for x in request.messages[-1].content.split("+"))
    return f"The answer is {a + b}"


def test_eval_run_span_tree(spans: Any, tmp_path: Path) -> None:
    from promptkit.evals import run_suite

    write_suite(tmp_path)
    log = run_suite(
        "suite.yaml", backends={"m1": FunctionBackend(adder, name="m1")}, progress=False, cache=False
    )
    assert all(r.passed for r in log.results)
    finished = spans.get_finished_spans()
    (run,) = [s for s in finished if s.parent is None]
    assert run.name == "promptkit.eval arithmetic"
    assert run.attributes["promptkit.eval.run_id"] == log.run_id
    items = [s for s in finished if s.name == "promptkit.eval.item"]
    assert len(items) == 3 and all(s.parent.span_id == run.context.span_id for s in items)
    assert sorted(s.attributes["promptkit.eval.item_id"] for s in items) == ["i0", "i1", "i2"]
    assert all(s.attributes["promptkit.eval.passed"] is True for s in items)
    item_ids = {s.context.span_id for s in items}
    generates = [s for s in finished if s.name == "promptkit.generate few_shot"]
    assert len(generates) == 3 and {s.parent.span_id for s in generates} == item_ids
    for item in items:
        (event,) = [e for e in item.events if e.name == "gen_ai.evaluation.result"]
        assert event.attributes["gen_ai.evaluation.name"] == "numeric"
        assert event.attributes["gen_ai.evaluation.score.label"] == "pass"
        assert event.attributes["gen_ai.evaluation.score.value"] == 1.0
    assert "The answer is" not in everything(finished)


def test_executor_steps_attempts_and_verifiers(spans: Any, tmp_path: Path) -> None:
    from promptkit.execution import execute_plan
    from promptkit.planning import AppSpec, Plan, Step

    good = "def double(x: int) -> int:\n    return 2 * x\n"
    bad = "def double(x: int) -> int\n    return 2 * x\n"
    files = ["lib/double.py"]
    step = Step(
        id="code",
        title="Step code",
        kind="generate-code",
        template="implement_step",
        inputs={
            "spec_summary": "demo: a tiny library.",
            "step": {"id": "code", "title": "Step code", "description": "Write it.", "acceptance": []},
            "allowed_paths": files,
        },
        files=files,
        verifiers=[{"python-compile": {"paths": files}}],
    )
    plan = Plan(
        spec=AppSpec(name="demo", summary="A demo.", stack="python-library"), planner="playbook", steps=[step]
    )
    backend = ScriptedBackend(
        [{"files": [{"path": files[0], "content": body}], "notes": "done"} for body in (bad, good)]
    )
    report = execute_plan(plan, tmp_path / "out", model=backend, cache=False, ledger=False, tidy=False)
    assert report.ok
    finished = spans.get_finished_spans()
    (run,) = [s for s in finished if s.parent is None]
    assert run.name == "promptkit.scaffold demo" and run.attributes["promptkit.scaffold.ok"] is True
    (step_span,) = [s for s in finished if s.name == "promptkit.step code"]
    assert step_span.parent.span_id == run.context.span_id
    assert (
        step_span.attributes["promptkit.step.status"],
        step_span.attributes["promptkit.step.attempts"],
    ) == (
        "passed",
        2,
    )
    generates = by_start(finished, "promptkit.generate ")
    verifies = [s for s in by_start(finished, "promptkit.verify") if s.name == "promptkit.verify"]
    assert len(generates) == 2 and len(verifies) == 2
    assert all(s.parent.span_id == step_span.context.span_id for s in generates)
    # Each answer is verified as its generate() call's acceptance check: inside that call's span.
    assert [s.parent.span_id for s in verifies] == [s.context.span_id for s in generates]
    assert generates[1].attributes["promptkit.feedback_turns"] == 1  # the repair continues the conversation
    assert [s.attributes["promptkit.verify.ok"] for s in verifies] == [False, True]
    verifiers = by_start(finished, "promptkit.verifier ")
    assert [s.name for s in verifiers] == ["promptkit.verifier python-compile"] * 2
    assert [s.parent.span_id for s in verifiers] == [s.context.span_id for s in verifies]
    assert [s.attributes["promptkit.verifier.ok"] for s in verifiers] == [False, True]
    assert "return 2 * x" not in everything(finished)


# --- a real OTLP/HTTP receiver on loopback ------------------------------------------------------------------


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces with a protobuf ExportTraceServiceRequest."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        self.bodies: list[bytes] = []
        self.requests: list[Any] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.paths.append(self.path)
                receiver.bodies.append(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.requests.append(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The resource attributes and every span, decoded."""
        resource: dict[str, Any] = {}
        out = []
        for request in self.requests:
            for rs in request.resource_spans:
                resource.update({kv.key: _value(kv.value) for kv in rs.resource.attributes})
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(
                            {
                                "name": s.name,
                                "trace": s.trace_id.hex(),
                                "id": s.span_id.hex(),
                                "parent": s.parent_span_id.hex() or None,
                                "scope": ss.scope.name,
                                "kind": s.kind,
                                "start": s.start_time_unix_nano,
                                "status": s.status.code,
                                "attributes": {kv.key: _value(kv.value) for kv in s.attributes},
                                "events": [
                                    (e.name, {kv.key: _value(kv.value) for kv in e.attributes})
                                    for e in s.events
                                ],
                            }
                        )
        return resource, out


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


SCRIPT = """\
import json, sys
import promptkit.tracing as tracing
from promptkit.backends import FunctionBackend, ScriptedBackend, ScriptedReply
from promptkit.evals import run_suite
from promptkit.generation import generate
from promptkit.prompts import Template
from promptkit.routing import Router, Tier
from promptkit.types import Usage

assert tracing.setup_for_cli(), "no exporter installed"
qa = Template.from_dict(json.loads(sys.argv[1]))
def reply(payload):
    return ScriptedReply(json.dumps(payload), usage=Usage(input_tokens=10, output_tokens=5), cost_usd=0.01)
good, weak, question = json.loads(sys.argv[2])
cheap = ScriptedBackend([reply(weak), reply(weak)], name="cheap")
strong = ScriptedBackend([reply(good)], name="strong")
router = Router([Tier("cheap", [cheap]), Tier("strong", [strong])], max_attempts_per_tier=2)
accept = lambda out: True if out.confidence >= 0.8 else "not confident"
result = generate(qa, {"question": question}, router=router, accept=accept, cache=False, ledger=False)
assert result.model == "strong"
def adder(request):
    a, b = (int(x) for x in request.messages[-1].content.split("+"))
    return f"The answer is {a + b}"
log = run_suite("suite.yaml", backends={"m1": FunctionBackend(adder, name="m1")}, progress=False, cache=False)
assert all(r.passed for r in log.results)
print("done")
"""


@pytest.mark.slow
@pytest.mark.parametrize("switch", ["config", "env"])
def test_export_to_a_real_otlp_receiver(tmp_path: Path, switch: str) -> None:
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    write_suite(tmp_path, items=2)
    (tmp_path / "run.py").write_text(SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        PROMPTKIT_HOME=str(tmp_path / "home"),
        PYTHONPATH=str(ROOT),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    with Receiver() as receiver:
        if switch == "config":
            config = f'[tracing]\notlp_endpoint = "{receiver.url}"\nservice_name = "promptkit-test"\n'
            (tmp_path / "promptkit.toml").write_text(config, encoding="utf-8")
        else:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
            env["OTEL_SERVICE_NAME"] = "promptkit-test"
        args = [json.dumps(QA), json.dumps([GOOD, WEAK, f"{PROMPT} {SECRET}"])]
        out = subprocess.run(
            [sys.executable, "run.py", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert "done" in out.stdout
    assert receiver.requests, "the receiver got no export"
    assert set(receiver.paths) == {"/v1/traces"}
    resource, received = receiver.spans()
    assert resource["service.name"] == "promptkit-test"
    assert {s["scope"] for s in received} == {"promptkit"}
    by_id = {s["id"]: s for s in received}

    # generate(): one trace, every span a child of the generate span; the attempts in order.
    (root,) = [s for s in received if s["name"] == "promptkit.generate qa"]
    assert root["parent"] is None
    tree = [s for s in received if s["trace"] == root["trace"]]
    assert {s["name"] for s in tree} == {
        "promptkit.generate qa",
        "promptkit.render",
        "promptkit.route",
        "chat cheap",
        "chat strong",
    }
    assert all(s["parent"] == root["id"] for s in tree if s is not root)
    attempts = sorted((s for s in tree if s["name"].startswith("chat ")), key=lambda s: s["start"])
    assert [s["attributes"].get("promptkit.reason") for s in attempts] == [None, "reask", "escalation"]
    assert [s["attributes"]["promptkit.outcome"] for s in attempts] == ["invalid", "invalid", "ok"]
    for s in attempts:
        a = s["attributes"]
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] in ("cheap", "strong")
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (10, 5)
        assert a["promptkit.cost_usd"] == pytest.approx(0.01)
        assert s["kind"] == 3  # SPAN_KIND_CLIENT
    assert [s["status"] for s in attempts] == [2, 2, 0]  # ERROR, ERROR, UNSET
    assert root["attributes"]["promptkit.attempts"] == 3
    assert root["attributes"]["gen_ai.usage.input_tokens"] == 30

    # The eval run: run → item → generate, with the scorer's verdict on each item.
    (run,) = [s for s in received if s["name"] == "promptkit.eval arithmetic"]
    assert run["parent"] is None
    items = [s for s in received if s["name"] == "promptkit.eval.item"]
    assert len(items) == 2 and all(s["parent"] == run["id"] for s in items)
    generates = [s for s in received if s["name"] == "promptkit.generate few_shot"]
    assert sorted(by_id[s["parent"]]["name"] for s in generates) == ["promptkit.eval.item"] * 2
    for item in items:
        events = [e for e in item["events"] if e[0] == "gen_ai.evaluation.result"]
        assert events and events[0][1]["gen_ai.evaluation.score.label"] == "pass"

    # Nothing of the prompt, the answers or the secret left the process.
    raw = b"".join(receiver.bodies)
    for marker in (
        "PROMPT-MARKER",
        "Zq8rT2vB9nM4kL7pW3xY6cD1",
        "sk-live",
        "ANSWER-MARKER",
        "WEAK-MARKER",
        "The answer is",
    ):
        assert marker.encode() not in raw, f"{marker!r} was exported"


def test_the_cli_reads_the_tracing_table_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every `promptkit` command sets tracing up from [tracing] before it runs (here: a bad value, reported)."""
    (tmp_path / "promptkit.toml").write_text("[tracing]\notlp_endpoint = 5\n", encoding="utf-8")
    from promptkit.cli import main

    assert main(["templates", "list"]) != 0
    assert "promptkit.toml:2: tracing.otlp_endpoint: must be a string, got 5" in capsys.readouterr().err
