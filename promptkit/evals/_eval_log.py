"""The eval log: everything one eval run produced, as a versioned, JSON-round-trippable pydantic model.

This is the contract between the runner (which writes it) and the A/B comparison and reports (which read
it). ``EvalLog.model_dump_json()`` is the file ``promptkit eval --out log.json`` writes and
``EvalLog.model_validate_json`` reads it back. Bump ``schema_version`` on any incompatible change; a later
version must still read version 1.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["Score", "AttemptInfo", "ItemResult", "VariantInfo", "Aggregate", "EvalLog", "ResultKey"]

# (variant, model, item_id, repeat): the coordinates of one result.
ResultKey = tuple[str, str, str, int]


class Score(BaseModel):
    """One scorer's verdict on one output."""

    scorer: str
    # 0..1 for pass/fail scorers, the grade for graded ones (e.g. 1-10), seconds/dollars for limits.
    value: float
    # Against the scorer's threshold; None if the scorer has no threshold.
    passed: bool | None = None
    kind: Literal["binary", "graded"] = "binary"
    # Judge rationale, the regex that failed, a test traceback's tail...
    rationale: str | None = None
    meta: dict[str, Any] = {}


class AttemptInfo(BaseModel):
    """One attempt behind a result (a re-ask, retry or escalation is another), as the viewer shows it."""

    attempt: int
    model: str
    tier: str | None = None
    reason: str | None = None  # why it happened: None for the first, "reask", "escalation", ...
    outcome: str  # "ok", "invalid", "transport_error", "cache_hit", ...
    # Kept only when it differs from the result's ``output`` (a rejected answer), to not store it twice.
    raw_output: str | None = None
    error: str | None = None  # why it was rejected (what the re-ask told the model), scrubbed of secrets
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0


class ItemResult(BaseModel):
    """One (item, variant, model, repeat)."""

    item_id: str
    variant: str
    model: str
    repeat: int = 0
    inputs: dict[str, Any]
    expected: Any = None
    output: str | None = None  # raw model text
    parsed: Any = None  # structured output as JSON-able data
    scores: list[Score] = []
    passed: bool | None = None  # all thresholded scorers passed
    error: str | None = None  # generation failed (after re-asks), scrubbed of secrets
    latency_s: float = 0.0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False
    # Every attempt in order; optional (empty in logs written before it was recorded).
    attempts: list[AttemptInfo] = []


class VariantInfo(BaseModel):
    """One prompt variant under test."""

    name: str
    template: str
    template_hash: str
    options: dict[str, Any] = {}


class Aggregate(BaseModel):
    """A per-(variant, model) statistic over many results, e.g. the unbiased pass@k of a code scorer."""

    scorer: str
    metric: str  # e.g. "pass@1", "pass@5"
    variant: str
    model: str
    value: float
    n_items: int  # problems the value averages over
    n_samples: int  # samples per problem (the ``n`` of pass@k)


class EvalLog(BaseModel):
    """The whole run: suite identity, variants, models, scorers, every result and the CI gates."""

    schema_version: Literal[1] = 1
    suite: str
    suite_path: str | None
    suite_hash: str
    run_id: str
    started_at: float
    finished_at: float | None = None
    status: Literal["running", "complete", "interrupted", "failed"]
    seed: int
    repeats: int
    variants: list[VariantInfo]
    models: list[str]
    scorers: list[str]
    results: list[ItemResult]
    thresholds: dict[str, float] = {}  # CI gates, e.g. {"pass_rate": 0.8}
    aggregates: list[Aggregate] = []  # statistics over results (pass@k), filled when the run completes

    def frame(self) -> dict[ResultKey, ItemResult]:
        """Results indexed by ``(variant, model, item_id, repeat)``; a later duplicate replaces an earlier one."""
        return {(r.variant, r.model, r.item_id, r.repeat): r for r in self.results}
