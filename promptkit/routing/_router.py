"""The router: which tiers a call may use, and one attempt on a tier with budgets, limits, retries and fallbacks.

The quality side of the cascade (check, repair, escalate) is ``promptkit.generation``'s cascade; the router
owns everything about getting *an* answer out of a tier.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import promptkit.tracing as tracing
from promptkit.backends import Backend, GenerateRequest, GenerateResponse, prefill_as_instruction
from promptkit.config import Config
from promptkit.errors import (
    BackendError,
    BudgetExceeded,
    ConfigError,
    PromptkitError,
    RequestTimeout,
    TransportError,
)
from promptkit.ledger import scrub_secrets
from promptkit.prompts import count_tokens
from promptkit.routing._attempts import Attempt, CallContext, Reason
from promptkit.routing._cost_budget import Budget, BudgetTracker, Spend
from promptkit.routing._limits import LIMITER
from promptkit.routing._rules import RetryPolicy, RouteFeatures, Rule, StartTierPolicy
from promptkit.routing._tiers import Deployment, Tier
from promptkit.routing._tracing import answered, open_attempt, trace_route
from promptkit.types import trusted_model

if TYPE_CHECKING:
    from promptkit.ledger import Ledger

__all__ = ["Router", "Route", "Answer", "attempt_cost", "new_run_id"]

Sleep = Callable[[float], Awaitable[Any]]


def new_run_id() -> str:
    """A sortable unique run id, used when no ledger hands one out."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def attempt_cost(response: GenerateResponse, deployment: Deployment) -> float:
    """The backend's own price when it knows one, else the configured price per token (unknown = free)."""
    if response.cost_usd is not None:
        return float(response.cost_usd)
    inp, out = deployment.prices
    return (inp or 0.0) * response.usage.input_tokens + (out or 0.0) * response.usage.output_tokens


@dataclass(frozen=True)
class Route:
    """One rung a call may use: its index in the router's tiers (None for a model pinned by a rule).

    ``reason`` is recorded on the call's first attempt when routing itself explains it (``"learned_skip"``).
    """

    index: int | None
    tier: Tier
    reason: Reason | None = None


@dataclass
class Answer:
    """What one successful transport attempt returned, before generate() decides whether it is valid.

    ``reason`` is why this attempt happened, recorded with its verdict: the caller's reason, or the router's
    own (``"retry"``, ``"fallback"``) when transport faults came first.
    """

    response: GenerateResponse
    deployment: Deployment
    route: Route
    cost_usd: float
    latency_s: float
    # The attempt's trace span while generate() judges the answer: ended by record() (None: tracing off).
    span: Any = None
    reason: Reason | None = None

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def usage(self) -> Any:
        return self.response.usage

    def record(
        self, ctx: CallContext, *, outcome: Any, error: str | None = None, accepted: bool | None = None
    ) -> Attempt:
        return ctx.record(
            model=self.deployment.name,
            tier=self.route.index,
            tier_name=self.route.tier.name,
            outcome=outcome,
            reason=self.reason,
            raw_output=self.response.text,
            error=error,
            usage=self.response.usage,
            cost_usd=self.cost_usd,
            latency_s=self.latency_s,
            compute_s=self.response.compute_s,
            accepted=accepted,
            span=self.span,
        )


def _as_tier(item: Tier | Deployment | str | Backend, index: int) -> Tier:
    if isinstance(item, Tier):
        return item
    if isinstance(item, Deployment):
        return Tier(item.name, [item])
    if isinstance(item, str):
        return Tier(item, [item])
    return Tier(getattr(item, "name", f"tier{index}"), [item])


class Router:
    """Cost-aware routing over an ordered list of tiers, cheapest first.

    - static ``rules`` pick the starting tier or pin a model from the call's features;
    - the cascade tries each tier from the start with ``max_attempts_per_tier`` attempts (re-asks) before
      escalating, or the tier's own ``max_attempts`` (driven by ``promptkit.generation``'s cascade);
    - transport faults are retried with ``retry`` backoff on the same deployment, then the tier's next
      deployment, then the next tier;
    - ``budget`` caps a run's dollars and tokens, refusing a call before it is sent;
    - each backend has an in-flight limit (1 for local models, the alias' ``concurrency`` otherwise).

    ``sleep`` and ``rand`` are injectable so tests never wait; ``timeout_grace_s`` is how long past a
    deployment's ``timeout_s`` the router waits for a backend that does not enforce the timeout itself.
    """

    def __init__(
        self,
        tiers: Sequence[Tier | Deployment | str | Backend],
        *,
        rules: Iterable[Rule] = (),
        max_attempts_per_tier: int = 2,
        retry: RetryPolicy | None = None,
        budget: Budget | None = None,
        sleep: Sleep | None = None,
        rand: Callable[[], float] = random.random,
        name: str | None = None,
        config: Config | None = None,
        timeout_grace_s: float = 2.5,
        start_policy: StartTierPolicy | None = None,
    ) -> None:
        if isinstance(tiers, (str, Tier, Deployment)) or isinstance(tiers, Backend):
            tiers = [tiers]
        self.tiers: tuple[Tier, ...] = tuple(_as_tier(t, i) for i, t in enumerate(tiers))
        if not self.tiers:
            raise ConfigError("a router needs at least one tier", location="[router] tiers")
        if max_attempts_per_tier < 1:
            raise ConfigError(
                f"max_attempts_per_tier must be >= 1, got {max_attempts_per_tier}",
                location="[router] max_attempts_per_tier",
            )
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ConfigError(f"tier names must be unique, got {names}", location="[router] tiers")
        self.rules: tuple[Rule, ...] = tuple(rules)
        for rule in self.rules:
            if rule.start_tier is not None:
                self._tier_index(rule.start_tier)  # fail at construction, not at the first call
        self.max_attempts_per_tier = max_attempts_per_tier
        self.retry = retry or RetryPolicy()
        self.budget = budget or Budget()
        self.tracker = BudgetTracker(self.budget)
        self.sleep: Sleep = sleep or asyncio.sleep
        self.rand = rand
        self.name = name
        self.config = config
        # A deployment's timeout_s goes to the backend in the request; the router stops waiting this much later,
        # so a backend that enforces it reports first, and one that ignores it cannot hang the call.
        self.timeout_grace_s = timeout_grace_s
        # Consulted when no rule matched: may start a call past the cheap tier (promptkit.routing.learned).
        self.start_policy = start_policy
        self._pinned: dict[int, Route] = {}
        # Routes are immutable: the common answer (every tier, in order) is built once.
        self._all_routes = [Route(i, t) for i, t in enumerate(self.tiers)]
        self._runs: dict[int, str] = {}
        self._seeded: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Router(tiers={[t.name for t in self.tiers]!r})"

    @classmethod
    def from_config(cls, config: Config | None = None, **overrides: Any) -> Router:
        """Build a router from the ``[router]`` table (see ``promptkit.routing`` for the schema)."""
        from promptkit.routing._config import router_kwargs

        if config is None:
            from promptkit.config import load_config

            config = load_config()
        kwargs = router_kwargs(config)
        kwargs.update(overrides)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            if exc.location is not None:
                raise
            where = f"{config.source}: [router]" if config.source else "[router]"
            raise ConfigError(exc.message, location=where) from None

    @classmethod
    def for_model(
        cls, model: str | Backend, *, max_attempts: int = 3, config: Config | None = None
    ) -> Router:
        """A one-tier, one-deployment router: what ``generate(model=...)`` uses."""
        deployment = Deployment(model, config=config)
        return cls([Tier(deployment.name, [deployment])], max_attempts_per_tier=max_attempts, config=config)

    # -- policy -------------------------------------------------------------------------------------------

    def _tier_index(self, ref: str | int) -> int:
        if isinstance(ref, int) and not isinstance(ref, bool):
            if 0 <= ref < len(self.tiers):
                return ref
            raise ConfigError(f"start_tier {ref} is out of range: the router has {len(self.tiers)} tier(s)")
        for i, tier in enumerate(self.tiers):
            if tier.name == ref:
                return i
        raise ConfigError(f"start_tier {ref!r} is not a tier; tiers: {[t.name for t in self.tiers]}")

    def route(self, features: RouteFeatures) -> list[Route]:
        """The tiers a call with these features may use, in order: the first matching rule decides."""
        routes = self._choose_routes(features)
        if tracing.enabled():
            trace_route(features, routes, len(self.rules))
        return routes

    def _choose_routes(self, features: RouteFeatures) -> list[Route]:
        for n, rule in enumerate(self.rules):
            if not rule.matches(features):
                continue
            if rule.model is not None:
                pinned = self._pinned.get(n)
                if pinned is None:
                    deployment = Deployment(rule.model, config=self.config)
                    pinned = self._pinned.setdefault(n, Route(None, Tier(deployment.name, [deployment])))
                return [pinned]
            start = self._tier_index(rule.start_tier)  # type: ignore[arg-type]
            return [Route(i, self.tiers[i]) for i in range(start, len(self.tiers))]
        if self.start_policy is not None:
            chosen = self.start_policy.start_tier(features, self.tiers)
            if chosen is not None:
                start = self._tier_index(chosen)
                if start > 0:
                    return [
                        Route(i, self.tiers[i], "learned_skip" if i == start else None)
                        for i in range(start, len(self.tiers))
                    ]
        return list(self._all_routes)

    @property
    def needs_input_tokens(self) -> bool:
        """Whether a rule looks at the rendered size (so callers know to count tokens exactly)."""
        return any(r.min_input_tokens is not None or r.max_input_tokens is not None for r in self.rules)

    def attempts_for(self, tier: Tier) -> int:
        """The attempts ``tier`` gets before the cascade escalates: its own, else the router-wide default."""
        return tier.max_attempts or self.max_attempts_per_tier

    def run_id(self, ledger: Ledger | None = None) -> str:
        """This router's default run (one per router and ledger), for calls that name none."""
        key = id(ledger)
        run = self._runs.get(key)
        if run is None:
            with self._lock:
                run = self._runs.get(key)
                if run is None:
                    run = ledger.new_run(self.name) if ledger is not None else new_run_id()
                    self._runs[key] = run
        return run

    def spent(self, run_id: str) -> Spend:
        """Dollars and tokens this router has seen the run spend (plus what is in flight)."""
        return self.tracker.spent(run_id)

    # -- one attempt ----------------------------------------------------------------------------------------

    def _estimate(self, request: GenerateRequest, deployment: Deployment) -> tuple[float, int]:
        input_tokens = count_tokens(request.messages, model=deployment.resolve().alias.model)
        output_tokens = request.max_tokens or self.budget.default_output_tokens
        inp, out = deployment.prices
        return (inp or 0.0) * input_tokens + (out or 0.0) * output_tokens, input_tokens + output_tokens

    def _seed(self, ctx: CallContext) -> None:
        # A run can span processes and routers: count what the ledger already holds for it, once.
        if ctx.run_id in self._seeded:
            return
        with self._lock:
            if ctx.run_id in self._seeded:
                return
            self._seeded.add(ctx.run_id)
        if ctx.ledger is not None:
            totals = ctx.ledger.totals(ctx.run_id)
            self.tracker.add(ctx.run_id, totals.cost_usd, totals.input_tokens + totals.output_tokens)

    async def _send(self, deployment: Deployment, request: GenerateRequest) -> GenerateResponse:
        backend = deployment.backend
        if not backend.capabilities.prefill:
            request = prefill_as_instruction(request)
        timeout = deployment.call_timeout_s
        semaphore = LIMITER.semaphore(backend, deployment.limit)
        async with semaphore:
            if timeout is None:
                return await backend.generate(request)
            try:
                return await asyncio.wait_for(backend.generate(request), timeout + self.timeout_grace_s)
            except asyncio.TimeoutError:
                raise RequestTimeout(
                    f"no answer within {timeout:g} s", location=f"model {deployment.name!r}"
                ) from None

    async def call(
        self, request: GenerateRequest, route: Route, ctx: CallContext, reason: Reason | None = None
    ) -> Answer:
        """Get one answer from ``route``'s tier, recording every failed try in ``ctx``.

        ``reason`` is why the caller makes this attempt; it goes on the first record. Transport faults are
        retried on the same deployment (reason "retry"), then the tier's next deployment is tried (reason
        "fallback"); when all are spent the last ``TransportError`` is raised so the caller can move to the
        next tier. A budget refusal raises ``BudgetExceeded``; other backend errors (``ModelRequestError``...)
        are recorded and raised at once. The answer carries the reason its verdict is recorded with.
        """
        tier = route.tier
        if route.reason is not None and reason is None and not ctx.attempts:
            reason = route.reason
        last: TransportError | None = None
        policy = self.retry
        budget_on = self.budget.active
        tried = False
        for deployment in tier.deployments:
            if id(deployment) in ctx.skip:
                continue
            if tried:
                reason = "fallback"
            tried = True
            resolved = deployment.resolve()
            # A shallow copy without validation: only the model and timeout change, both already typed.
            sent = trusted_model(GenerateRequest, {**request.__dict__, "model": resolved.backend_model})
            if deployment.call_timeout_s is not None:
                sent.timeout_s = deployment.call_timeout_s
            for retry in range(policy.max_retries + 1):
                reservation = None
                if budget_on:
                    self._seed(ctx)
                    usd, tokens = self._estimate(sent, deployment)
                    try:
                        reservation = self.tracker.reserve(
                            ctx.run_id, usd, tokens, what=f"call to {deployment.name!r} (tier {tier.name!r})"
                        )
                    except BudgetExceeded as exc:
                        ctx.record(
                            model=deployment.name,
                            tier=route.index,
                            tier_name=tier.name,
                            outcome="budget_refused",
                            reason=reason,
                            error=str(exc),
                        )
                        raise
                span = open_attempt(deployment, resolved, sent, route, ctx) if tracing.enabled() else None
                started = time.perf_counter()
                try:
                    if span is None:
                        response = await self._send(deployment, sent)
                    else:
                        with span.current():  # spans of the HTTP client, litellm... nest under the attempt
                            response = await self._send(deployment, sent)
                except TransportError as exc:
                    latency = time.perf_counter() - started
                    if reservation is not None:
                        self.tracker.settle(reservation, 0.0, 0)
                    ctx.record(
                        model=deployment.name,
                        tier=route.index,
                        tier_name=tier.name,
                        outcome="transport_error",
                        reason=reason,
                        error=f"{type(exc).__name__}: {exc}",
                        latency_s=latency,
                        span=span,
                    )
                    last = exc
                    reason = None
                    if retry < policy.max_retries:
                        await self.sleep(policy.delay(retry, exc, self.rand))
                        reason = "retry"
                        continue
                    ctx.skip.add(id(deployment))
                    break
                except Exception as exc:
                    latency = time.perf_counter() - started
                    if reservation is not None:
                        self.tracker.settle(reservation, 0.0, 0)
                    message = f"{type(exc).__name__}: {exc}"
                    ctx.record(
                        model=deployment.name,
                        tier=route.index,
                        tier_name=tier.name,
                        outcome="error",
                        reason=reason,
                        error=message,
                        latency_s=latency,
                        span=span,
                    )
                    if isinstance(exc, ConfigError) and not (exc.location or "").startswith("tier "):
                        # This tier's setup (a missing API key...): name the tier, as promptkit.toml does.
                        where = f"tier {tier.name!r}" + (f", {exc.location}" if exc.location else "")
                        raise ConfigError(exc.message, location=where) from None
                    if isinstance(exc, PromptkitError):
                        raise  # ModelRequestError and the like: retrying elsewhere would not help
                    raise BackendError(
                        scrub_secrets(f"backend failed unexpectedly: {message}"),
                        location=f"model {deployment.name!r}",
                    ) from exc
                latency = time.perf_counter() - started
                cost = attempt_cost(response, deployment)
                if reservation is not None:
                    self.tracker.settle(reservation, cost, response.usage.total_tokens)
                if response.compute_s is None and deployment.is_local:
                    response = response.model_copy(update={"compute_s": latency})
                if span is not None:
                    answered(span, response)
                return Answer(response, deployment, route, cost, latency, span, reason)
        if last is None:
            raise TransportError(
                f"every deployment of tier {tier.name!r} already failed in this call",
                location=f"tier {tier.name!r}",
            )
        raise last
