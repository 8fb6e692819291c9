"""What a cascade spent per tier, and what it saved against sending every call to its last tier."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from promptkit.ledger._rows import LedgerEntry

__all__ = ["CascadeSavings", "TierUsage", "cascade_savings", "tier_usage"]


class TierUsage(BaseModel):
    """One tier's share of a run: its attempts, how many of its answers were accepted (``answered``; an answer
    its check rejected, a failed test included, is not), tokens and compute seconds."""

    tier: int | None
    models: list[str]
    attempts: int
    answered: int
    input_tokens: int
    output_tokens: int
    compute_s: float


class CascadeSavings(BaseModel):
    """The run's compute against an estimate of every call answered by the last tier alone.

    The estimate is the last tier's mean compute per first attempt times the number of calls, so it holds
    only as far as the calls that reached that tier are typical of all of them (harder ones cost more)."""

    calls: int
    reached_last: int
    last_tier: int
    compute_s: float
    last_tier_mean_s: float
    all_last_tier_s: float
    ratio: float


def tier_usage(entries: Sequence[LedgerEntry]) -> list[TierUsage]:
    tiers: dict[int | None, TierUsage] = {}
    for e in entries:
        usage = tiers.get(e.tier)
        if usage is None:
            usage = tiers[e.tier] = TierUsage(
                tier=e.tier, models=[], attempts=0, answered=0, input_tokens=0, output_tokens=0, compute_s=0.0
            )
        if e.model not in usage.models:
            usage.models.append(e.model)
        usage.attempts += 1
        usage.answered += int(e.outcome in ("ok", "cache_hit") and e.accepted is not False)
        usage.input_tokens += e.input_tokens
        usage.output_tokens += e.output_tokens
        usage.compute_s += e.compute_s or 0.0
    return sorted(tiers.values(), key=lambda t: (t.tier is None, t.tier or 0))


def cascade_savings(entries: Sequence[LedgerEntry]) -> CascadeSavings | None:
    """None unless some call went through more than one tier (an escalation inside a call, as generate()
    does; the executor makes one call per attempt) with measured compute."""
    per_call: dict[str, set[int | None]] = {}
    for e in entries:
        per_call.setdefault(e.call_id, set()).add(e.tier)
    tiers = {t for seen in per_call.values() for t in seen if t is not None}
    if len(tiers) < 2 or not any(len(seen) > 1 for seen in per_call.values()):
        return None
    last = max(tiers)
    # A call's first attempt on the last tier is what that tier costs for one call without repairs.
    firsts: dict[str, float] = {}
    for e in entries:
        if e.tier == last and e.compute_s and e.call_id not in firsts:
            firsts[e.call_id] = e.compute_s
    if not firsts:
        return None
    calls = len(per_call)
    mean = sum(firsts.values()) / len(firsts)
    spent = sum(e.compute_s or 0.0 for e in entries)
    estimate = mean * calls
    return CascadeSavings(
        calls=calls,
        reached_last=len(firsts),
        last_tier=last,
        compute_s=spent,
        last_tier_mean_s=mean,
        all_last_tier_s=estimate,
        ratio=spent / estimate if estimate else float("nan"),
    )
