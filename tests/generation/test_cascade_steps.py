"""The cascade module itself (run_cascade and its hooks), driven through a real router with scripted backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from promptkit.backends import GenerateRequest, ScriptedBackend, register_backend
from promptkit.config import load_config
from promptkit.errors import (
    ConfigError,
    ContextBudgetError,
    ModelRequestError,
    OutputValidationError,
    ServerError,
    TransportError,
)
from promptkit.generation import (
    Failed,
    Passed,
    Served,
    Skipped,
    TierEnded,
    Try,
    agenerate,
    route_features,
    run_cascade,
)
from promptkit.ledger import Ledger
from promptkit.routing import Answer, CallContext, RetryPolicy, Route, Router, Tier
from promptkit.types import Message


class Steps:
    """A small use of the cascade: one router call per attempt, the earlier failures as turns; the check
    accepts only the answer "good"."""

    ends: tuple[type[Exception], ...] = (TransportError,)
    location = "test"

    def __init__(self, router: Router, *, attempts: dict[str, int] | None = None, enter: Any = None) -> None:
        self.router = router
        self.ctx = CallContext(run_id="run")
        self.per_tier = attempts or {}
        self.on_enter = enter or {}
        self.entered: list[tuple[str, str | None]] = []
        self.tries: list[Try] = []
        self.ended_tiers: list[TierEnded] = []

    def attempts(self, route: Route) -> int:
        return self.per_tier.get(route.tier.name) or self.router.attempts_for(route.tier)

    async def enter(self, route: Route, reason: Any) -> Any:
        self.entered.append((route.tier.name, reason))
        return self.on_enter.get(route.tier.name)

    async def call(self, attempt: Try) -> Answer:
        self.tries.append(attempt)
        turns = [Message(role="user", content=f"fix: {f.error}") for f in attempt.feedback]
        request = GenerateRequest(messages=[Message(role="user", content="q"), *turns])
        return await self.router.call(request, attempt.route, self.ctx, attempt.reason)

    async def check(self, attempt: Try, answer: Answer) -> str:
        if answer.text != "good":
            error = f"{answer.text!r} is not good"
            answer.record(self.ctx, outcome="invalid", error=error, accepted=False)
            raise OutputValidationError(error, raw_output=answer.text)
        answer.record(self.ctx, outcome="ok", accepted=True)
        return answer.text.upper()

    def ended(self, end: TierEnded) -> None:
        self.ended_tiers.append(end)

    def records(self) -> list[tuple[str, str | None, str]]:
        return [(a.model, a.reason, a.outcome) for a in self.ctx.attempts]


async def nap(seconds: float) -> None:
    pass


def two_tiers(
    cheap: list[Any], strong: list[Any], **kw: Any
) -> tuple[Router, ScriptedBackend, ScriptedBackend]:
    cheap_backend = ScriptedBackend(cheap, name="cheap")
    strong_backend = ScriptedBackend(strong, name="strong")
    kw.setdefault("sleep", nap)
    router = Router([Tier("cheap", [cheap_backend]), Tier("strong", [strong_backend])], **kw)
    return router, cheap_backend, strong_backend


async def test_a_failed_check_is_repaired_then_escalates_with_the_reasons_recorded():
    router, cheap, strong = two_tiers(["meh", "still meh"], ["good"], max_attempts_per_tier=2)
    steps = Steps(router)
    outcome = await run_cascade(steps, router.route(route_features(None)))
    assert isinstance(outcome, Passed)
    assert (outcome.value, outcome.route.tier.name, outcome.attempts) == ("GOOD", "strong", 1)
    assert outcome.answer is not None and outcome.answer.deployment.name == "strong"
    assert steps.records() == [
        ("cheap", None, "invalid"),
        ("cheap", "reask", "invalid"),
        ("strong", "escalation", "ok"),
    ]
    # The repair saw the first answer's error; the next tier started afresh.
    assert [(t.route.tier.name, t.number, t.reason, len(t.feedback)) for t in steps.tries] == [
        ("cheap", 1, None, 0),
        ("cheap", 2, "reask", 1),
        ("strong", 1, "escalation", 0),
    ]
    assert "'meh' is not good" in cheap.history[1].messages[-1].content
    assert len(strong.history[0].messages) == 1
    assert steps.entered == [("cheap", None), ("strong", "escalation")]
    (end,) = steps.ended_tiers
    assert end.next_reason == "escalation" and end.errors == ["'meh' is not good", "'still meh' is not good"]


async def test_per_tier_attempts_one_attempt_on_the_cheap_tier_then_escalate():
    router, cheap, strong = two_tiers(["meh", "good"], ["good"], max_attempts_per_tier=3)
    steps = Steps(router, attempts={"cheap": 1})
    outcome = await run_cascade(steps, router.route(route_features(None)))
    assert isinstance(outcome, Passed) and outcome.route.tier.name == "strong"
    # The cheap tier's second scripted answer would have passed: it was never asked.
    assert (cheap.calls, strong.calls) == (1, 1)
    assert steps.records() == [("cheap", None, "invalid"), ("strong", "escalation", "ok")]


async def test_a_tiers_own_max_attempts_overrides_the_router_default():
    cheap = ScriptedBackend(["meh", "meh", "good"], name="cheap")
    router = Router([Tier("cheap", [cheap], max_attempts=3)], max_attempts_per_tier=1)
    steps = Steps(router)
    outcome = await run_cascade(steps, router.route(route_features(None)))
    assert isinstance(outcome, Passed) and outcome.attempts == 3
    assert [r[1] for r in steps.records()] == [None, "reask", "reask"]


async def test_transport_faults_end_a_tier_with_reason_fallback():
    retry = RetryPolicy(max_retries=1)
    router, cheap, strong = two_tiers([ServerError("down"), ServerError("down")], ["good"], retry=retry)
    steps = Steps(router)
    outcome = await run_cascade(steps, router.route(route_features(None)))
    assert isinstance(outcome, Passed) and outcome.route.tier.name == "strong"
    # The router's own retry is its reason; the cascade hands "fallback" to the next tier.
    assert steps.records() == [
        ("cheap", None, "transport_error"),
        ("cheap", "retry", "transport_error"),
        ("strong", "fallback", "ok"),
    ]
    (end,) = steps.ended_tiers
    assert isinstance(end.error, ServerError) and end.next_reason == "fallback"


async def test_enter_can_skip_a_tier_or_serve_without_an_attempt():
    router, cheap, strong = two_tiers(["good"], ["good"])
    too_long = Skipped(ContextBudgetError("the prompt does not fit"))
    steps = Steps(router, enter={"cheap": too_long})
    outcome = await run_cascade(steps, router.route(route_features(None)))
    assert isinstance(outcome, Passed) and outcome.route.tier.name == "strong" and cheap.calls == 0
    assert steps.entered == [("cheap", None), ("strong", "escalation")]
    assert steps.records() == [("strong", "escalation", "ok")]

    router, cheap, strong = two_tiers([], [])
    steps = Steps(router, enter={"cheap": Served("CACHED")})
    outcome = await run_cascade(steps, router.route(route_features(None)))
    assert isinstance(outcome, Passed)
    assert (outcome.value, outcome.answer, outcome.attempts) == ("CACHED", None, 0)
    assert cheap.calls == strong.calls == 0


async def test_every_tier_failing_returns_what_ended_each():
    router, cheap, strong = two_tiers(["meh"], ["nope"], max_attempts_per_tier=1)
    steps = Steps(router)
    outcome = await run_cascade(steps, router.route(route_features(None)))
    assert isinstance(outcome, Failed)
    assert [e.route.tier.name for e in outcome.ended] == ["cheap", "strong"]
    assert outcome.last is not None and outcome.last.errors == ["'nope' is not good"]
    assert steps.ended_tiers == list(outcome.ended)
    assert await run_cascade(steps, []) == Failed(())


async def test_an_error_outside_ends_stops_the_cascade_at_once():
    router, cheap, strong = two_tiers([ModelRequestError("bad request")], ["good"])
    steps = Steps(router)
    with pytest.raises(ModelRequestError):
        await run_cascade(steps, router.route(route_features(None)))
    assert strong.calls == 0 and steps.records() == [("cheap", None, "error")]


def test_route_features_read_template_tags_in_either_shape():
    class Tags:
        technique = ("role",)
        task = ("code",)

    class Template:
        name = "t"
        tags = Tags()

    features = route_features(
        Template(), kind="plan", input_tokens=12, text="hi", extra_tags=["difficulty:hard"]
    )
    assert (features.template, features.tags, features.kind, features.input_tokens, features.text) == (
        "t",
        ("role", "code", "difficulty:hard"),
        "plan",
        12,
        "hi",
    )
    Template.tags = {"technique": ["cot"], "task": ["qa"]}  # type: ignore[assignment]
    assert route_features(Template()).tags == ("cot", "qa")
    assert route_features(None) == route_features(object())


# --- per-tier attempts from promptkit.toml, through generate() ----------------------------------------------


ROUTER_TOML = """
[models.cheap]
model = "cascadetest:cheap"
[models.strong]
model = "cascadetest:strong"

[router]
max_attempts_per_tier = 3
[[router.tiers]]
model = "cheap"
attempts = 1
[[router.tiers]]
model = "strong"
"""


@pytest.fixture
def scripted_scheme() -> Any:
    # Registering a scheme drops its cached backends: each test resolves to its own scripted ones.
    backends: dict[str, ScriptedBackend] = {}
    register_backend("cascadetest", lambda target, **options: backends[target])
    return backends


async def test_generate_honours_attempts_on_a_router_tiers_entry(
    tmp_path: Path, answer_template: Any, scripted_scheme: dict[str, ScriptedBackend]
):
    weak = '{"answer": "Paris?", "confidence": 0.2}'
    good = '{"answer": "Paris", "confidence": 0.9}'
    scripted_scheme["cheap"] = ScriptedBackend([weak, good], name="cheap")
    scripted_scheme["strong"] = ScriptedBackend([weak, good], name="strong")
    (tmp_path / "promptkit.toml").write_text(ROUTER_TOML, encoding="utf-8")
    router = Router.from_config(load_config(path=tmp_path / "promptkit.toml"))
    assert [t.max_attempts for t in router.tiers] == [1, None]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        result = await agenerate(
            answer_template,
            {"question": "q"},
            router=router,
            accept=lambda out: out.confidence >= 0.8,
            cache=False,
            ledger=ledger,
        )
        rows = ledger.entries(result.run_id)
    finally:
        ledger.close()
    # One attempt on the cheap tier (its good second answer is never asked for), the router-wide 3 on strong.
    assert scripted_scheme["cheap"].calls == 1 and scripted_scheme["strong"].calls == 2
    expected = [(0, None, "invalid"), (1, "escalation", "invalid"), (1, "reask", "ok")]
    assert [(a.tier, a.reason, a.outcome) for a in result.attempts] == expected
    assert [(r.tier, r.reason, r.outcome) for r in rows] == expected


def test_a_bad_tier_attempts_value_is_an_error_naming_the_field(tmp_path: Path):
    text = ROUTER_TOML.replace("attempts = 1", "attempts = 0")
    (tmp_path / "promptkit.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Router.from_config(load_config(path=tmp_path / "promptkit.toml"))
    assert "[[router.tiers]][0].attempts" in str(info.value) and ">= 1" in str(info.value)
