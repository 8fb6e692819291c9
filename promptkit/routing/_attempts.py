"""What one logical call leaves behind: a record per attempt, kept in memory and written to the ledger."""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

import promptkit.tracing as tracing
from promptkit.ledger import scrub_secrets
from promptkit.routing._tracing import end_attempt
from promptkit.types import Usage, trusted_model

if TYPE_CHECKING:
    from promptkit.ledger import Ledger

__all__ = ["Attempt", "Outcome", "Reason", "CallContext", "new_call_id"]

# Private (a user's random.seed() must not make call ids repeat), reseeded from the OS in a forked child.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)

Outcome = Literal["ok", "invalid", "transport_error", "error", "budget_refused", "cache_hit", "too_long"]
Reason = Literal["reask", "escalation", "fallback", "retry", "learned_skip"]


class Attempt(BaseModel):
    """One attempt of a call: which model and tier, why it happened, what came back and what it cost."""

    attempt: int
    model: str
    tier: int | None = None
    tier_name: str | None = None
    reason: Reason | None = None
    outcome: Outcome
    raw_output: str | None = None
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    compute_s: float | None = None
    cache: Literal["exact", "semantic"] | None = None
    saved_usd: float = 0.0
    accepted: bool | None = None


def new_call_id() -> str:
    # 64 random bits: unique enough within a run, and no system call per model call.
    return f"{_random.getrandbits(64):016x}"


class CallContext:
    """The state of one logical call shared by the router and generate(): attempts and totals.

    Every record goes to the ledger as it happens, with its error scrubbed of anything that looks like a
    secret. Why an attempt happened (its ``reason``) is given by whoever records it: the cascade decides it
    (``promptkit.generation``), and the router for its own transport retries and fallbacks.
    """

    __slots__ = (
        "run_id",
        "call_id",
        "ledger",
        "template",
        "template_hash",
        "features",
        "attempts",
        "usage",
        "cost_usd",
        "skip",
    )

    def __init__(
        self,
        *,
        run_id: str,
        ledger: Ledger | None = None,
        template: str | None = None,
        template_hash: str | None = None,
        features: dict[str, Any] | None = None,
        call_id: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.call_id = call_id or new_call_id()
        self.ledger = ledger
        self.template = template
        self.template_hash = template_hash
        self.features = features or {}
        self.attempts: list[Attempt] = []
        self.usage = Usage()
        self.cost_usd = 0.0
        # Deployments that used up their retries in this call; later attempts of the call skip them.
        self.skip: set[int] = set()

    def record(
        self,
        *,
        model: str,
        outcome: Outcome,
        reason: Reason | None = None,
        tier: int | None = None,
        tier_name: str | None = None,
        raw_output: str | None = None,
        error: str | None = None,
        usage: Usage | None = None,
        cost_usd: float = 0.0,
        latency_s: float = 0.0,
        compute_s: float | None = None,
        cache: Literal["exact", "semantic"] | None = None,
        cache_similarity: float | None = None,
        saved_usd: float = 0.0,
        accepted: bool | None = None,
        span: Any = None,
    ) -> Attempt:
        """Add one attempt (``reason``: why it happened), sum its usage and cost, and write it to the ledger
        (``cache_similarity``, for a semantic-cache answer, goes to the ledger row only). ``span``: the
        attempt's open trace span, ended here with the outcome (see ``promptkit.tracing``)."""
        if error is not None:
            error = scrub_secrets(error)
        spent = usage if usage is not None else Usage()
        # Typed values from promptkit's own code: built without validation (every call records one).
        record = trusted_model(
            Attempt,
            {
                "attempt": len(self.attempts) + 1,
                "model": model,
                "tier": tier,
                "tier_name": tier_name,
                "reason": reason,
                "outcome": outcome,
                "raw_output": raw_output,
                "error": error,
                "usage": spent,
                "cost_usd": cost_usd,
                "latency_s": latency_s,
                "compute_s": compute_s,
                "cache": cache,
                "saved_usd": saved_usd,
                "accepted": accepted,
            },
        )
        self.attempts.append(record)
        self.usage = self.usage + spent
        self.cost_usd += cost_usd
        if self.ledger is not None:
            # Built here from typed values: no LedgerEntry to validate on every call.
            self.ledger.record_trusted(
                {
                    "run_id": self.run_id,
                    "call_id": self.call_id,
                    "attempt": record.attempt,
                    "template": self.template,
                    "template_hash": self.template_hash,
                    "model": model,
                    "tier": tier,
                    "input_tokens": spent.input_tokens,
                    "output_tokens": spent.output_tokens,
                    "cost_usd": cost_usd,
                    "compute_s": compute_s,
                    "latency_s": latency_s,
                    "cache": cache,
                    "cache_similarity": cache_similarity,
                    "saved_usd": saved_usd,
                    "reason": record.reason,
                    "outcome": outcome,
                    "error": error,
                    "features": self.features,
                    "accepted": accepted,
                }
            )
        if span is not None or tracing.enabled():
            end_attempt(self, record, span, cache_similarity)
        return record

    @property
    def answered(self) -> bool:
        """Whether any attempt produced an answer (valid or not), as opposed to only transport faults."""
        return any(a.raw_output is not None for a in self.attempts)
