"""Router building blocks on their own: backoff, rules, budget accounting, in-flight limits, routes."""

from __future__ import annotations

import asyncio
import threading

import pytest

import promptkit.routing as routing
from promptkit.backends import ScriptedBackend
from promptkit.errors import BudgetExceeded, ConfigError, RateLimited, ServerError
from promptkit.routing import (
    Budget,
    BudgetTracker,
    Deployment,
    RetryPolicy,
    RouteFeatures,
    Router,
    Rule,
    Tier,
)
from promptkit.routing._limits import Limiter


def test_public_names():
    assert set(routing.__all__) >= {
        "Router",
        "Tier",
        "Deployment",
        "Rule",
        "Budget",
        "RetryPolicy",
        "Attempt",
    }
    for name in routing.__all__:
        assert getattr(routing, name) is not None


# -- backoff --------------------------------------------------------------------------------------------


def test_backoff_doubles_and_is_capped():
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=3.0, jitter=0.0)
    err = ServerError("500")
    assert [policy.delay(n, err) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_only_shortens_within_its_fraction():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0, jitter=0.25)
    err = ServerError("500")
    assert policy.delay(0, err, rand=lambda: 0.0) == 1.0
    assert policy.delay(0, err, rand=lambda: 1.0) == pytest.approx(0.75)
    assert policy.delay(2, err, rand=lambda: 0.5) == pytest.approx(4.0 * (1 - 0.125))


def test_retry_after_is_a_floor_and_is_capped():
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0, jitter=0.5, max_retry_after_s=30.0)
    assert policy.delay(0, RateLimited("429", retry_after=7.5)) >= 7.5
    assert policy.delay(0, RateLimited("429", retry_after=3600)) == 30.0
    assert policy.delay(0, RateLimited("429"), rand=lambda: 0.0) == 0.1


@pytest.mark.parametrize("kwargs", [{"max_retries": -1}, {"jitter": 1.5}, {"base_delay_s": -1}])
def test_bad_retry_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError, match="router.retry"):
        RetryPolicy(**kwargs)


# -- rules ----------------------------------------------------------------------------------------------


def test_rules_need_a_condition_and_exactly_one_action():
    with pytest.raises(ConfigError, match="needs a condition"):
        Rule(start_tier=1)
    with pytest.raises(ConfigError, match="exactly one action"):
        Rule(kind="plan")
    with pytest.raises(ConfigError, match="exactly one action"):
        Rule(kind="plan", start_tier=1, model="x:y")


def test_rule_conditions_all_have_to_hold():
    rule = Rule(tag="debugging", min_input_tokens=100, max_input_tokens=1000, start_tier=1)
    assert rule.matches(RouteFeatures(tags=("role", "debugging"), input_tokens=100))
    assert rule.matches(RouteFeatures(tags=("debugging",), input_tokens=1000))
    assert not rule.matches(RouteFeatures(tags=("debugging",), input_tokens=99))
    assert not rule.matches(RouteFeatures(tags=("debugging",), input_tokens=1001))
    assert not rule.matches(RouteFeatures(tags=("review",), input_tokens=500))
    assert Rule(kind="plan", start_tier=0).matches(RouteFeatures(kind="plan"))
    assert not Rule(kind="plan", start_tier=0).matches(RouteFeatures(kind=None))


def test_routes_follow_the_first_matching_rule():
    a, b, c = (ScriptedBackend(name=n) for n in "abc")
    router = Router(
        [Tier("a", [a]), Tier("b", [b]), Tier("c", [c])],
        rules=[
            Rule(kind="hard", start_tier="c"),
            Rule(kind="hard", start_tier="a"),
            Rule(tag="x", start_tier=1),
        ],
    )
    assert [r.index for r in router.route(RouteFeatures(kind="hard"))] == [2]
    assert [r.tier.name for r in router.route(RouteFeatures(tags=("x",)))] == ["b", "c"]
    assert [r.index for r in router.route(RouteFeatures())] == [0, 1, 2]


def test_unknown_start_tiers_fail_when_the_router_is_built():
    with pytest.raises(ConfigError, match="'gold' is not a tier"):
        Router([Tier("a", [ScriptedBackend()])], rules=[Rule(kind="k", start_tier="gold")])
    with pytest.raises(ConfigError, match="out of range"):
        Router([Tier("a", [ScriptedBackend()])], rules=[Rule(kind="k", start_tier=3)])


def test_router_shape_is_checked():
    with pytest.raises(ConfigError, match="at least one tier"):
        Router([])
    with pytest.raises(ConfigError, match="unique"):
        Router([Tier("a", [ScriptedBackend()]), Tier("a", [ScriptedBackend()])])
    with pytest.raises(ConfigError, match="max_attempts_per_tier"):
        Router([Tier("a", [ScriptedBackend()])], max_attempts_per_tier=0)
    with pytest.raises(ConfigError, match="no deployments"):
        Tier("a", [])


def test_tiers_accept_bare_backends_and_strings():
    backend = ScriptedBackend(name="s")
    router = Router([backend, Tier("named", [Deployment(backend, concurrency=2)])])
    assert [t.name for t in router.tiers] == ["s", "named"]
    assert router.tiers[1].primary.limit == 2


# -- budget ---------------------------------------------------------------------------------------------


def test_reservations_count_until_settled():
    tracker = BudgetTracker(Budget(max_usd=1.0, max_tokens=1000))
    first = tracker.reserve("run", 0.6, 100, what="call")
    with pytest.raises(BudgetExceeded, match=r"\$1\.000000"):
        tracker.reserve("run", 0.6, 100, what="call")
    tracker.settle(first, 0.1, 50)
    second = tracker.reserve("run", 0.6, 100, what="call")
    spent = tracker.spent("run")
    assert (spent.usd, spent.tokens, spent.reserved_usd) == (0.1, 50, 0.6)
    tracker.settle(second, 0.2, 10)
    assert tracker.spent("run").usd == pytest.approx(0.3)
    assert tracker.spent("other").usd == 0.0


def test_token_cap_message_names_the_numbers():
    tracker = BudgetTracker(Budget(max_tokens=100))
    tracker.add("r", 0.0, 60)
    with pytest.raises(BudgetExceeded) as info:
        tracker.reserve("r", 0.0, 50, what="call to 'x'")
    assert "50 tokens" in str(info.value) and "60" in str(info.value) and "100 tokens" in str(info.value)
    assert str(info.value).startswith("run r:")


def test_the_tracker_is_thread_safe():
    tracker = BudgetTracker(Budget(max_tokens=10_000))

    def work():
        for _ in range(500):
            tracker.settle(tracker.reserve("r", 0.0, 1, what="c"), 0.0, 1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = tracker.spent("r")
    assert (spent.tokens, spent.reserved_tokens) == (2000, 0)


def test_bad_budgets_are_config_errors():
    with pytest.raises(ConfigError, match="max_usd"):
        Budget(max_usd=-1)
    assert not Budget().active and Budget(max_tokens=5).active


# -- limits ---------------------------------------------------------------------------------------------


def test_semaphores_are_per_backend_and_per_loop():
    limiter = Limiter()
    a, b = object(), object()

    async def grab():
        return limiter.semaphore(a, 1), limiter.semaphore(a, 1), limiter.semaphore(b, 2)

    s1, s2, s3 = asyncio.run(grab())
    assert s1 is s2 and s1 is not s3
    t1, _, _ = asyncio.run(grab())
    assert t1 is not s1  # a new loop gets its own semaphore (asyncio primitives are bound to a loop)


def test_local_deployments_default_to_one_in_flight():
    backend = ScriptedBackend()
    assert Deployment(backend, local=True).limit == 1
    assert Deployment(backend).limit == 4  # the alias default for a remote backend
    assert Deployment(backend, local=True, concurrency=3).limit == 3


def test_default_run_is_stable_per_router():
    router = Router([Tier("a", [ScriptedBackend()])])
    assert router.run_id() == router.run_id()
    assert Router([Tier("a", [ScriptedBackend()])]).run_id() != router.run_id()
