"""The cascade: try the cheapest tier, check the answer, repair on that tier with the errors fed back, escalate.

``generate()`` and the executor both run this one loop and differ only in their :class:`CascadeSteps`:

- ``call``: one attempt on a tier (generate: one router call; the executor: one ``generate()`` call);
- ``check``: what makes an answer good (generate: parse, validate, ``accept=``; the executor: apply the file
  edits and run the step's verifiers), rejecting with ``OutputValidationError``, whose message is fed back;
- ``enter``: what happens before a tier's first attempt (generate: fit the prompt to the tier's context
  window, serve a cached answer that passes ``check``);
- ``attempts``: how many attempts a tier gets (a tier's own ``max_attempts`` overrides the default);
- ``ends``: the errors that end a tier without ending the call (generate: transport faults).

Why an attempt happens (the ledger's ``reason``) is a value worked out here and handed to each attempt, never
a shared field: ``None`` for the call's first attempt, ``"reask"`` after a failed check, and for a tier's
first attempt the reason the previous tier ended (``"escalation"`` or ``"fallback"``). The router adds its
own ``"retry"``/``"fallback"`` for transport retries within one attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from promptkit.errors import AttemptsExhausted, PromptkitError, RoutingError, TransportError
from promptkit.generation._loop import Feedback, repair_loop
from promptkit.routing import Route, RouteFeatures

if TYPE_CHECKING:
    from promptkit.routing._attempts import Reason  # the ledger's reasons: "reask", "escalation", ...

__all__ = [
    "CascadeSteps",
    "Failed",
    "Passed",
    "Served",
    "Skipped",
    "TierEnded",
    "Try",
    "route_features",
    "run_cascade",
]

A = TypeVar("A")
V = TypeVar("V")


@dataclass(frozen=True)
class Try:
    """One attempt as the cascade hands it out: the tier, its number on that tier, the feedback to repair
    (one item per earlier failed attempt on this tier) and why it happens."""

    route: Route
    number: int
    feedback: tuple[Feedback, ...]
    reason: Reason | None


@dataclass(frozen=True)
class Served(Generic[V]):
    """From ``enter``: an answer the tier gives without an attempt (a cached one that passed the check)."""

    value: V


@dataclass(frozen=True)
class Skipped:
    """From ``enter``: this tier cannot take the call (the prompt does not fit its context window)."""

    error: PromptkitError


@dataclass(frozen=True)
class TierEnded:
    """A tier that ended without an accepted answer: the error, and the reason the next tier's first attempt
    is recorded with."""

    route: Route
    error: Exception
    next_reason: Reason

    @property
    def errors(self) -> list[str]:
        """What went wrong, oldest first: each failed attempt's error, or the one error that ended the tier."""
        if isinstance(self.error, AttemptsExhausted):
            found = [e for e in (getattr(a, "error", None) for a in self.error.attempts) if e]
            if found:
                return found
        return [str(self.error)]


@dataclass(frozen=True)
class Passed(Generic[A, V]):
    """The accepted answer: ``check``'s value, the tier, the attempt it came from (None when ``enter``
    served it) and how many attempts that tier took."""

    route: Route
    value: V
    answer: A | None
    attempts: int


@dataclass(frozen=True)
class Failed:
    """Every tier ended without an accepted answer (``ended`` is empty when there were no routes)."""

    ended: tuple[TierEnded, ...]

    @property
    def last(self) -> TierEnded | None:
        return self.ended[-1] if self.ended else None


class CascadeSteps(Protocol[A, V]):
    """The hooks one use of the cascade supplies (see the module docstring)."""

    ends: tuple[type[Exception], ...]
    location: str | None

    def attempts(self, route: Route) -> int: ...

    async def enter(self, route: Route, reason: Reason | None) -> Served[V] | Skipped | None:
        """Before the tier's first attempt; ``reason`` is None on the first tier, else why the last ended."""
        ...

    async def call(self, attempt: Try) -> A: ...

    async def check(self, attempt: Try, answer: A) -> V:
        """The accepted value, or ``OutputValidationError`` (its message is fed back to the next attempt)."""
        ...

    def ended(self, end: TierEnded) -> None: ...


def _next_reason(error: Exception) -> Reason:
    """The reason the next tier's first attempt is recorded with, after ``error`` ended a tier."""
    return "fallback" if isinstance(error, (TransportError, RoutingError)) else "escalation"


async def run_cascade(
    steps: CascadeSteps[A, V], routes: Sequence[Route], *, first: Reason | None = None
) -> Passed[A, V] | Failed:
    """Try ``routes`` in order until one gives an answer that passes ``steps.check``.

    ``first`` is why the first attempt happens when this cascade is itself one attempt of an outer one (the
    executor calls generate() once per attempt): "escalation" or "reask", as the ledger records it.

    On each tier the repair loop runs up to ``steps.attempts(route)`` attempts, each failed check fed back
    to the next; a tier whose attempts are spent, or that raises one of ``steps.ends``, or that ``enter``
    skips, hands over to the next tier. Any other error propagates at once.
    """
    ended: list[TierEnded] = []
    reason: Reason | None = first
    for route in routes:
        entered = await steps.enter(route, reason)
        if isinstance(entered, Served):
            return Passed(route, entered.value, None, 0)
        if isinstance(entered, Skipped):
            end = TierEnded(route, entered.error, "escalation")
        else:
            try:
                return await _on_tier(steps, route, reason)
            except AttemptsExhausted as exc:
                end = TierEnded(route, exc, "escalation")
            except steps.ends as exc:
                end = TierEnded(route, exc, _next_reason(exc))
        ended.append(end)
        steps.ended(end)
        reason = end.next_reason
    return Failed(tuple(ended))


async def _on_tier(steps: CascadeSteps[A, V], route: Route, first: Reason | None) -> Passed[A, V]:
    """The repair loop on one tier; raises AttemptsExhausted when its attempts are spent."""
    tries: list[Try] = []

    async def attempt(feedback: Sequence[Feedback]) -> A:
        current = Try(route, len(feedback) + 1, tuple(feedback), "reask" if feedback else first)
        tries.append(current)
        return await steps.call(current)

    async def check(answer: A) -> tuple[A, V]:
        return answer, await steps.check(tries[-1], answer)

    looped = await repair_loop(
        attempt,
        check,
        max_attempts=steps.attempts(route),
        subject=f"answer from tier {route.tier.name!r}",
        location=steps.location,
    )
    answer, value = looped.value
    return Passed(route, value, answer, len(tries))


def route_features(
    template: Any,
    *,
    kind: str | None = None,
    input_tokens: int = 0,
    text: str | None = None,
    extra_tags: Sequence[str] = (),
) -> RouteFeatures:
    """What routing rules look at for a call of ``template``: its name and tags (technique and task, or a
    mapping of tag groups), plus ``extra_tags`` such as ``difficulty:hard``, the call's ``kind``, size and
    ``text``."""
    tags = getattr(template, "tags", None)
    if tags is None:
        groups: Any = ()
    elif isinstance(tags, Mapping):
        groups = tags.values()
    else:
        groups = [getattr(tags, "technique", ()) or (), getattr(tags, "task", ()) or ()]
    flat = tuple(t for group in groups for t in group) + tuple(extra_tags)
    return RouteFeatures(
        template=getattr(template, "name", None),
        tags=flat,
        kind=kind,
        input_tokens=input_tokens,
        text=text,
    )
