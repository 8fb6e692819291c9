"""``generate()``: render → cascade (per tier: fit → cache → call → parse → accept → re-ask; escalate) → record.

The cascade itself is ``_cascade.run_cascade``, shared with the executor; this module supplies its steps for
one template call: the router gives each attempt an answer (with budgets, limits, retries and fallbacks
applied), and parsing, validation and ``accept`` decide whether it is good enough.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import promptkit.tracing as tracing
from promptkit.backends import Backend, GenerateRequest, run_sync
from promptkit.cache import ExactCache, SemanticCache
from promptkit.errors import (
    AttemptsExhausted,
    ConfigError,
    ContextBudgetError,
    OutputValidationError,
    PromptkitError,
    RoutingError,
    TransportError,
)
from promptkit.generation._cascade import (
    Failed,
    Served,
    Skipped,
    TierEnded,
    Try,
    route_features,
    run_cascade,
)
from promptkit.generation._defaults import (
    resolve_cache,
    resolve_ledger,
    resolve_semantic_cache,
    router_for_model,
    template_for,
)
from promptkit.generation._loop import Feedback
from promptkit.generation._parse import Accept, check_acceptance, feedback_messages, parse_output
from promptkit.generation._result import GenerateResult
from promptkit.generation._tracing import traced_generate
from promptkit.ledger import Ledger, scrub_secrets
from promptkit.prompts import (
    RenderedPrompt,
    Template,
    TextFormat,
    approximate_tokens,
    count_tokens,
    surely_fits,
)
from promptkit.routing import Answer, CallContext, Route, Router
from promptkit.types import trusted_model

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import BaseModel

    from promptkit.routing._attempts import Reason

__all__ = ["agenerate", "generate", "answer_room"]

T = TypeVar("T")

# GenerateRequest fields a caller may set through **kw; anything else goes to request.params.
_REQUEST_FIELDS = ("top_p", "stop", "seed", "timeout_s")
_SECRET_WORDS = ("key", "token", "secret", "password", "authorization")


def _request(
    rendered: Any, temperature: float | None, max_tokens: int | None, kw: dict[str, Any]
) -> GenerateRequest:
    fields: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for name, value in kw.items():
        if any(word in name.lower() for word in _SECRET_WORDS):
            raise ConfigError(
                f"generate() does not take {name!r}: secrets come from the model alias' api_key_env, "
                "never from call arguments (they would reach caches and logs)",
                location=f"template {rendered.template!r}",
            )
        if name in _REQUEST_FIELDS:
            fields[name] = value
        else:
            params[name] = value
    output_model = rendered.output_model
    if output_model is not None and issubclass(output_model, TextFormat):
        output_model = None  # written as plain text: no grammar or tool schema; generate() parses it
    return GenerateRequest(
        messages=list(rendered.messages),
        temperature=temperature,
        max_tokens=max_tokens,
        output_model=output_model,
        params=params,
        **fields,
    )


def answer_room(window: int, max_tokens: int | None) -> int:
    """Tokens kept free for the answer in a context window of ``window``: ``max_tokens`` when the call sets
    it, else a quarter of the window (at most 2,048)."""
    if max_tokens is not None:
        return max_tokens
    return min(2048, max(256, window // 4))


def _context_window(deployment: Any) -> int | None:
    """The deployment's context window in tokens, when its backend knows it (local models do)."""
    window = getattr(deployment.backend, "context_window", None)
    return window if isinstance(window, int) and window > 0 else None


def _feedback_turns(
    feedback: Sequence[Feedback], output_model: type[BaseModel] | None, messages: Sequence[Any] = ()
) -> list[Any]:
    """The repair turns for ``feedback``, restating the answer format ``output_model`` asks for, unless the
    prompt prefills the answer's start (the format is then fixed, and a small model copies the instructions'
    placeholder file into its answer)."""
    if messages and messages[-1].role == "assistant":
        return feedback_messages(feedback, structured=False)
    text_format = output_model if output_model is not None and issubclass(output_model, TextFormat) else None
    return feedback_messages(feedback, structured=output_model is not None, text_format=text_format)


def _with_turns(messages: Sequence[Any], turns: Sequence[Any]) -> list[Any]:
    """``messages`` with the repair ``turns`` added; a prompt that ends in a prefilled assistant message
    keeps it last, so the next answer starts the same way."""
    if turns and messages and messages[-1].role == "assistant":
        return [*messages[:-1], *turns, messages[-1]]
    return [*messages, *turns]


def _input_tokens(rendered: Any, router: Router) -> int:
    if rendered.token_count is not None:
        return int(rendered.token_count)
    # A real tokenizer only when a rule depends on the size; the ledger's feature can be approximate.
    if router.needs_input_tokens:
        return count_tokens(rendered.messages)
    return approximate_tokens(rendered.messages)


class _Call:
    """One logical generate() call: the cascade's steps and the state they share.

    On entering a tier the prompt is fitted to the tier's context window and a cached answer that still
    passes is served; an attempt is one router call, the prompt continued with the failed answers and their
    errors; the check is parse + validate + ``accept``.
    """

    ends: tuple[type[Exception], ...] = (TransportError,)

    def __init__(
        self,
        *,
        template: Template,
        request: GenerateRequest,
        router: Router,
        ctx: CallContext,
        accept: Accept | None,
        cache: ExactCache | None,
        max_attempts: int | None,
        semantic: _Semantic | None = None,
        refit: Callable[[int, str | None], RenderedPrompt] | None = None,
    ) -> None:
        self.template = template
        self.request = request
        self.base_request = request
        self.refit = refit
        self.output_model: type[BaseModel] | None = template.output_model
        self.router = router
        self.ctx = ctx
        self.accept = accept
        self.cache = cache
        self.max_attempts = max_attempts
        self.semantic = semantic
        self.location = f"template {template.name!r}"
        self._keys: dict[int, str] = {}  # deployment id -> key: computed once for lookup and store

    # -- the cascade's steps -----------------------------------------------------------------------------

    def attempts(self, route: Route) -> int:
        # generate(max_attempts=) wins, then the tier's own attempts, then the router's default.
        return self.max_attempts or self.router.attempts_for(route.tier)

    async def enter(self, route: Route, reason: Reason | None) -> Served[GenerateResult] | Skipped | None:
        fitted = self.fit(route, reason)
        if isinstance(fitted, Skipped):
            return fitted
        self.request = fitted
        if self.cache is not None:
            hit = await self.from_cache(route, reason)
            if hit is not None:
                return Served(hit)
        if self.semantic is not None:  # semantic cache: opt-in, after the exact cache missed
            hit = await self.semantic.lookup(self, route, reason)
            if hit is not None:
                return Served(hit)
        return None

    async def call(self, attempt: Try) -> Answer:
        request = self.request
        if attempt.feedback:
            messages = _with_turns(
                request.messages, _feedback_turns(attempt.feedback, self.output_model, request.messages)
            )
            request = request.model_copy(update={"messages": messages})
        return await self.router.call(request, attempt.route, self.ctx, attempt.reason)

    async def check(self, attempt: Try, answer: Answer) -> GenerateResult:
        try:
            output = parse_output(answer.text, self.output_model, location=self.location)
            await check_acceptance(self.accept, output, raw=answer.text, location=self.location)
        except OutputValidationError as exc:
            answer.record(self.ctx, outcome="invalid", error=exc.message, accepted=False)
            raise
        except Exception as exc:
            # The acceptance check itself broke (a verifier's sandbox, a bug in accept=): the answer is not
            # judged, but its tokens were spent and stay in the ledger. The type only: the message may quote
            # the answer.
            answer.record(
                self.ctx, outcome="error", error=f"the acceptance check raised {type(exc).__name__}"
            )
            raise
        answer.record(self.ctx, outcome="ok", accepted=True)
        return self.result(output, answer.text, answer.deployment.name, attempt.route, cached=False)

    def ended(self, end: TierEnded) -> None:
        pass  # every attempt is already in the ledger; failure() tells the story if no tier passes

    async def run(self, routes: Sequence[Route], first: Reason | None = None) -> GenerateResult:
        outcome = await run_cascade(self, routes, first=first)
        if isinstance(outcome, Failed):
            raise self.failure(routes, outcome)
        if outcome.answer is not None:
            await self.remember(outcome.route, outcome.answer)
        return outcome.value

    # -- caches ------------------------------------------------------------------------------------------

    def _key(self, route: Route, index: int) -> str:
        deployment = route.tier.deployments[index]
        key = self._keys.get(id(deployment))
        if key is not None:
            return key
        # The template hash already covers the output schema: leaving it out spares a JSON-schema build.
        key = ExactCache.key_for(
            self.request, template_hash=self.template.hash, model=deployment.cache_id, include_schema=False
        )
        self._keys[id(deployment)] = key
        return key

    async def from_cache(self, route: Route, reason: Reason | None) -> GenerateResult | None:
        """A cached answer for this tier that still validates and passes ``accept``, or None."""
        assert self.cache is not None
        for index, deployment in enumerate(route.tier.deployments):
            entry = self.cache.get(self._key(route, index))
            if entry is None:
                continue
            served = await self.serve_cached(
                route,
                deployment.name,
                entry.response.text,
                reason,
                cache="exact",
                saved=float(entry.cost_usd or 0.0),
            )
            if served is not None:
                return served
        return None

    async def serve_cached(
        self,
        route: Route,
        model: str,
        text: str,
        reason: Reason | None,
        *,
        cache: Literal["exact", "semantic"],
        saved: float,
        similarity: float | None = None,
    ) -> GenerateResult | None:
        """The result for a cached answer if it validates and passes ``accept`` for this request, else None.
        Either way the answer is recorded as an attempt with ``reason``; after a rejection the real attempt
        is recorded with the same reason."""
        try:
            output = parse_output(text, self.output_model, location=self.location)
            await check_acceptance(self.accept, output, raw=text, location=self.location)
        except OutputValidationError as exc:
            prefix = "cached answer" if cache == "exact" else "semantic cache answer"
            self.ctx.record(
                model=model,
                tier=route.index,
                tier_name=route.tier.name,
                outcome="invalid",
                reason=reason,
                raw_output=text,
                error=f"{prefix} rejected: {exc.message}",
                cache=cache,
                cache_similarity=similarity,
                accepted=False,
            )
            return None
        self.ctx.record(
            model=model,
            tier=route.index,
            tier_name=route.tier.name,
            outcome="cache_hit",
            reason=reason,
            raw_output=text,
            cache=cache,
            cache_similarity=similarity,
            saved_usd=saved,
            accepted=True,
        )
        return self.result(output, text, model, route, cached=True, saved_usd=saved)

    async def remember(self, route: Route, answer: Answer) -> None:
        """Store an accepted answer in the exact cache (and the semantic one when it is on)."""
        if self.cache is not None:
            index = route.tier.deployments.index(answer.deployment)
            # Sync on purpose: one small WAL insert costs less than a hop to a worker thread.
            self.cache.set(
                self._key(route, index),
                answer.response,
                template=self.template.name,
                model=answer.deployment.name,
                cost_usd=answer.cost_usd,
            )
        if self.semantic is not None:
            await self.semantic.store(self, answer)

    # -- results -----------------------------------------------------------------------------------------

    def result(
        self, output: Any, text: str, model: str, route: Route, *, cached: bool, saved_usd: float = 0.0
    ) -> GenerateResult:
        ctx = self.ctx
        # Built without re-validation: every field is already of its type, and this is the hot path.
        return trusted_model(
            GenerateResult,
            {
                "output": output,
                "text": text,
                "model": model,
                "tier": route.index,
                "tier_name": route.tier.name,
                "attempts": list(ctx.attempts),
                "usage": ctx.usage,
                "cost_usd": ctx.cost_usd,
                "saved_usd": saved_usd,
                "cached": cached,
                "run_id": ctx.run_id,
                "call_id": ctx.call_id,
                "template": self.template.name,
                "template_hash": self.template.hash,
            },
        )

    def fit(self, route: Route, reason: Reason | None) -> GenerateRequest | Skipped:
        """The request for this tier, its prompt fitted to the tier's context window with room for the
        answer; Skipped (recorded with ``reason``, the cascade moves on) when it cannot fit even trimmed."""
        base = self.base_request
        deployment = route.tier.primary
        window = _context_window(deployment)
        if window is None:
            return base
        room = answer_room(window, base.max_tokens or getattr(deployment.backend, "max_tokens", None))
        limit = window - room
        if surely_fits(base.messages, limit):
            return base
        token_model = deployment.alias.model if isinstance(deployment.model, str) else None
        model_path = getattr(deployment.backend, "model_path", None)
        if model_path is not None:  # a local model: count with its own tokenizer
            token_model = f"local:{model_path}"
        count = count_tokens(base.messages, token_model)
        if count <= limit:
            return base
        problem = (
            f"the prompt takes {count} tokens; {deployment.name!r} has a context window of {window} "
            f"with {room} kept for the answer"
        )
        if self.refit is not None and limit > 0:
            try:
                rendered = self.refit(limit, token_model)
                return base.model_copy(update={"messages": list(rendered.messages)})
            except ContextBudgetError as exc:
                problem += f", and trimming cannot make it fit ({exc.message})"
        self.ctx.record(
            model=deployment.name,
            tier=route.index,
            tier_name=route.tier.name,
            outcome="too_long",
            reason=reason,
            error=problem,
            accepted=False,
        )
        return Skipped(ContextBudgetError(problem, location=self.location))

    def failure(self, routes: Sequence[Route], failed: Failed) -> Exception:
        ctx = self.ctx
        tiers = ", ".join(repr(r.tier.name) for r in routes)
        # The last tier that was tried (a prompt too long for a tier is no try).
        last = next(
            (e.error for e in reversed(failed.ended) if not isinstance(e.error, ContextBudgetError)), None
        )
        too_long = [e.error for e in failed.ended if isinstance(e.error, ContextBudgetError)]
        errors = [a.error for a in ctx.attempts if a.error]
        if isinstance(last, AttemptsExhausted) and errors:
            detail = errors[-1]
        elif last is not None:
            detail = scrub_secrets(f"{type(last).__name__}: {last}")
        else:
            detail = "no attempt was made"
        # One line: the CLI prints str(error) as the whole story.
        detail = detail.replace(":\n- ", ": ").replace("\n- ", "; ").replace("\n", " ")
        if last is None and too_long:
            return ContextBudgetError(
                f"the prompt fits no tier ({tiers}): {too_long[-1].message}; use a model with a larger context "
                "window (n_ctx), a smaller max_tokens, or shorter inputs",
                location=self.location,
            )
        if ctx.answered:
            error: PromptkitError = AttemptsExhausted(
                f"no answer passed validation and the acceptance check after {len(ctx.attempts)} attempt(s) "
                f"on tier(s) {tiers}; last error: {detail}",
                attempts=list(ctx.attempts),
                usage=ctx.usage,
                location=self.location,
            )
        else:
            error = RoutingError(
                f"no route could serve the call: tier(s) {tiers} failed with transport errors after "
                f"{len(ctx.attempts)} attempt(s); last error: {detail}",
                location=self.location,
            )
        error.__cause__ = last
        return error


@overload
async def agenerate(
    template: str | Template[Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    output: type[T],
    model: str | Backend | None = None,
    router: Router | None = None,
    accept: Accept | None = None,
    cache: ExactCache | bool | None = True,
    ledger: Ledger | bool | None = True,
    run_id: str | None = None,
    max_attempts: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    kind: str | None = None,
    budget_tokens: int | None = None,
    examples: Any = None,
    semantic_cache: SemanticCache | bool | None = None,
    feedback: Sequence[Feedback] = (),
    routes: Sequence[Route] | None = None,
    reason: Reason | None = None,
    **kw: Any,
) -> GenerateResult[T]: ...
@overload
async def agenerate(
    template: Template[T],
    inputs: Mapping[str, Any] | None = None,
    *,
    output: None = None,
    model: str | Backend | None = None,
    router: Router | None = None,
    accept: Accept | None = None,
    cache: ExactCache | bool | None = True,
    ledger: Ledger | bool | None = True,
    run_id: str | None = None,
    max_attempts: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    kind: str | None = None,
    budget_tokens: int | None = None,
    examples: Any = None,
    semantic_cache: SemanticCache | bool | None = None,
    feedback: Sequence[Feedback] = (),
    routes: Sequence[Route] | None = None,
    reason: Reason | None = None,
    **kw: Any,
) -> GenerateResult[T]: ...
@overload
async def agenerate(
    template: str | Template[Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    output: Any = None,
    model: str | Backend | None = None,
    router: Router | None = None,
    accept: Accept | None = None,
    cache: ExactCache | bool | None = True,
    ledger: Ledger | bool | None = True,
    run_id: str | None = None,
    max_attempts: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    kind: str | None = None,
    budget_tokens: int | None = None,
    examples: Any = None,
    semantic_cache: SemanticCache | bool | None = None,
    feedback: Sequence[Feedback] = (),
    routes: Sequence[Route] | None = None,
    reason: Reason | None = None,
    **kw: Any,
) -> GenerateResult[Any]: ...
@traced_generate  # a promptkit.generate span when OpenTelemetry tracing is on (promptkit.tracing)
async def agenerate(
    template: str | Template[Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    output: Any = None,
    model: str | Backend | None = None,
    router: Router | None = None,
    accept: Accept | None = None,
    cache: ExactCache | bool | None = True,
    ledger: Ledger | bool | None = True,
    run_id: str | None = None,
    max_attempts: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    kind: str | None = None,
    budget_tokens: int | None = None,
    examples: Any = None,
    semantic_cache: SemanticCache | bool | None = None,
    feedback: Sequence[Feedback] = (),
    routes: Sequence[Route] | None = None,
    reason: Reason | None = None,
    **kw: Any,
) -> GenerateResult[Any]:
    """Render ``template`` with ``inputs``, get an answer that validates and passes ``accept``, and return it.

    ``output`` overrides the template's output type: a pydantic model, or any type pydantic validates
    (``list[Model]``, ``Literal[...]``, an ``Enum``, nested models; ``str`` for free text). The answer is held
    to it exactly as to a template's own schema (a grammar on local models, a tool schema on remote ones, the
    re-ask loop), ``{{ output_schema }}`` shows it, and ``result.output`` is of that type:
    ``GenerateResult[Invoice]`` for type checkers. See :meth:`Template.with_output`.

    Give exactly one of ``model`` (a model string, alias or Backend: a one-tier router with ``max_attempts``
    attempts, default 3) or ``router`` (a cascade; ``max_attempts``, when given, overrides its attempts per
    tier). ``accept(output)`` returns True/None to accept, False or a reason string to reject (it may be
    async, or raise OutputValidationError). ``cache``: True = the project's default cache, an ExactCache, or
    False/None for none; ``ledger`` likewise. ``semantic_cache``: a SemanticCache, True for the project's,
    False for none, None (default) for the project's only where ``[cache.semantic]`` opts the template in;
    a semantic hit is served only if it validates and passes ``accept`` for this request. ``kind`` is a hint for routing rules; ``budget_tokens`` fits
    the render into that many tokens; other keyword arguments (``top_p``, ``stop``, ``seed``, ``timeout_s``,
    provider parameters) go into the request. ``feedback``: earlier answers and what was wrong with each,
    appended to the prompt as conversation turns, for a caller that runs its own repair loop (the executor,
    whose verifiers are each call's ``accept``): the prompt's prefix stays the same, so a local model reuses
    its cached state. ``routes``: the
    tiers to try, in order, for a caller that chose them from ``router`` itself (the executor runs its own
    cascade and makes each attempt a call on one tier); by default ``router.route()`` picks them. ``reason``:
    why such a caller makes this call ("escalation", "reask"), recorded in the ledger with its first attempt,
    so the ledger counts the caller's escalations and repairs.

    Raises ``AttemptsExhausted`` (every attempt's raw output and the summed usage) when no tier produced an
    acceptable answer, ``RoutingError`` when every route failed with transport errors, ``BudgetExceeded``
    when the run's cap refuses a call, and template errors for bad inputs.
    """
    if (model is None) == (router is None):
        raise RoutingError(
            "generate() needs exactly one of model= or router=",
            location=f"template {getattr(template, 'name', template)!r}",
        )
    if max_attempts is not None and max_attempts < 1:
        raise RoutingError(f"max_attempts must be >= 1, got {max_attempts}")
    tpl = template_for(template)
    if output is not None:
        tpl = tpl.with_output(output)
    # A model name makes the renderer count tokens with a real tokenizer: only worth it when fitting a budget.
    token_model = model if isinstance(model, str) and budget_tokens is not None else None
    with tracing.span("promptkit.render"):
        rendered = tpl.render(inputs or {}, examples=examples, budget=budget_tokens, model=token_model)
    if router is None:
        assert model is not None
        router = router_for_model(model, max_attempts or 3)
        per_tier = None
    else:
        per_tier = max_attempts
    cache_obj = resolve_cache(cache)
    ledger_obj = resolve_ledger(ledger)
    users = [m.content for m in rendered.messages if m.role == "user"]
    features = route_features(
        tpl, kind=kind, input_tokens=_input_tokens(rendered, router), text=users[-1] if users else None
    )
    ctx = CallContext(
        run_id=run_id or router.run_id(ledger_obj),
        ledger=ledger_obj,
        template=tpl.name,
        template_hash=tpl.hash,
        features=features.as_dict(),
    )

    request = _request(rendered, temperature, max_tokens, kw)
    turns = _feedback_turns(feedback, tpl.output_model, request.messages) if feedback else []
    if turns:
        request = request.model_copy(update={"messages": _with_turns(request.messages, turns)})

    def refit(budget: int, model: str | None) -> RenderedPrompt:
        # The template's part is trimmed to what the feedback turns leave of the budget; the turns stay whole.
        room = count_tokens(turns, model) if turns else 0
        fitted = tpl.render(inputs or {}, examples=examples, budget=budget - room, model=model)
        return fitted.model_copy(update={"messages": _with_turns(fitted.messages, turns)})

    call = _Call(
        template=tpl,
        refit=refit,
        request=request,
        router=router,
        ctx=ctx,
        accept=accept,
        cache=cache_obj,
        max_attempts=per_tier,
        semantic=_Semantic.build(semantic_cache, tpl, inputs or {}),
    )
    return await call.run(router.route(features) if routes is None else routes, first=reason)


# --- semantic cache ----------------------------------------------------------------------------------------
# Consulted per tier after the exact cache misses; the question is the rendered last user message, the scope
# the template hash, the deployment's model and the template's must_match inputs.


class _Semantic:
    def __init__(self, cache: SemanticCache, must_match: dict[str, Any]) -> None:
        self.cache = cache
        self.must_match = must_match
        self.vector: Any = None  # the question's embedding, computed once per call

    @classmethod
    def build(
        cls, option: SemanticCache | bool | None, tpl: Template, inputs: Mapping[str, Any]
    ) -> _Semantic | None:
        cache = resolve_semantic_cache(option, tpl.name)
        if cache is None:
            return None
        return cls(cache, {name: inputs.get(name) for name in tpl.must_match})

    @staticmethod
    def question(call: _Call) -> str:
        users = [m.content for m in call.request.messages if m.role == "user"]
        return users[-1] if users else "\n".join(m.content for m in call.request.messages)

    async def lookup(self, call: _Call, route: Route, reason: Reason | None) -> GenerateResult | None:
        import asyncio

        question = self.question(call)
        if self.vector is None:
            self.vector = (await asyncio.to_thread(self.cache.embed, [question]))[0]
        for deployment in route.tier.deployments:
            decision = await asyncio.to_thread(
                self.cache.decide,
                question,
                template_hash=call.template.hash,
                model_class=deployment.cache_id,
                must_match=self.must_match,
                vector=self.vector,
            )
            hit = decision.hit
            if hit is None:
                continue
            # A verified hit: the answer to a similar question must pass this request's check, or we ask.
            served = await call.serve_cached(
                route,
                deployment.name,
                hit.response.text,
                reason,
                cache="semantic",
                saved=float(hit.cost_usd or 0.0),
                similarity=hit.similarity,
            )
            if served is not None:
                return served
            self.cache.record_rejected()
        return None

    async def store(self, call: _Call, answer: Answer) -> None:
        import asyncio

        question = self.question(call)
        vectors = None if self.vector is None else self.vector.reshape(1, -1)
        await asyncio.to_thread(
            self.cache.store_many,
            [(question, answer.response)],
            template_hash=call.template.hash,
            model_class=answer.deployment.cache_id,
            must_match=self.must_match,
            template=call.template.name,
            cost_usd=answer.cost_usd,
            vectors=vectors,
        )


@overload
def generate(
    template: str | Template[Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    output: type[T],
    **kwargs: Any,
) -> GenerateResult[T]: ...
@overload
def generate(
    template: Template[T],
    inputs: Mapping[str, Any] | None = None,
    *,
    output: None = None,
    **kwargs: Any,
) -> GenerateResult[T]: ...
@overload
def generate(
    template: str | Template[Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    output: Any = None,
    **kwargs: Any,
) -> GenerateResult[Any]: ...
def generate(
    template: str | Template[Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    output: Any = None,
    **kwargs: Any,
) -> GenerateResult[Any]:
    """The synchronous form of :func:`agenerate` (works inside a running event loop too); ``output=Invoice``
    makes ``result.output`` an ``Invoice`` (a ``GenerateResult[Invoice]``)."""
    return run_sync(agenerate(template, inputs, output=output, **kwargs))  # type: ignore[no-any-return]


# help(generate) and IDEs show agenerate's keyword arguments, which generate passes on unchanged.
generate.__signature__ = inspect.signature(agenerate)  # type: ignore[attr-defined]
