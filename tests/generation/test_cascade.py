"""The router through generate(): cascade, static rules, budgets, transport retry/fallback, in-flight limits."""

from __future__ import annotations

import asyncio
import json

import pytest

from promptkit.backends import FunctionBackend, ScriptedBackend, ScriptedReply
from promptkit.errors import (
    AttemptsExhausted,
    BudgetExceeded,
    ConnectionFailed,
    ModelRequestError,
    RateLimited,
    RoutingError,
    ServerError,
)
from promptkit.generation import agenerate
from promptkit.routing import Budget, Deployment, RetryPolicy, Router, Rule, Tier
from promptkit.types import Usage

GOOD = {"answer": "Paris", "confidence": 0.9}
WEAK = {"answer": "Paris?", "confidence": 0.2}


def reply(payload: object, *, tokens: tuple[int, int] = (10, 5), cost: float | None = None) -> ScriptedReply:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return ScriptedReply(text, usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]), cost_usd=cost)


class Sleeps:
    """An injected sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def confident(out) -> bool | str:
    return True if out.confidence >= 0.8 else f"confidence {out.confidence} is below 0.8"


async def test_cascade_escalates_when_the_cheap_tier_fails_acceptance(answer_template, ledger):
    cheap = ScriptedBackend([reply(WEAK, cost=0.001), reply(WEAK, cost=0.001)], name="cheap")
    strong = ScriptedBackend([reply(GOOD, cost=0.02)], name="strong")
    router = Router([Tier("cheap", [cheap]), Tier("strong", [strong])], max_attempts_per_tier=2)
    result = await agenerate(
        answer_template, {"question": "q"}, router=router, accept=confident, cache=False, ledger=ledger
    )
    assert result.output.answer == "Paris" and result.model == "strong"
    assert (result.tier, result.tier_name) == (1, "strong")
    assert (cheap.calls, strong.calls) == (2, 1)
    assert [(a.tier, a.reason, a.outcome) for a in result.attempts] == [
        (0, None, "invalid"),
        (0, "reask", "invalid"),
        (1, "escalation", "ok"),
    ]
    assert result.cost_usd == pytest.approx(0.022)
    assert result.usage == Usage(input_tokens=30, output_tokens=15)
    # The strong tier starts from the original prompt, not from the cheap tier's repair conversation.
    assert len(strong.history[0].messages) == 2
    totals = ledger.totals(result.run_id)
    assert (totals.attempts, totals.escalations, totals.retries) == (3, 1, 1)
    assert totals.cost_usd == pytest.approx(0.022)


async def test_the_cheapest_passing_tier_wins(answer_template):
    cheap = ScriptedBackend([GOOD], name="cheap")
    strong = ScriptedBackend([GOOD], name="strong")
    router = Router([Tier("cheap", [cheap]), Tier("strong", [strong])])
    result = await agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=False)
    assert result.model == "cheap" and strong.calls == 0


async def test_cost_from_configured_prices_when_the_backend_reports_none(answer_template):
    backend = ScriptedBackend([reply(GOOD, tokens=(1000, 100))])
    deployment = Deployment(backend, input_cost_per_token=1e-6, output_cost_per_token=4e-6)
    result = await agenerate(
        answer_template,
        {"question": "q"},
        router=Router([Tier("t", [deployment])]),
        cache=False,
        ledger=False,
    )
    assert result.cost_usd == pytest.approx(1000 * 1e-6 + 100 * 4e-6)


async def test_every_tier_failing_raises_attempts_exhausted_with_all_attempts(answer_template):
    cheap = ScriptedBackend(default="nope", name="cheap")
    strong = ScriptedBackend(default=json.dumps(WEAK), name="strong")
    router = Router(
        [Tier("cheap", [cheap]), Tier("strong", [strong], max_attempts=3)], max_attempts_per_tier=2
    )
    with pytest.raises(AttemptsExhausted) as info:
        await agenerate(
            answer_template, {"question": "q"}, router=router, accept=confident, cache=False, ledger=False
        )
    assert [a.model for a in info.value.attempts] == ["cheap", "cheap", "strong", "strong", "strong"]
    assert "below 0.8" in str(info.value)


async def test_max_attempts_overrides_the_router_per_tier(answer_template):
    cheap = ScriptedBackend(default="nope", name="cheap")
    strong = ScriptedBackend([GOOD], name="strong")
    router = Router([Tier("cheap", [cheap]), Tier("strong", [strong])], max_attempts_per_tier=2)
    await agenerate(
        answer_template, {"question": "q"}, router=router, max_attempts=1, cache=False, ledger=False
    )
    assert cheap.calls == 1


# -- static rules -----------------------------------------------------------------------------------------


def _two_tiers(**kw):
    cheap = ScriptedBackend(default=json.dumps(GOOD), name="cheap")
    strong = ScriptedBackend(default=json.dumps(GOOD), name="strong")
    return cheap, strong, Router([Tier("cheap", [cheap]), Tier("strong", [strong])], **kw)


async def test_a_kind_rule_starts_at_a_higher_tier(answer_template, ledger):
    cheap, strong, router = _two_tiers(rules=[Rule(kind="plan", start_tier="strong")])
    planned = await agenerate(
        answer_template, {"question": "q"}, router=router, kind="plan", cache=False, ledger=ledger
    )
    other = await agenerate(
        answer_template, {"question": "q"}, router=router, kind="edit", cache=False, ledger=False
    )
    assert (planned.model, other.model) == ("strong", "cheap")
    assert (cheap.calls, strong.calls) == (1, 1)
    assert ledger.entries(planned.run_id)[0].features["kind"] == "plan"


async def test_a_tag_rule_matches_the_templates_tags(answer_template):
    cheap, strong, router = _two_tiers(rules=[Rule(tag="general", start_tier=1)])
    result = await agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=False)
    assert result.model == "strong" and cheap.calls == 0


async def test_an_input_size_rule_uses_the_rendered_token_count(answer_template):
    cheap, strong, router = _two_tiers(rules=[Rule(min_input_tokens=200, start_tier="strong")])
    short = await agenerate(answer_template, {"question": "short"}, router=router, cache=False, ledger=False)
    long = await agenerate(
        answer_template, {"question": "word " * 400}, router=router, cache=False, ledger=False
    )
    assert (short.model, long.model) == ("cheap", "strong")


async def test_a_rule_can_pin_a_model(answer_template):
    pinned = ScriptedBackend([GOOD], name="pinned")
    cheap, strong, router = _two_tiers(rules=[Rule(template="qa", model=pinned)])
    result = await agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=False)
    assert result.model == "pinned" and result.tier is None
    assert (cheap.calls, strong.calls, pinned.calls) == (0, 0, 1)


# -- budgets ---------------------------------------------------------------------------------------------


async def test_a_call_over_the_dollar_cap_is_refused_before_sending(answer_template, ledger):
    backend = ScriptedBackend(default=json.dumps(GOOD))
    # Worst case per call: ~20 input tokens x 1e-6 + 100 output tokens x 1e-4 (~ $0.01002); a real call costs
    # ~$0.0004 (a few output words), so the cap allows the first call and refuses the second.
    deployment = Deployment(backend, input_cost_per_token=1e-6, output_cost_per_token=1e-4)
    router = Router([Tier("paid", [deployment])], budget=Budget(max_usd=0.0102))
    run = ledger.new_run()
    first = await agenerate(
        answer_template,
        {"question": "q"},
        router=router,
        max_tokens=100,
        run_id=run,
        cache=False,
        ledger=ledger,
    )
    assert first.cost_usd > 0
    with pytest.raises(BudgetExceeded) as info:
        await agenerate(
            answer_template,
            {"question": "q2"},
            router=router,
            max_tokens=100,
            run_id=run,
            cache=False,
            ledger=ledger,
        )
    assert backend.calls == 1
    message = str(info.value)
    assert "$0.010200" in message and "refused before sending" in message and run in message
    assert f"${first.cost_usd:.6f}" in message
    refused = ledger.entries(run)[-1]
    assert refused.outcome == "budget_refused" and refused.input_tokens == 0
    assert router.spent(run).usd == pytest.approx(first.cost_usd)


async def test_a_token_cap_counts_the_output_worst_case(answer_template, ledger):
    backend = ScriptedBackend(default=json.dumps(GOOD))
    router = Router([Tier("t", [backend])], budget=Budget(max_tokens=500))
    with pytest.raises(BudgetExceeded, match="500 tokens"):
        await agenerate(
            answer_template, {"question": "q"}, router=router, max_tokens=1000, cache=False, ledger=ledger
        )
    assert backend.calls == 0
    ok = await agenerate(
        answer_template, {"question": "q"}, router=router, max_tokens=50, cache=False, ledger=False
    )
    assert ok.output.answer == "Paris" and backend.calls == 1


async def test_budgets_are_per_run_and_seeded_from_the_ledger(answer_template, ledger):
    backend = ScriptedBackend(default=json.dumps(GOOD))
    deployment = Deployment(backend, input_cost_per_token=1e-6, output_cost_per_token=1e-4)
    spent_run = ledger.new_run()
    await agenerate(
        answer_template,
        {"question": "q"},
        router=Router([Tier("p", [deployment])]),
        max_tokens=100,
        run_id=spent_run,
        cache=False,
        ledger=ledger,
    )
    capped = Router([Tier("p", [deployment])], budget=Budget(max_usd=0.0102))
    # A fresh router still sees what the run already spent (from the ledger) ...
    with pytest.raises(BudgetExceeded):
        await agenerate(
            answer_template,
            {"question": "q"},
            router=capped,
            max_tokens=100,
            run_id=spent_run,
            cache=False,
            ledger=ledger,
        )
    # ... while a new run starts from zero.
    fresh = await agenerate(
        answer_template,
        {"question": "q"},
        router=capped,
        max_tokens=100,
        run_id=ledger.new_run(),
        cache=False,
        ledger=ledger,
    )
    assert fresh.output.answer == "Paris"


async def test_concurrent_calls_cannot_overshoot_the_cap_together(answer_template):
    backend = ScriptedBackend(default=ScriptedReply(json.dumps(GOOD), delay_s=0.02))
    deployment = Deployment(backend, input_cost_per_token=1e-4, output_cost_per_token=1e-4, concurrency=8)
    router = Router([Tier("p", [deployment])], budget=Budget(max_usd=0.05))
    results = await asyncio.gather(
        *[
            agenerate(
                answer_template,
                {"question": f"q{i}"},
                router=router,
                max_tokens=100,
                cache=False,
                ledger=False,
            )
            for i in range(8)
        ],
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert backend.calls == 8 - len(refused)
    assert 1 <= backend.calls <= 5  # each worst case is ~$0.0115: at most 4 fit under $0.05
    assert router.spent(router.run_id()).usd <= 0.05


# -- transport faults (scripted) ---------------------------------------------------------------------------


async def test_rate_limit_is_retried_after_the_servers_delay(answer_template, ledger):
    backend = ScriptedBackend([RateLimited("slow down", retry_after=3.0), GOOD])
    sleeps = Sleeps()
    router = Router([Tier("t", [backend])], retry=RetryPolicy(base_delay_s=0.1, max_retries=2), sleep=sleeps)
    result = await agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=ledger)
    assert sleeps.delays and sleeps.delays[0] >= 3.0
    assert [(a.reason, a.outcome) for a in result.attempts] == [(None, "transport_error"), ("retry", "ok")]
    assert "RateLimited" in result.attempts[0].error
    assert ledger.totals(result.run_id).retries == 1


async def test_backoff_grows_then_falls_back_to_the_next_deployment(answer_template, ledger):
    primary = ScriptedBackend(default=ServerError("500"), name="primary")
    backup = ScriptedBackend([GOOD], name="backup")
    sleeps = Sleeps()
    router = Router(
        [Tier("t", [primary, backup])],
        retry=RetryPolicy(max_retries=2, base_delay_s=1.0, max_delay_s=10.0, jitter=0.0),
        sleep=sleeps,
    )
    result = await agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=ledger)
    assert result.model == "backup"
    assert primary.calls == 3 and sleeps.delays == [1.0, 2.0]
    assert [(a.model, a.reason) for a in result.attempts] == [
        ("primary", None),
        ("primary", "retry"),
        ("primary", "retry"),
        ("backup", "fallback"),
    ]
    totals = ledger.totals(result.run_id)
    assert (totals.attempts, totals.retries, totals.fallbacks) == (4, 2, 1)


async def test_a_dead_tier_falls_back_to_the_next_tier(answer_template):
    dead = ScriptedBackend(default=ConnectionFailed("refused"), name="dead")
    live = ScriptedBackend([GOOD], name="live")
    router = Router([Tier("a", [dead]), Tier("b", [live])], retry=RetryPolicy(max_retries=0), sleep=Sleeps())
    result = await agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=False)
    assert result.tier_name == "b"
    assert [a.reason for a in result.attempts] == [None, "fallback"]


async def test_a_dead_deployment_is_skipped_on_later_reasks(answer_template):
    dead = ScriptedBackend(default=ConnectionFailed("refused"), name="dead")
    live = ScriptedBackend(["not json", GOOD], name="live")
    router = Router([Tier("t", [dead, live])], retry=RetryPolicy(max_retries=1), sleep=Sleeps())
    result = await agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=False)
    assert dead.calls == 2 and live.calls == 2
    assert [a.reason for a in result.attempts] == [None, "retry", "fallback", "reask"]


async def test_model_request_errors_are_not_retried(answer_template, ledger):
    backend = ScriptedBackend([ModelRequestError("400 bad request"), GOOD], name="m")
    backup = ScriptedBackend([GOOD], name="backup")
    router = Router([Tier("t", [backend, backup])], sleep=Sleeps())
    with pytest.raises(ModelRequestError):
        await agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=ledger)
    assert backend.calls == 1 and backup.calls == 0
    assert ledger.entries(ledger.latest_run())[-1].outcome == "error"


async def test_only_transport_errors_everywhere_is_a_routing_error(answer_template):
    dead = ScriptedBackend(default=ConnectionFailed("refused"), name="dead")
    router = Router([Tier("t", [dead])], retry=RetryPolicy(max_retries=1), sleep=Sleeps())
    with pytest.raises(RoutingError, match="transport errors") as info:
        await agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=False)
    assert isinstance(info.value.__cause__, ConnectionFailed)


async def test_a_hung_backend_times_out_and_falls_back(answer_template):
    hung = ScriptedBackend(default=ScriptedReply(json.dumps(GOOD), delay_s=5.0), name="hung")
    live = ScriptedBackend([GOOD], name="live")
    router = Router(
        [Tier("t", [Deployment(hung, timeout_s=0.05), live])],
        retry=RetryPolicy(max_retries=0),
        sleep=Sleeps(),
        timeout_grace_s=0.0,
    )
    result = await asyncio.wait_for(
        agenerate(answer_template, {"question": "q"}, router=router, cache=False, ledger=False), 3.0
    )
    assert result.model == "live"
    assert "RequestTimeout" in result.attempts[0].error


async def test_unexpected_backend_exceptions_become_backend_errors(answer_template):
    from promptkit.errors import BackendError

    class Broken:
        name = "broken"
        from promptkit.backends import Capabilities

        capabilities = Capabilities()

        async def generate(self, request):
            raise KeyError("oops")

    with pytest.raises(BackendError, match="KeyError"):
        await agenerate(answer_template, {"question": "q"}, model=Broken(), cache=False, ledger=False)


# -- in-flight limits -----------------------------------------------------------------------------------


def _tracking_backend(delay: float = 0.01):
    state = {"now": 0, "peak": 0}

    async def answer(request):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(delay)
        state["now"] -= 1
        return GOOD

    return FunctionBackend(answer, name="tracked"), state


async def test_a_local_backend_never_sees_two_calls_in_flight(answer_template):
    backend, state = _tracking_backend()
    router = Router([Tier("local", [Deployment(backend, local=True)])])
    await asyncio.gather(
        *[
            agenerate(answer_template, {"question": f"q{i}"}, router=router, cache=False, ledger=False)
            for i in range(6)
        ]
    )
    assert backend.calls == 6 and state["peak"] == 1


async def test_a_remote_backend_runs_up_to_its_concurrency(answer_template):
    backend, state = _tracking_backend()
    router = Router([Tier("remote", [Deployment(backend, concurrency=3)])])
    await asyncio.gather(
        *[
            agenerate(answer_template, {"question": f"q{i}"}, router=router, cache=False, ledger=False)
            for i in range(9)
        ]
    )
    assert state["peak"] == 3
