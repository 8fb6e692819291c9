"""Transport faults over real loopback HTTP: LiteLLMBackend → StubOpenAIServer, and a dead port → llama server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from promptkit.backends import Fault, LiteLLMBackend, StubOpenAIServer
from promptkit.errors import RoutingError
from promptkit.generation import agenerate
from promptkit.routing import Deployment, RetryPolicy, Router, Tier

GOOD = {"answer": "Paris", "confidence": 0.9}
IN_PRICE, OUT_PRICE = 2e-6, 8e-6


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def server() -> Iterator[StubOpenAIServer]:
    with StubOpenAIServer(reply=GOOD) as s:
        yield s


@pytest.fixture
def backup() -> Iterator[StubOpenAIServer]:
    with StubOpenAIServer(reply=GOOD, model="backup") as s:
        yield s


def deployment(server: StubOpenAIServer, name: str, *, timeout_s: float = 30.0) -> Deployment:
    backend = LiteLLMBackend(
        "openai/stub", api_base=server.base_url, api_key="sk-test-not-a-secret", name=name
    )
    return Deployment(
        backend, timeout_s=timeout_s, input_cost_per_token=IN_PRICE, output_cost_per_token=OUT_PRICE
    )


def router(*deployments: Deployment, sleeps: Sleeps, max_retries: int = 2) -> Router:
    return Router(
        [Tier("remote", list(deployments))],
        retry=RetryPolicy(max_retries=max_retries, base_delay_s=0.01),
        sleep=sleeps,
    )


async def test_429_retry_after_is_honoured(answer_template, server, ledger):
    server.push_faults(Fault.rate_limit(retry_after=1.5))
    sleeps = Sleeps()
    result = await agenerate(
        answer_template,
        {"question": "Capital of France?"},
        router=router(deployment(server, "primary"), sleeps=sleeps),
        cache=False,
        ledger=ledger,
    )
    assert result.output.answer == "Paris"
    assert server.request_count == 2
    assert len(sleeps.delays) == 1 and sleeps.delays[0] >= 1.5
    assert [(a.reason, a.outcome) for a in result.attempts] == [(None, "transport_error"), ("retry", "ok")]
    assert "RateLimited" in result.attempts[0].error


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.server_error(500), "ServerError"),
        (Fault.drop(), "ConnectionFailed"),
        (Fault.malformed(), "MalformedResponse"),
    ],
)
async def test_a_fault_then_success_is_one_retry(answer_template, server, ledger, fault, error):
    server.push_faults(fault)
    result = await agenerate(
        answer_template,
        {"question": "q"},
        router=router(deployment(server, "primary"), sleeps=Sleeps()),
        cache=False,
        ledger=ledger,
    )
    assert result.output.answer == "Paris"
    assert server.request_count == 2
    assert result.attempts[0].outcome == "transport_error" and error in result.attempts[0].error
    totals = ledger.totals(result.run_id)
    assert (totals.attempts, totals.retries, totals.fallbacks, totals.failures) == (2, 1, 0, 0)


async def test_slow_primary_times_out_and_the_backup_answers(answer_template, server, backup, ledger):
    server.push_faults(Fault.slow(3.0))
    result = await agenerate(
        answer_template,
        {"question": "q"},
        router=router(
            deployment(server, "primary", timeout_s=0.3),
            deployment(backup, "backup"),
            sleeps=Sleeps(),
            max_retries=0,
        ),
        cache=False,
        ledger=ledger,
    )
    assert result.model == "backup" and result.output.answer == "Paris"
    assert "RequestTimeout" in result.attempts[0].error
    assert result.attempts[0].latency_s < 3.0
    assert [(a.model, a.reason) for a in result.attempts] == [("primary", None), ("backup", "fallback")]
    assert backup.request_count == 1


async def test_ledger_totals_match_a_rough_call(answer_template, server, backup, ledger):
    """429, 500 and a drop on the primary use up its retries; the backup is malformed once, then answers."""
    server.push_faults(Fault.rate_limit(retry_after=0.2), Fault.server_error(503), Fault.drop())
    backup.push_faults(Fault.malformed())
    sleeps = Sleeps()
    result = await agenerate(
        answer_template,
        {"question": "What is the capital of France?"},
        router=router(deployment(server, "primary"), deployment(backup, "backup"), sleeps=sleeps),
        cache=False,
        ledger=ledger,
    )
    assert (server.request_count, backup.request_count) == (3, 2)
    assert [(a.model, a.reason, a.outcome) for a in result.attempts] == [
        ("primary", None, "transport_error"),
        ("primary", "retry", "transport_error"),
        ("primary", "retry", "transport_error"),
        ("backup", "fallback", "transport_error"),
        ("backup", "retry", "ok"),
    ]
    assert len(sleeps.delays) == 3 and sleeps.delays[0] >= 0.2
    ok = result.attempts[-1]
    assert ok.usage.input_tokens > 0 and ok.usage.output_tokens > 0
    assert ok.cost_usd == pytest.approx(ok.usage.input_tokens * IN_PRICE + ok.usage.output_tokens * OUT_PRICE)

    totals = ledger.totals(result.run_id)
    assert totals.attempts == 5
    assert totals.retries == 3
    assert totals.fallbacks == 1
    assert totals.failed_attempts == 4 and totals.failures == 0
    assert (totals.input_tokens, totals.output_tokens) == (ok.usage.input_tokens, ok.usage.output_tokens)
    assert totals.cost_usd == pytest.approx(result.cost_usd) and result.cost_usd == pytest.approx(ok.cost_usd)


async def test_every_deployment_down_is_a_routing_error(answer_template, server):
    server.push_faults(*[Fault.server_error(502)] * 3)
    with pytest.raises(RoutingError, match="transport errors"):
        await agenerate(
            answer_template,
            {"question": "q"},
            router=router(deployment(server, "primary"), sleeps=Sleeps()),
            cache=False,
            ledger=False,
        )
    assert server.request_count == 3


async def test_a_dead_port_falls_back_to_the_live_llama_server(text_template, llama_server, ledger):
    dead = LiteLLMBackend("openai/tiny", api_base="http://127.0.0.1:9/v1", api_key="none", name="dead")
    live = LiteLLMBackend(
        f"openai/{llama_server.alias}", api_base=llama_server.base_url, api_key="none", name="live"
    )
    r = Router(
        [Tier("local-server", [Deployment(dead, timeout_s=5), Deployment(live, timeout_s=30)])],
        retry=RetryPolicy(max_retries=1, base_delay_s=0.01),
        sleep=Sleeps(),
    )
    result = await agenerate(
        text_template,
        {"topic": "the sea"},
        router=r,
        max_tokens=16,
        temperature=0.0,
        cache=False,
        ledger=ledger,
    )
    assert result.model == "live"
    assert isinstance(result.output, str)
    assert result.usage.output_tokens > 0
    assert [(a.model, a.reason, a.outcome) for a in result.attempts] == [
        ("dead", None, "transport_error"),
        ("dead", "retry", "transport_error"),
        ("live", "fallback", "ok"),
    ]
    assert "ConnectionFailed" in result.attempts[0].error
    totals = ledger.totals(result.run_id)
    assert (totals.attempts, totals.retries, totals.fallbacks) == (3, 1, 1)
