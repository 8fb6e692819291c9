"""Calibration of the semantic cache: pick the lowest threshold whose false-hit rate meets a target.

Two kinds of data:

* labelled pairs ``a, b, label`` (JSONL, CSV with a header, or a JSON list; label 1/true = the same question).
  Each pair gets the cache's blended similarity; a pair a guard refuses can never hit. The false-hit rate of
  a threshold is the share of *negative* pairs at or above it; precision and recall are over all pairs.
* GPTCache's ``mock_data.json`` (``[{"origin": ..., "similar": ...}]``, every ``similar`` a paraphrase of its
  ``origin``). It is run as GPTCache's own protocol: cache every distinct origin, query every similar; a hit
  on its own origin is correct, a hit on another is wrong. There the negatives are the mismatched pairs the
  cache itself proposes (each query against the nearest *other* origin), so the threshold and the ambiguity
  margin are chosen together, and the false-hit rate is wrong hits per query, as GPTCache reports it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from promptkit.cache._match import GUARDS, char_ngrams, guard_conflict, ngram_cosine
from promptkit.errors import CacheError, file_location

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CalibrationResult",
    "CurvePoint",
    "LabelledPairs",
    "ProtocolOutcome",
    "blended_similarity",
    "calibrate_pairs",
    "calibrate_protocol",
    "load_pairs",
    "protocol_candidates",
    "protocol_outcome",
    "threshold_curve",
    "write_semantic_config",
]

_TRUE = {"1", "true", "yes", "y", "paraphrase", "same", "match", "positive"}
_FALSE = {"0", "false", "no", "n", "different", "mismatch", "negative"}


@dataclass(frozen=True)
class LabelledPairs:
    """Pairs with labels, or (``kind == "gptcache"``) origins and their paraphrases."""

    kind: str
    a: list[str]
    b: list[str]
    labels: list[bool]
    source: str


class CurvePoint(BaseModel):
    threshold: float
    hits: int
    true_hits: int
    false_hits: int
    precision: float
    recall: float
    false_hit_rate: float


class CalibrationResult(BaseModel):
    """What calibration found. ``threshold`` is None when no threshold meets the target."""

    threshold: float | None
    margin: float | None = None
    target_false_hit: float
    precision: float | None = None
    recall: float | None = None
    false_hit_rate: float | None = None
    positives: int = 0
    negatives: int = 0
    method: str = "pairs"
    lexical_weight: float = 0.25
    curve: list[CurvePoint] = Field(default_factory=list)


def _label(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CacheError(f"label {value!r} is not one of 1/0, true/false, paraphrase/different", location=where)


def _pair(item: Any, where: str) -> tuple[str, str, bool]:
    if not isinstance(item, dict):
        raise CacheError("expected an object with a, b and label", location=where)
    for name in ("a", "b", "label"):
        if name not in item:
            raise CacheError(f"missing field {name!r}", location=f"{where}: {name}")
    a, b = item["a"], item["b"]
    if not isinstance(a, str) or not isinstance(b, str) or not a.strip() or not b.strip():
        raise CacheError("a and b must be non-empty text", location=where)
    return a, b, _label(item["label"], f"{where}: label")


def load_pairs(path: str | Path) -> LabelledPairs:
    """Read labelled pairs (JSONL, CSV, JSON) or GPTCache's mock_data.json; errors name file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CacheError(f"cannot read pairs: {exc.strerror}", location=str(path)) from None
    a: list[str] = []
    b: list[str] = []
    labels: list[bool] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"a", "b", "label"} <= set(reader.fieldnames):
            raise CacheError("a CSV of pairs needs the header a,b,label", location=file_location(path, 1))
        for line, row in enumerate(reader, start=2):
            x, y, lab = _pair(row, file_location(path, line))
            a.append(x), b.append(y), labels.append(lab)
    elif path.suffix.lower() == ".jsonl":
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CacheError(f"invalid JSON: {exc.msg}", location=file_location(path, line)) from None
            x, y, lab = _pair(item, file_location(path, line))
            a.append(x), b.append(y), labels.append(lab)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CacheError(f"invalid JSON: {exc.msg}", location=file_location(path, exc.lineno)) from None
        if not isinstance(data, list) or not data:
            raise CacheError("expected a non-empty JSON list of pairs", location=str(path))
        if isinstance(data[0], dict) and "origin" in data[0] and "similar" in data[0]:
            for i, item in enumerate(data):
                if (
                    not isinstance(item, dict)
                    or not isinstance(item.get("origin"), str)
                    or not isinstance(item.get("similar"), str)
                ):
                    raise CacheError("expected {origin, similar} text", location=f"{path}: [{i}]")
                a.append(item["origin"]), b.append(item["similar"]), labels.append(True)
            return LabelledPairs("gptcache", a, b, labels, str(path))
        for i, item in enumerate(data):
            x, y, lab = _pair(item, f"{path}: [{i}]")
            a.append(x), b.append(y), labels.append(lab)
    if not a:
        raise CacheError("no pairs found", location=str(path))
    return LabelledPairs("pairs", a, b, labels, str(path))


def blended_similarity(cosine: float, a: str, b: str, lexical_weight: float) -> float:
    """The similarity the semantic cache compares with its threshold."""
    if not lexical_weight:
        return cosine
    return (cosine + lexical_weight * ngram_cosine(char_ngrams(a), char_ngrams(b))) / (1.0 + lexical_weight)


def _grid(lo: float = -0.2, hi: float = 1.0, step: float = 0.005) -> list[float]:
    return [round(lo + i * step, 4) for i in range(int(round((hi - lo) / step)) + 1)]


def threshold_curve(
    scores: Sequence[float], labels: Sequence[bool], thresholds: Sequence[float] | None = None
) -> list[CurvePoint]:
    """Precision, recall and false-hit rate of every threshold (a score of -inf never hits)."""
    positives = sum(1 for lab in labels if lab)
    negatives = len(labels) - positives
    out = []
    for t in thresholds if thresholds is not None else _grid():
        true_hits = sum(1 for s, lab in zip(scores, labels, strict=True) if lab and s >= t)
        false_hits = sum(1 for s, lab in zip(scores, labels, strict=True) if not lab and s >= t)
        hits = true_hits + false_hits
        out.append(
            CurvePoint(
                threshold=t,
                hits=hits,
                true_hits=true_hits,
                false_hits=false_hits,
                precision=true_hits / hits if hits else 1.0,
                recall=true_hits / positives if positives else 0.0,
                false_hit_rate=false_hits / negatives if negatives else 0.0,
            )
        )
    return out


def _embed(embedder: Any, texts: list[str]) -> np.ndarray:
    import numpy as np

    unique = list(dict.fromkeys(texts))
    fn = getattr(embedder, "embed_array", None)
    matrix = np.asarray(fn(unique) if callable(fn) else embedder.embed(unique), dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms == 0, 1.0, norms)
    row = {t: i for i, t in enumerate(unique)}
    return matrix[[row[t] for t in texts]]


def calibrate_pairs(
    pairs: LabelledPairs,
    embedder: Any,
    *,
    target_false_hit: float = 0.01,
    lexical_weight: float = 0.25,
    guards: tuple[str, ...] = GUARDS,
    thresholds: Sequence[float] | None = None,
) -> CalibrationResult:
    """The lowest threshold whose false-hit rate on the negatives is at most ``target_false_hit``."""
    import numpy as np

    if pairs.kind != "pairs":
        raise CacheError(
            "calibrate_pairs takes labelled pairs; use calibrate_protocol", location=pairs.source
        )
    if not any(pairs.labels) or all(pairs.labels):
        raise CacheError("calibration needs both paraphrase and different pairs", location=pairs.source)
    va, vb = _embed(embedder, pairs.a), _embed(embedder, pairs.b)
    cosines = np.einsum("ij,ij->i", va, vb).tolist()
    scores = [
        -math.inf if guard_conflict(x, y, guards) else blended_similarity(c, x, y, lexical_weight)
        for c, x, y in zip(cosines, pairs.a, pairs.b, strict=True)
    ]
    curve = threshold_curve(scores, pairs.labels, thresholds)
    ok = [p for p in curve if p.false_hit_rate <= target_false_hit]
    best = min(ok, key=lambda p: p.threshold) if ok else None
    return CalibrationResult(
        threshold=best.threshold if best else None,
        target_false_hit=target_false_hit,
        precision=best.precision if best else None,
        recall=best.recall if best else None,
        false_hit_rate=best.false_hit_rate if best else None,
        positives=sum(pairs.labels),
        negatives=len(pairs.labels) - sum(pairs.labels),
        method="pairs",
        lexical_weight=lexical_weight,
        curve=curve,
    )


@dataclass(frozen=True)
class ProtocolOutcome:
    """Per query of the GPTCache protocol: the best candidate's blended similarity, its lead over the nearest
    candidate with another answer, whether a guard refuses it, and whether it is the right origin."""

    similarity: np.ndarray
    lead: np.ndarray
    guarded: np.ndarray
    correct: np.ndarray

    def hits(self, threshold: float, margin: float) -> np.ndarray:
        return (self.similarity >= threshold) & (self.lead >= margin) & ~self.guarded

    def table(self, threshold: float, margin: float, rows: Any = None) -> dict[str, int]:
        import numpy as np

        select = np.arange(len(self.correct)) if rows is None else np.asarray(rows)
        hit = self.hits(threshold, margin)[select]
        right = self.correct[select]
        return {
            "queries": int(len(select)),
            "correct": int((hit & right).sum()),
            "wrong": int((hit & ~right).sum()),
            "miss": int((~hit).sum()),
        }


def protocol_candidates(
    origin_vectors: np.ndarray, query_vectors: np.ndarray, k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` origins per query by cosine: (indices, cosines), best first (exact search)."""
    import numpy as np

    scores = query_vectors @ origin_vectors.T
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, 1)
    return top, np.take_along_axis(scores, top, 1)


def protocol_outcome(
    origins: Sequence[str],
    queries: Sequence[str],
    expected: Sequence[int],
    top: np.ndarray,
    cosines: np.ndarray,
    *,
    lexical_weight: float = 0.25,
    guards: tuple[str, ...] = GUARDS,
) -> ProtocolOutcome:
    """Score the GPTCache protocol the way ``SemanticCache`` decides (origins are distinct, each its own answer)."""
    import numpy as np

    n = len(queries)
    similarity = np.full(n, -np.inf)
    lead = np.full(n, np.inf)
    guarded = np.zeros(n, dtype=bool)
    correct = np.zeros(n, dtype=bool)
    for i, query in enumerate(queries):
        blended = sorted(
            (
                (blended_similarity(float(c), query, origins[j], lexical_weight), int(j))
                for j, c in zip(top[i], cosines[i], strict=True)
            ),
            reverse=True,
        )
        similarity[i], best = blended[0]
        if len(blended) > 1:
            lead[i] = blended[0][0] - blended[1][0]
        guarded[i] = guard_conflict(query, origins[best], guards) is not None
        correct[i] = best == expected[i]
    return ProtocolOutcome(similarity=similarity, lead=lead, guarded=guarded, correct=correct)


def calibrate_protocol(
    outcome: ProtocolOutcome,
    rows: Any = None,
    *,
    target_false_hit: float = 0.01,
    margins: Sequence[float] | None = None,
    thresholds: Sequence[float] | None = None,
    lexical_weight: float = 0.25,
    min_threshold: float = 0.7,
) -> CalibrationResult:
    """For each margin, the lowest threshold with wrong hits per query <= target; keep the pair with the most
    correct hits. ``rows`` selects the calibration queries (the rest stay unseen for reporting).

    The protocol has no unrelated queries, so nothing in it bounds the threshold from below: it never goes
    under ``min_threshold`` (MiniLM scores unrelated sentences below 0.3, paraphrases mostly above 0.7).
    """
    import numpy as np

    select = np.arange(len(outcome.correct)) if rows is None else np.asarray(rows)
    n = len(select)
    best: tuple[int, float, float] | None = None
    curve: list[CurvePoint] = []
    for margin in margins if margins is not None else [round(0.005 * i, 3) for i in range(13)]:
        chosen = None
        points = []
        for t in thresholds if thresholds is not None else _grid(min_threshold, 1.0):
            table = outcome.table(t, margin, select)
            hits = table["correct"] + table["wrong"]
            points.append(
                CurvePoint(
                    threshold=t,
                    hits=hits,
                    true_hits=table["correct"],
                    false_hits=table["wrong"],
                    precision=table["correct"] / hits if hits else 1.0,
                    recall=table["correct"] / n if n else 0.0,
                    false_hit_rate=table["wrong"] / n if n else 0.0,
                )
            )
            if chosen is None and table["wrong"] <= target_false_hit * n:
                chosen = (table["correct"], t)
        if chosen is not None and (best is None or chosen[0] > best[0]):
            best = (chosen[0], chosen[1], margin)
            curve = points
    if best is None:
        return CalibrationResult(
            threshold=None, target_false_hit=target_false_hit, method="gptcache-protocol", positives=n
        )
    point = next(p for p in curve if p.threshold == best[1])
    return CalibrationResult(
        threshold=best[1],
        margin=best[2],
        target_false_hit=target_false_hit,
        precision=point.precision,
        recall=point.recall,
        false_hit_rate=point.false_hit_rate,
        positives=n,
        negatives=n,
        method="gptcache-protocol",
        lexical_weight=lexical_weight,
        curve=curve,
    )


def write_semantic_config(path: str | Path, values: dict[str, float]) -> Path:
    """Set keys of ``[cache.semantic]`` (``[tool.promptkit.cache.semantic]`` in pyproject.toml) in place,
    keeping every other line as it is; the table is appended when missing. Returns the file written."""
    import re

    path = Path(path)
    table = "tool.promptkit.cache.semantic" if path.name == "pyproject.toml" else "cache.semantic"
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    except OSError as exc:
        raise CacheError(f"cannot read the config: {exc.strerror}", location=str(path)) from None
    header = re.compile(r"^\s*\[\s*" + re.escape(table).replace(r"\.", r"\s*\.\s*") + r"\s*\]\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append(f"[{table}]")
        lines += [f"{key} = {value:.4g}" for key, value in values.items()]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        for key, value in values.items():
            pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
            found = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
            if found is not None:
                lines[found] = f"{key} = {value:.4g}"
            else:
                lines.insert(end, f"{key} = {value:.4g}")
                end += 1
    try:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CacheError(f"cannot write the config: {exc.strerror}", location=str(path)) from None
    return path
