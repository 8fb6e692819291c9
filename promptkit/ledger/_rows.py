"""One row per attempt, and the sums the ledger reports."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["LedgerEntry", "LedgerTotals", "RunSummary", "OUTCOMES", "REASONS", "SUCCESS_OUTCOMES"]

# The vocabulary generate() and the router write; the ledger stores any string but sums by these.
OUTCOMES = ("ok", "invalid", "transport_error", "error", "budget_refused", "cache_hit", "too_long")
SUCCESS_OUTCOMES = ("ok", "cache_hit")
REASONS = ("reask", "escalation", "fallback", "retry", "learned_skip")


class LedgerEntry(BaseModel):
    """One attempt of one logical call (``call_id``); a call may take several attempts."""

    run_id: str
    ts: float = Field(default_factory=time.time)
    call_id: str
    attempt: int = 1
    template: str | None = None
    template_hash: str | None = None
    model: str
    tier: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    compute_s: float | None = None
    latency_s: float = 0.0
    cache: Literal["exact", "semantic"] | None = None
    cache_similarity: float | None = None
    saved_usd: float = 0.0
    # Why this attempt happened: None (the first), "reask", "escalation", "fallback", "retry".
    reason: str | None = None
    # "ok" | "invalid" | "transport_error" | "error" | "budget_refused" | "cache_hit" | "too_long"
    outcome: str
    error: str | None = None
    # Input features for a learned router (input size, template tags...). Never request bodies.
    features: dict[str, Any] = Field(default_factory=dict)
    accepted: bool | None = None


class LedgerTotals(BaseModel):
    """Sums over a run (or the whole ledger).

    ``failures`` counts calls none of whose attempts succeeded; ``failed_attempts`` counts attempts that did not.
    """

    calls: int = 0
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    compute_s: float = 0.0
    retries: int = 0
    escalations: int = 0
    fallbacks: int = 0
    cache_hits: int = 0
    saved_usd: float = 0.0
    failures: int = 0
    failed_attempts: int = 0
    latency_s: float = 0.0


class RunSummary(BaseModel):
    run_id: str
    started_at: float
    name: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    totals: LedgerTotals
