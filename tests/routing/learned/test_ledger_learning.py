"""Run a workload, learn from its ledger, run it again: the cheap tier is skipped only where it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.errors import ConfigError
from promptkit.ledger import Ledger
from promptkit.routing import RouteFeatures, Router, Rule, Tier
from promptkit.routing.learned import LEARNED_SKIP, LearnedStartTier, RoutingPolicy, train_from_ledger
from tests.routing.learned.workload import WORKLOAD, make_router, run_workload


@pytest.fixture
def ledger(tmp_path: Path):
    led = Ledger(tmp_path / "ledger.sqlite")
    yield led
    led.close()


async def test_learning_from_the_ledger_skips_the_failing_kind_and_cuts_cost(ledger, tmp_path):
    router, cheap, strong = make_router()
    first = ledger.new_run("before")
    await run_workload(router, ledger, first)
    hard = sum(1 for _, kind in WORKLOAD if kind == "hard")
    assert (cheap.calls, strong.calls) == (len(WORKLOAD), hard)
    before = ledger.totals(first)
    assert before.escalations == hard

    policy = train_from_ledger(ledger.entries(first), threshold=0.3)
    assert policy.trained["rows"] == len(WORKLOAD) and policy.trained["passed"] == len(WORKLOAD) - hard
    assert policy.predict_pass({"kind": "hard", "template": "solve"}) < 0.3
    assert policy.predict_pass({"kind": "easy", "template": "solve"}) > 0.7
    path = policy.save(tmp_path / "policy.json")

    router, cheap, strong = make_router(LearnedStartTier(RoutingPolicy.load(path)))
    second = ledger.new_run("after")
    await run_workload(router, ledger, second)
    # The cheap tier now serves only the easy kind; hard calls go straight to the strong tier.
    assert all("HARD" not in r.messages[-1].content for r in cheap.history)
    assert (cheap.calls, strong.calls) == (len(WORKLOAD) - hard, hard)
    entries = ledger.entries(second)
    skipped = [e for e in entries if e.reason == LEARNED_SKIP]
    assert len(skipped) == hard and all(e.tier == 1 and e.outcome == "ok" for e in skipped)
    assert all(e.features["kind"] == "hard" for e in skipped)
    after = ledger.totals(second)
    assert after.escalations == 0 and after.attempts == len(WORKLOAD)
    assert after.cost_usd < before.cost_usd
    # Skipping the cheap attempt saved exactly what those failed cheap attempts cost before.
    wasted = sum(e.cost_usd for e in ledger.entries(first) if e.tier == 0 and e.accepted is False)
    assert before.cost_usd - after.cost_usd == pytest.approx(wasted)


async def test_the_cascade_stays_the_safety_net(ledger):
    """A policy that wrongly trusts the cheap tier still ends with a passing answer, via escalation."""
    router, _, _ = make_router()
    run = ledger.new_run()
    await run_workload(router, ledger, run)
    policy = train_from_ledger(ledger.entries(run), threshold=0.0)  # never skips
    router, cheap, strong = make_router(LearnedStartTier(policy))
    again = ledger.new_run()
    await run_workload(router, ledger, again)
    assert cheap.calls == len(WORKLOAD) and ledger.totals(again).escalations == strong.calls


def _policy_all(passed: bool, ledger: Ledger) -> RoutingPolicy:
    from promptkit.ledger import LedgerEntry

    run = ledger.new_run()
    for i in range(4):
        ledger.record(
            LedgerEntry(
                run_id=run,
                call_id=f"c{i}",
                model="cheap",
                tier=0,
                outcome="ok" if passed else "invalid",
                accepted=passed,
                features={"template": "t", "kind": "x", "tags": [], "input_tokens": 10},
            )
        )
    return train_from_ledger(ledger.entries(run))


def test_one_outcome_gives_a_constant_policy(ledger):
    assert _policy_all(True, ledger).predict_pass({"kind": "x"}) > 0.8
    assert _policy_all(False, ledger).predict_pass({"kind": "x"}) < 0.2


def test_start_tier_decisions():
    tiers = [Tier("cheap", ["scripted"]), Tier("mid", ["scripted"]), Tier("strong", ["scripted"])]
    policy = _fixed_policy(0.1)
    start = LearnedStartTier(policy, threshold=0.2)
    assert start.start_tier(RouteFeatures(kind="a"), tiers) == 1
    assert LearnedStartTier(policy, threshold=0.05).start_tier(RouteFeatures(kind="a"), tiers) is None
    assert (
        LearnedStartTier(policy, threshold=0.2, skip_to="strong").start_tier(RouteFeatures(), tiers)
        == "strong"
    )
    # Exploring: a would-be skip still tries the cheap tier when the draw falls under `explore`.
    assert (
        LearnedStartTier(policy, threshold=0.2, explore=0.5, rand=lambda: 0.1).start_tier(
            RouteFeatures(), tiers
        )
        is None
    )
    assert (
        LearnedStartTier(policy, threshold=0.2, explore=0.5, rand=lambda: 0.9).start_tier(
            RouteFeatures(), tiers
        )
        == 1
    )
    assert start.start_tier(RouteFeatures(), tiers[:1]) is None  # one tier: nothing to skip


def test_router_uses_the_policy_after_rules():
    policy = _fixed_policy(0.1)
    router = Router(
        [Tier("cheap", ["scripted"]), Tier("mid", ["scripted"]), Tier("strong", ["scripted"])],
        rules=[Rule(kind="plan", start_tier="cheap")],
        start_policy=LearnedStartTier(policy, threshold=0.2, skip_to="strong"),
    )
    routes = router.route(RouteFeatures(kind="chat"))
    assert [(r.index, r.reason) for r in routes] == [(2, LEARNED_SKIP)]
    # A matching static rule decides first.
    assert [r.index for r in router.route(RouteFeatures(kind="plan"))] == [0, 1, 2]
    bad = Router(
        [Tier("a", ["scripted"]), Tier("b", ["scripted"])],
        start_policy=LearnedStartTier(policy, skip_to="zzz"),
    )
    with pytest.raises(ConfigError, match="zzz"):
        bad.route(RouteFeatures())


def test_embedding_policies_are_refused_by_the_router():
    import numpy as np

    from promptkit.routing.learned import LogisticModel

    model = LogisticModel(l2=1.0).fit(np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2)
    policy = RoutingPolicy([{"type": "embedding", "field": "prompt", "model": "m", "dim": 3}], model)
    with pytest.raises(ConfigError, match="needs more than the router sees"):
        LearnedStartTier(policy)
    with pytest.raises(ConfigError, match="threshold"):
        LearnedStartTier(_fixed_policy(0.5), threshold=1.5)


def _fixed_policy(p: float) -> RoutingPolicy:
    from promptkit.routing.learned._skip_policy import _constant_model

    return RoutingPolicy([{"type": "log1p", "field": "input_tokens"}], _constant_model(p, 1))
