"""The N-tier start policy: learned from the ledger's outcomes and prices, it starts each call where
P(accepted) − λ·cost peaks; too few calls per tier are reported, and the router config reads it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from promptkit.config import load_config
from promptkit.errors import ConfigError, RoutingError
from promptkit.ledger import Ledger
from promptkit.routing import RouteFeatures, Router
from promptkit.routing.learned import (
    MIN_CALLS_PER_TIER,
    LearnedStartTier,
    TierPolicy,
    load_policy,
    train_tier_policy,
)
from tests.routing.learned.workload import CONFIG, WORKLOAD, make_router, run_workload


@pytest.fixture
def ledger(tmp_path: Path):
    led = Ledger(tmp_path / "ledger.sqlite")
    yield led
    led.close()


def _trained(ledger: Ledger, **kwargs):
    router, _, _ = make_router()
    run = ledger.new_run("first")
    asyncio.run(run_workload(router, ledger, run))
    return train_tier_policy(ledger.entries(run), **kwargs)


def test_learns_pass_rates_and_prices_per_tier(ledger: Ledger) -> None:
    policy, warnings = _trained(ledger, min_calls=5)
    assert warnings == []
    cheap, strong = policy.tiers
    assert (cheap.tier, cheap.calls, cheap.passed) == (0, 12, 6)
    assert (strong.tier, strong.calls, strong.passed) == (1, 6, 6)  # reached only by the hard calls
    assert strong.cost_usd > 50 * cheap.cost_usd > 0
    # Default λ: an accepted answer is worth twice the dearest tier's price.
    assert policy.cost_weight == pytest.approx(1 / (2 * strong.cost_usd))
    hard, easy = RouteFeatures(template="solve", kind="hard"), RouteFeatures(template="solve", kind="easy")
    assert policy.pass_probabilities(hard)[0] < 0.3 < 0.7 < policy.pass_probabilities(easy)[0]
    assert policy.choose(hard) == 1 and policy.choose(easy) == 0
    # λ = 0: quality only, so every call starts where it is most likely accepted; a huge λ: always the cheapest.
    assert policy.choose(easy, cost_weight=0.0) == 1
    assert policy.choose(hard, cost_weight=1e9) == 0
    assert policy.choose(hard, n_tiers=1) == 0


async def test_the_router_starts_hard_calls_on_the_strong_tier_and_saves(ledger: Ledger) -> None:
    router, cheap, strong = make_router()
    first = ledger.new_run("first")
    await run_workload(router, ledger, first)
    cost_before = ledger.totals(first).cost_usd
    policy, _ = train_tier_policy(ledger.entries(first), min_calls=5)
    router, cheap, strong = make_router(LearnedStartTier(policy))
    second = ledger.new_run("second")
    await run_workload(router, ledger, second)
    assert cheap.calls == 6 and strong.calls == 6  # hard calls no longer try (and fail on) the cheap tier
    assert ledger.totals(second).cost_usd < cost_before
    skipped = [e for e in ledger.entries(second) if e.reason == "learned_skip"]
    assert len(skipped) == 6 and all(e.tier == 1 for e in skipped)


def test_too_few_calls_per_tier_warns_and_falls_back_to_the_rate(ledger: Ledger) -> None:
    assert len(WORKLOAD) < MIN_CALLS_PER_TIER
    policy, warnings = _trained(ledger)
    assert len(warnings) == 2
    assert "tier 0: only 12 judged call(s), fewer than the 20" in warnings[0]
    assert "tier 1: only 6" in warnings[1]
    assert policy.trained["warnings"] == warnings
    p = policy.pass_probabilities(RouteFeatures(kind="hard"))
    assert p == policy.pass_probabilities(RouteFeatures(kind="easy"))
    assert p[0] == pytest.approx(6.5 / 13)


def test_file_round_trip_and_errors(ledger: Ledger, tmp_path: Path) -> None:
    policy, _ = _trained(ledger, min_calls=5)
    path = policy.save(tmp_path / "tiers.json")
    loaded = load_policy(path)
    assert isinstance(loaded, TierPolicy) and loaded.cost_weight == policy.cost_weight
    features = RouteFeatures(template="solve", kind="hard", input_tokens=30)
    assert loaded.pass_probabilities(features) == pytest.approx(policy.pass_probabilities(features))
    doc = json.loads(path.read_text())
    doc["tiers"][1]["model"]["coef"] = [0.0]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(RoutingError) as info:
        load_policy(tmp_path / "bad.json")
    assert "bad.json" in str(info.value)
    doc["schema_version"] = 99
    (tmp_path / "future.json").write_text(json.dumps(doc))
    with pytest.raises(RoutingError, match="schema_version 99"):
        load_policy(tmp_path / "future.json")
    with pytest.raises(RoutingError, match="nothing to learn"):
        train_tier_policy([])
    with pytest.raises(ConfigError, match="threshold and skip_to apply to a skip policy"):
        LearnedStartTier(policy, threshold=0.2)
    with pytest.raises(ConfigError, match="cost_weight must be >= 0"):
        LearnedStartTier(policy, cost_weight=-1.0)


def test_local_models_cost_compute_seconds(tmp_path: Path) -> None:
    # Two local tiers, no dollars: the small one takes 10 s and fails feature calls, the large one 30 s.
    from promptkit.ledger import LedgerEntry

    entries = []
    for i in range(12):
        kind = "feature" if i % 2 else "easy"
        small_ok = kind == "easy"
        entries.append(
            LedgerEntry(
                run_id="r",
                call_id=f"c{i}",
                model="small",
                tier=0,
                outcome="ok" if small_ok else "invalid",
                accepted=small_ok,
                compute_s=10.0,
                latency_s=11.0,
                features={"kind": kind},
            )
        )
        if not small_ok:
            entries.append(
                LedgerEntry(
                    run_id="r",
                    call_id=f"e{i}",
                    model="large",
                    tier=1,
                    outcome="ok",
                    accepted=True,
                    reason="escalation",
                    latency_s=30.0,
                    features={"kind": kind},  # no compute time: latency
                )
            )
    policy, warnings = train_tier_policy(entries, min_calls=5)
    assert policy.cost_unit == "seconds" and not any("no cost" in w for w in warnings)
    assert [t.seconds for t in policy.tiers] == [10.0, 30.0]
    assert policy.cost_weight == pytest.approx(1 / 60)  # an accepted answer is worth twice the 30 s
    feature, easy = RouteFeatures(kind="feature"), RouteFeatures(kind="easy")
    assert policy.choose(feature) == 1 and policy.choose(easy) == 0
    loaded = load_policy(policy.save(tmp_path / "local.json"))
    assert isinstance(loaded, TierPolicy) and loaded.cost_unit == "seconds"
    assert loaded.choose(feature) == 1 and loaded.choose(easy) == 0
    # A policy written before costs could be seconds has neither field: dollars, as it was trained.
    doc = json.loads((tmp_path / "local.json").read_text())
    del doc["cost_unit"]
    for tier in doc["tiers"]:
        del tier["seconds"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    old = load_policy(tmp_path / "old.json")
    assert isinstance(old, TierPolicy) and old.cost_unit == "usd" and old.tiers[1].seconds == 0.0


def test_router_config_reads_a_tier_policy(ledger: Ledger, tmp_path: Path) -> None:
    policy, _ = _trained(ledger, min_calls=5)
    policy.save(tmp_path / "tiers.json")

    def router(learned: str) -> Router:
        (tmp_path / "promptkit.toml").write_text(CONFIG.format(learned=learned), encoding="utf-8")
        return Router.from_config(load_config(path=tmp_path / "promptkit.toml"))

    r = router('policy = "tiers.json"\nexplore = 0.1')
    assert isinstance(r.start_policy, LearnedStartTier) and r.start_policy.tiered
    hard = RouteFeatures(template="solve", kind="hard")
    r.start_policy.rand = lambda: 0.5  # above explore: no exploration
    assert [route.tier for route in r.route(hard)] == [r.tiers[1]]
    assert r.route(hard)[0].reason == "learned_skip"
    r = router('policy = "tiers.json"\ncost_weight = 1e12')
    assert [route.tier.name for route in r.route(hard)] == ["cheap", "strong"]
    with pytest.raises(ConfigError, match=r"\[router.learned\]"):
        router('policy = "tiers.json"\nthreshold = 0.3')


def test_loading_the_router_config_imports_no_evaluation_code(tmp_path: Path, ledger: Ledger) -> None:
    policy, _ = _trained(ledger, min_calls=5)
    policy.save(tmp_path / "tiers.json")
    (tmp_path / "promptkit.toml").write_text(CONFIG.format(learned='policy = "tiers.json"'), encoding="utf-8")
    code = (
        "import sys\n"
        "from promptkit.config import load_config\n"
        "from promptkit.routing import Router\n"
        f"router = Router.from_config(load_config(path={str(tmp_path / 'promptkit.toml')!r}))\n"
        "assert router.start_policy is not None\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('promptkit.evals'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
