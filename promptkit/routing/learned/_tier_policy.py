"""The N-tier start policy: predict each tier's chance of an accepted answer, start where quality − λ·cost peaks.

    {"schema_version": 1, "format": "promptkit.tier-policy",
     "features": [{"type": "onehot", "field": "kind", "values": ["easy", "hard"]}, ...],
     "tiers": [{"tier": 0, "models": ["cheap"], "calls": 40, "passed": 31, "cost_usd": 0.00002,
                "seconds": 1.2, "model": {"kind": "logreg", ...}}, ...],
     "cost_weight": 500.0, "cost_unit": "usd", "trained": {...}}

The same decision rule as ``route eval``'s cost-aware routers (``promptkit.evals.routing``): for a call with
features x, start at the tier t maximising ``P(t passes | x) − λ · cost_t``, where ``cost_t`` is the mean dollars
a call spent on that tier in the ledger and λ (``cost_weight``) is the quality one dollar is worth (1/λ is the
willingness to pay for one more accepted answer). The cascade still escalates when the start tier fails.
When the ledger records no dollars at all (local models only), the cost is the mean compute seconds a call spent
on the tier instead (``cost_unit = "seconds"``): on a laptop, time is what a weak model's failures cost.

Learned from the ledger's real outcomes and prices: every call that reached a tier and got a judged answer there
is one example for that tier (accepted or not) and one cost sample. Upper tiers are reached mostly by calls the
lower ones failed, so their pass rates are learned on harder calls than they would see as a start tier (a
pessimistic bias toward them); ``explore`` keeps cheap tiers sampled.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptkit.errors import RoutingError
from promptkit.routing.learned._learners import KNNModel, LogisticModel, RidgeModel, model_from_dict
from promptkit.routing.learned._skip_policy import (
    RoutingPolicy,
    _constant_model,
    fit_pass_model,
    read_policy_json,
    router_feature_spec,
    save_policy,
)

if TYPE_CHECKING:
    from promptkit.ledger import LedgerEntry

__all__ = [
    "TIER_POLICY_FORMAT",
    "TIER_POLICY_SCHEMA_VERSION",
    "MIN_CALLS_PER_TIER",
    "TierStats",
    "TierPolicy",
    "train_tier_policy",
    "load_policy",
    "tier_summary",
]

TIER_POLICY_FORMAT = "promptkit.tier-policy"
TIER_POLICY_SCHEMA_VERSION = 1
# Below this many judged calls on a tier, its pass model is the tier's smoothed pass rate (features ignored) and
# training warns: a logistic fit on a handful of calls mostly memorises them.
MIN_CALLS_PER_TIER = 20
_NO_ANSWER = ("transport_error", "error", "budget_refused", "too_long", "cache_hit")


@dataclass
class TierStats:
    """One tier as trained: its pass model, the calls it learned from, the mean dollars a call spent there."""

    tier: int
    models: list[str]
    calls: int
    passed: int
    cost_usd: float
    model: LogisticModel | KNNModel | RidgeModel
    seconds: float = 0.0  # mean compute seconds per call (latency where the backend reports no compute time)

    def cost(self, unit: str) -> float:
        return self.seconds if unit == "seconds" else self.cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "models": self.models,
            "calls": self.calls,
            "passed": self.passed,
            "cost_usd": self.cost_usd,
            "seconds": self.seconds,
            "model": self.model.to_dict(),
        }


@dataclass
class TierPolicy:
    """Per-tier P(accepted) models over the router's features, and the λ that trades them against dollars."""

    features: list[dict[str, Any]]
    tiers: list[TierStats]
    cost_weight: float
    trained: dict[str, Any] = field(default_factory=dict)
    cost_unit: str = "usd"  # or "seconds": what λ trades quality against (see the module docstring)
    _vectorizer: RoutingPolicy | None = field(default=None, init=False, repr=False, compare=False)

    def _vector(self, features: Mapping[str, Any] | Any) -> list[float]:
        if self._vectorizer is None:
            # RoutingPolicy owns the feature blocks' meaning; its model is unused here.
            self._vectorizer = RoutingPolicy(self.features, self.tiers[0].model)
        return self._vectorizer.vector(features or {})

    @property
    def needs_text(self) -> bool:
        return any(block["type"] == "lexical" for block in self.features)

    def pass_probabilities(self, features: Mapping[str, Any] | Any = ()) -> list[float]:
        """P(the tier's answer is accepted) for each trained tier, cheapest first."""
        vector = [self._vector(features)]
        return [float(t.model.predict(vector)[0]) for t in self.tiers]

    def values(
        self, features: Mapping[str, Any] | Any = (), *, cost_weight: float | None = None
    ) -> list[float]:
        lam = self.cost_weight if cost_weight is None else cost_weight
        return [
            p - lam * t.cost(self.cost_unit)
            for p, t in zip(self.pass_probabilities(features), self.tiers, strict=True)
        ]

    def choose(
        self,
        features: Mapping[str, Any] | Any = (),
        *,
        cost_weight: float | None = None,
        n_tiers: int | None = None,
    ) -> int:
        """The tier index to start at (ties go to the cheaper tier); ``n_tiers`` limits it to the router's."""
        values = self.values(features, cost_weight=cost_weight)
        usable = [
            (v, t.tier)
            for v, t in zip(values, self.tiers, strict=True)
            if n_tiers is None or t.tier < n_tiers
        ]
        if not usable:
            return 0
        best = max(v for v, _ in usable)
        return min(t for v, t in usable if v == best)

    # -- files ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": TIER_POLICY_SCHEMA_VERSION,
            "format": TIER_POLICY_FORMAT,
            "features": self.features,
            "tiers": [t.to_dict() for t in self.tiers],
            "cost_weight": self.cost_weight,
            "cost_unit": self.cost_unit,
            "trained": self.trained,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        return save_policy(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "policy") -> TierPolicy:
        if not isinstance(data, dict) or data.get("format") != TIER_POLICY_FORMAT:
            raise RoutingError("not a promptkit tier policy", location=where)
        if data.get("schema_version") != TIER_POLICY_SCHEMA_VERSION:
            raise RoutingError(
                f"schema_version {data.get('schema_version')!r} is not supported "
                f"(this promptkit reads {TIER_POLICY_SCHEMA_VERSION})",
                location=where,
            )
        try:
            tiers = [
                TierStats(
                    int(t["tier"]),
                    [str(m) for m in t.get("models", [])],
                    int(t["calls"]),
                    int(t["passed"]),
                    float(t["cost_usd"]),
                    model_from_dict(t["model"]),
                    float(t.get("seconds", 0.0)),
                )
                for t in data["tiers"]
            ]
            if not tiers:
                raise ValueError("no tiers")
            unit = data.get("cost_unit", "usd")  # absent in files written before local costs were seconds
            if unit not in ("usd", "seconds"):
                raise ValueError(f"cost_unit must be 'usd' or 'seconds', got {unit!r}")
            policy = cls(
                list(data["features"]),
                tiers,
                float(data["cost_weight"]),
                dict(data.get("trained", {})),
                unit,
            )
            width = len(RoutingPolicy(policy.features, tiers[0].model).vector({}, text=""))
        except (KeyError, TypeError, ValueError) as exc:
            raise RoutingError(
                f"malformed tier policy: {type(exc).__name__}: {exc}", location=where
            ) from None
        for t in tiers:
            expected = len(t.model.mean) if hasattr(t.model, "mean") else t.model.X.shape[1]  # type: ignore[union-attr]
            if expected != width:
                raise RoutingError(
                    f"tier {t.tier}: the features make {width} values but its model takes {expected}",
                    location=where,
                )
        return policy


def load_policy(path: str | os.PathLike[str]) -> RoutingPolicy | TierPolicy:
    """Read a policy file of either kind (a tier policy, or a cheap-tier skip policy)."""
    source = Path(path)
    data = read_policy_json(source)
    if isinstance(data, dict) and data.get("format") == TIER_POLICY_FORMAT:
        return TierPolicy.from_dict(data, where=str(source))
    return RoutingPolicy.from_dict(data, where=str(source))


# -- training from the ledger ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Example:
    """One call on one tier: its features, whether the tier's answer was accepted, what the tier spent."""

    features: dict[str, Any]
    passed: bool
    cost_usd: float
    seconds: float


def _tier_examples(
    entries: Iterable[LedgerEntry],
) -> tuple[dict[int, list[_Example]], dict[int, set[str]], int]:
    calls: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        calls.setdefault(entry.call_id, []).append(entry)
    per_tier: dict[int, list[_Example]] = {}
    models: dict[int, set[str]] = {}
    unusable = 0
    for attempts in calls.values():
        first = attempts[0]
        features = dict(first.features or {})
        features.setdefault("template", first.template)
        used = False
        for tier in sorted({a.tier for a in attempts if a.tier is not None}):
            on_tier = [a for a in attempts if a.tier == tier]
            judged = [a for a in on_tier if a.outcome not in _NO_ANSWER]
            if not judged:
                continue
            used = True
            per_tier.setdefault(tier, []).append(
                _Example(
                    features,
                    any(a.accepted is True for a in judged),
                    sum(a.cost_usd for a in on_tier),
                    sum(a.compute_s if a.compute_s is not None else a.latency_s for a in on_tier),
                )
            )
            models.setdefault(tier, set()).update(a.model for a in on_tier)
        unusable += not used
    return per_tier, models, unusable


def train_tier_policy(
    entries: Iterable[LedgerEntry],
    *,
    model: str = "logreg",
    cost_weight: float | None = None,
    source: str = "ledger",
    seed: int = 0,
    min_calls: int = MIN_CALLS_PER_TIER,
) -> tuple[TierPolicy, list[str]]:
    """Fit one P(accepted) model per tier from the ledger, plus each tier's mean cost per call.

    Returns the policy and warnings (tiers with fewer than ``min_calls`` judged calls, which get a constant
    pass rate). ``cost_weight`` (λ) defaults to 1 / (2 × the dearest tier's mean cost): an accepted answer is
    worth twice what the dearest tier charges for one. The cost is in dollars, or in compute seconds when no
    call in the ledger cost any (local models only).
    """
    import numpy as np

    per_tier, models, unusable = _tier_examples(entries)
    if not per_tier:
        raise RoutingError(
            "the ledger holds no call with a judged answer: nothing to learn from", location=source
        )
    rows = [e.features for examples in per_tier.values() for e in examples]
    spec = router_feature_spec(rows)
    vectorizer = RoutingPolicy(spec, _constant_model(0.5, 1))
    warnings: list[str] = []
    top = max(per_tier)
    missing = [t for t in range(top + 1) if t not in per_tier]
    if missing:
        warnings.append(f"tier(s) {missing} have no judged call in the ledger: the policy never starts there")
    stats: list[TierStats] = []
    for tier in sorted(per_tier):
        examples = per_tier[tier]
        X = np.asarray([vectorizer.vector(e.features) for e in examples], dtype=np.float64)
        y = np.asarray([e.passed for e in examples], dtype=np.float64)
        if len(y) < min_calls:
            warnings.append(
                f"tier {tier}: only {len(y)} judged call(s), fewer than the {min_calls} needed to learn from "
                f"features; using its pass rate ({int(y.sum())}/{len(y)}) for every call"
            )
            fitted: Any = _constant_model((float(y.sum()) + 0.5) / (len(y) + 1.0), X.shape[1])
        else:
            fitted = fit_pass_model(X, y, model, seed)
        cost = float(np.mean([e.cost_usd for e in examples]))
        seconds = float(np.mean([e.seconds for e in examples]))
        stats.append(
            TierStats(tier, sorted(models.get(tier, ())), len(y), int(y.sum()), cost, fitted, seconds)
        )
    unit = "usd" if max(t.cost_usd for t in stats) > 0 else "seconds"
    dearest = max(t.cost(unit) for t in stats)
    if cost_weight is None:
        cost_weight = 1.0 / (2.0 * dearest) if dearest > 0 else 0.0
    if cost_weight < 0 or not math.isfinite(cost_weight):
        raise RoutingError(
            f"cost_weight must be a finite number >= 0, got {cost_weight}", location="--cost-weight"
        )
    if dearest <= 0:
        warnings.append(
            "the ledger records no cost on any tier: the policy starts at the tier most likely to pass"
        )
    policy = TierPolicy(spec, stats, float(cost_weight), cost_unit=unit)
    policy.trained = {
        "source": source,
        "calls": sum(t.calls for t in stats),
        "unusable_calls": unusable,
        "model": model,
        "min_calls_per_tier": min_calls,
        "warnings": warnings,
        "created": time.time(),
        "starts": _starts(policy, per_tier),
    }
    return policy, warnings


def _starts(policy: TierPolicy, per_tier: Mapping[int, list[_Example]]) -> list[dict[str, Any]]:
    """Where the policy starts each kind of call the ledger holds (by template and kind), for a call of the
    kind's median input size: what ``route train`` shows, so a user sees the decisions, not only the rates."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for examples in per_tier.values():
        for e in examples:
            key = (str(e.features.get("template") or "?"), str(e.features.get("kind") or "-"))
            groups.setdefault(key, []).append(e.features)
    starts = []
    for (template, kind), rows in sorted(groups.items()):
        sizes = sorted(float(r.get("input_tokens") or 0) for r in rows)
        typical = {**rows[0], "input_tokens": sizes[len(sizes) // 2]}
        starts.append(
            {
                "template": template,
                "kind": kind,
                "examples": len(rows),
                "start_tier": policy.choose(typical),
                "p_accepted": [round(p, 3) for p in policy.pass_probabilities(typical)],
            }
        )
    return starts


def tier_summary(policy: TierPolicy) -> Sequence[str]:
    lines = [
        f"tier {t.tier} ({', '.join(t.models) or '?'}): {t.calls} calls, {t.passed} accepted, "
        + (f"{t.seconds:.1f} s per call" if policy.cost_unit == "seconds" else f"${t.cost_usd:.6f} per call")
        for t in policy.tiers
    ]
    for start in policy.trained.get("starts", []):
        chances = " / ".join(f"{p:.2f}" for p in start["p_accepted"])
        lines.append(
            f"{start['template']} ({start['kind']}): starts at tier {start['start_tier']} "
            f"(P(accepted) per tier {chances}; {start['examples']} tier outcome(s) in the ledger)"
        )
    return lines
