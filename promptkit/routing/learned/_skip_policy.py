"""A learned routing policy: predicts whether the cheap tier will pass, saved as a small versioned JSON file.

    {"schema_version": 1, "format": "promptkit.routing-policy", "target": "cheap_passes",
     "features": [{"type": "onehot", "field": "kind", "values": ["easy", "hard"]}, ...],
     "model": {"kind": "logreg", "mean": [...], "scale": [...], "coef": [...], "intercept": -0.4},
     "threshold": 0.2, "trained": {"source": "...", "rows": 40, "passed": 30}}

No pickle: a policy is data, safe to load from anywhere. Features come from what the ledger records for every
call (template, kind, tags, input size), or, for policies trained on recorded benchmarks, the prompt's MiniLM
embedding or its lexical features (``{"type": "lexical", "field": "text", "idf": [...], ...}``: hashed TF-IDF
and prompt statistics, computed from ``RouteFeatures.text`` in a fraction of a millisecond, no model).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptkit.errors import RoutingError
from promptkit.routing.learned._learners import KNNModel, LogisticModel, RidgeModel, model_from_dict
from promptkit.routing.learned._lexical import LexicalFeaturizer

if TYPE_CHECKING:
    import numpy as np

    from promptkit.ledger import LedgerEntry

__all__ = [
    "POLICY_FORMAT",
    "POLICY_SCHEMA_VERSION",
    "ROUTER_FIELDS",
    "RoutingPolicy",
    "LedgerExamples",
    "ledger_examples",
    "train_from_ledger",
    "fit_pass_model",
    "router_feature_spec",
]

POLICY_FORMAT = "promptkit.routing-policy"
POLICY_SCHEMA_VERSION = 1
ROUTER_FIELDS = ("template", "kind", "tags", "input_tokens", "text")
_FAILED_ANSWER = ("invalid",)
_NO_ANSWER = ("transport_error", "error", "budget_refused", "too_long")


def _features_of(row: Mapping[str, Any] | Any) -> dict[str, Any]:
    if hasattr(row, "as_dict"):
        return dict(row.as_dict())
    return dict(row)


@dataclass
class RoutingPolicy:
    """``features`` describe how a call becomes a vector; ``model`` maps it to P(cheap tier passes)."""

    features: list[dict[str, Any]]
    model: LogisticModel | KNNModel | RidgeModel
    threshold: float = 0.2
    target: str = "cheap_passes"
    trained: dict[str, Any] = field(default_factory=dict)
    _lexical: dict[int, LexicalFeaturizer] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # -- features ---------------------------------------------------------------------------------------

    @property
    def needs_embedding(self) -> bool:
        return any(block["type"] == "embedding" for block in self.features)

    @property
    def needs_text(self) -> bool:
        """Whether the policy reads the prompt text (lexical features): ``RouteFeatures.text`` must be set."""
        return any(block["type"] == "lexical" for block in self.features)

    def _featurizer(self, index: int, block: dict[str, Any]) -> LexicalFeaturizer:
        found = self._lexical.get(index)
        if found is None:
            found = self._lexical[index] = LexicalFeaturizer.from_dict(block)
        return found

    @property
    def uses_router_features_only(self) -> bool:
        """Whether the policy can decide from ``RouteFeatures`` alone (what the Router sees)."""
        return all(block.get("field") in ROUTER_FIELDS for block in self.features)

    def vector(
        self,
        features: Mapping[str, Any] | Any,
        *,
        embedding: Sequence[float] | None = None,
        text: str | None = None,
    ) -> list[float]:
        row = _features_of(features)
        if text is None:
            # RouteFeatures keeps the text out of as_dict() (the ledger must not store prompts): read it here.
            text = getattr(features, "text", None) if not isinstance(features, Mapping) else row.get("text")
        out: list[float] = []
        for index, block in enumerate(self.features):
            kind, name = block["type"], block.get("field")
            value = row.get(name) if name else None
            if kind == "onehot":
                out.extend(1.0 if value == v else 0.0 for v in block["values"])
            elif kind == "multihot":
                present = set(value or ())
                out.extend(1.0 if v in present else 0.0 for v in block["values"])
            elif kind == "log1p":
                # A call that does not report the size gets the training mean, not an extreme zero.
                out.append(
                    float(block.get("default", 0.0)) if value is None else math.log1p(max(0.0, float(value)))
                )
            elif kind == "embedding":
                if embedding is None:
                    raise RoutingError(
                        f"this policy needs the prompt's {block.get('model', 'MiniLM')} embedding",
                        location="RoutingPolicy.predict_pass",
                    )
                if len(embedding) != int(block["dim"]):
                    raise RoutingError(
                        f"embedding has {len(embedding)} dimensions, the policy was trained on {block['dim']}",
                        location="RoutingPolicy.predict_pass",
                    )
                out.extend(float(x) for x in embedding)
            elif kind == "lexical":
                if text is None:
                    raise RoutingError(
                        "this lexical policy reads the prompt text, but the call has none (RouteFeatures.text; "
                        "generate() fills it from the last user message)",
                        location="RoutingPolicy.predict_pass",
                    )
                out.extend(self._featurizer(index, block).vector(text))
            else:
                raise RoutingError(f"unknown feature block type {kind!r}", location="RoutingPolicy.features")
        return out

    def predict_pass(
        self,
        features: Mapping[str, Any] | Any = (),
        *,
        embedding: Sequence[float] | None = None,
        text: str | None = None,
    ) -> float:
        """P(the cheap tier's answer passes) for one call (``text``: the prompt, for lexical policies)."""
        vector = self.vector(features or {}, embedding=embedding, text=text)
        return float(self.model.predict([vector])[0])

    def predict_pass_many(self, X: np.ndarray) -> np.ndarray:
        """Batch form on ready feature vectors (one row per call)."""
        return self.model.predict(X)

    # -- files ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": POLICY_SCHEMA_VERSION,
            "format": POLICY_FORMAT,
            "target": self.target,
            "threshold": self.threshold,
            "features": self.features,
            "model": self.model.to_dict(),
            "trained": self.trained,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        return save_policy(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "policy") -> RoutingPolicy:
        if not isinstance(data, dict):
            raise RoutingError("a routing policy must be a JSON object", location=where)
        if data.get("format") != POLICY_FORMAT:
            raise RoutingError(
                f"not a promptkit routing policy (format {data.get('format')!r})", location=where
            )
        version = data.get("schema_version")
        if version != POLICY_SCHEMA_VERSION:
            raise RoutingError(
                f"schema_version {version!r} is not supported (this promptkit reads {POLICY_SCHEMA_VERSION})",
                location=where,
            )
        try:
            features = list(data["features"])
            for block in features:
                if not isinstance(block, dict) or "type" not in block:
                    raise ValueError("every feature block needs a 'type'")
            model = model_from_dict(data["model"])
            threshold = float(data.get("threshold", 0.2))
            policy = cls(
                features,
                model,
                threshold,
                str(data.get("target", "cheap_passes")),
                dict(data.get("trained", {})),
            )
            width = len(policy.vector({}, embedding=[0.0] * _embedding_dim(features), text=""))
        except (KeyError, TypeError, ValueError) as exc:
            raise RoutingError(f"malformed policy: {type(exc).__name__}: {exc}", location=where) from None
        expected = len(model.mean) if hasattr(model, "mean") else model.X.shape[1]  # type: ignore[union-attr]
        if width != expected:
            raise RoutingError(
                f"the features make {width} values but the model takes {expected}", location=where
            )
        return policy

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RoutingPolicy:
        """Read a policy file; a missing, unreadable or corrupt file raises ``RoutingError`` naming it."""
        source = Path(path)
        data = read_policy_json(source)
        return cls.from_dict(data, where=str(source))


def read_policy_json(source: Path) -> Any:
    """A policy file's JSON; a missing, unreadable or corrupt file raises ``RoutingError`` naming it."""
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RoutingError(
            "routing policy file not found (train one with `promptkit route train`)", location=str(source)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutingError(f"cannot read the routing policy: {exc}", location=str(source)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RoutingError(f"corrupt routing policy: {exc.msg}", location=f"{source}:{exc.lineno}") from None


def _embedding_dim(features: list[dict[str, Any]]) -> int:
    return sum(int(b.get("dim", 0)) for b in features if b.get("type") == "embedding")


# -- training from the ledger ---------------------------------------------------------------------------


@dataclass
class LedgerExamples:
    """One row per logical call that tried the cheap tier and got an answer judged there."""

    rows: list[dict[str, Any]]
    passed: list[bool]
    skipped_calls: int = 0


def ledger_examples(entries: Iterable[LedgerEntry], *, cheap_tier: int = 0) -> LedgerExamples:
    """Label each call by whether the cheap tier produced an accepted answer.

    Calls that never tried the cheap tier (a rule or this policy skipped it) teach nothing about it and are
    left out; so are calls where the cheap tier only had transport faults (no answer to judge).
    """
    calls: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        calls.setdefault(entry.call_id, []).append(entry)
    rows: list[dict[str, Any]] = []
    passed: list[bool] = []
    skipped = 0
    for attempts in calls.values():
        cheap = [a for a in attempts if a.tier == cheap_tier]
        judged = [a for a in cheap if a.outcome not in _NO_ANSWER]
        if not judged:
            skipped += 1
            continue
        first = attempts[0]
        features = dict(first.features or {})
        features.setdefault("template", first.template)
        rows.append(features)
        passed.append(any(a.accepted is True for a in judged))
    return LedgerExamples(rows, passed, skipped)


def router_feature_spec(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def values(name: str) -> list[str]:
        return sorted({str(r[name]) for r in rows if r.get(name) is not None})

    tags = sorted({str(t) for r in rows for t in (r.get("tags") or ())})
    spec: list[dict[str, Any]] = []
    if values("template"):
        spec.append({"type": "onehot", "field": "template", "values": values("template")})
    if values("kind"):
        spec.append({"type": "onehot", "field": "kind", "values": values("kind")})
    if tags:
        spec.append({"type": "multihot", "field": "tags", "values": tags})
    sizes = [math.log1p(max(0.0, float(r.get("input_tokens") or 0))) for r in rows]
    spec.append(
        {"type": "log1p", "field": "input_tokens", "default": sum(sizes) / len(sizes) if sizes else 0.0}
    )
    return spec


def _constant_model(rate: float, width: int) -> LogisticModel:
    import numpy as np

    model = LogisticModel(l2=1.0)
    model.mean, model.scale = np.zeros(width), np.ones(width)
    model.coef = np.zeros(width)
    rate = min(max(rate, 1e-3), 1 - 1e-3)
    model.intercept = math.log(rate / (1 - rate))
    return model


def fit_pass_model(X: np.ndarray, y: np.ndarray, model: str, seed: int = 0) -> LogisticModel | KNNModel:
    """P(pass) from 0/1 labels: logistic regression or kNN; one outcome only gives a constant model."""
    if len(set(y.tolist())) < 2:
        # One outcome only: the policy is that outcome's (smoothed) rate, whatever the features.
        return _constant_model((float(y.sum()) + 0.5) / (len(y) + 1.0), X.shape[1])
    if model == "knn":
        return KNNModel().fit(X, y)
    if model != "logreg":
        raise RoutingError(f"unknown policy model {model!r}; expected 'logreg' or 'knn'", location="--model")
    return LogisticModel(l2="auto" if len(y) >= 30 else 1.0, seed=seed).fit(X, y)


def train_from_ledger(
    entries: Iterable[LedgerEntry],
    *,
    cheap_tier: int = 0,
    model: str = "logreg",
    threshold: float = 0.2,
    source: str = "ledger",
    seed: int = 0,
) -> RoutingPolicy:
    """Fit P(cheap tier passes) from ledger entries' recorded features (template, kind, tags, input size)."""
    import numpy as np

    examples = ledger_examples(entries, cheap_tier=cheap_tier)
    if not examples.rows:
        raise RoutingError(
            f"the ledger holds no call that was answered on tier {cheap_tier}: nothing to learn from",
            location=source,
        )
    spec = router_feature_spec(examples.rows)
    policy = RoutingPolicy(spec, _constant_model(0.5, 1), threshold)
    X = np.asarray([policy.vector(r) for r in examples.rows], dtype=np.float64)
    y = np.asarray(examples.passed, dtype=np.float64)
    policy.model = fit_pass_model(X, y, model, seed)
    policy.trained = {
        "source": source,
        "rows": len(y),
        "passed": int(y.sum()),
        "skipped_calls": examples.skipped_calls,
        "cheap_tier": cheap_tier,
        "model": model,
        "created": time.time(),
    }
    return policy


def save_policy(data: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a policy atomically (temp file + rename): a reader never sees half a policy."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise RoutingError(f"cannot write the policy: {exc.strerror}", location=str(target)) from None
    return target
