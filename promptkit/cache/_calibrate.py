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
  ``fit_protocol_scorer`` also fits the learned pair scorer on those queries (see ``_score``); then the
  threshold is chosen together with the scorer's minimum confidence instead of the margin.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from promptkit.cache._match import GUARDS, guard_conflict
from promptkit.cache._score import (
    MATCH_FEATURES,
    PairClassifier,
    PairScorer,
    blended_similarity,
    choose,
    fit_pair_classifier,
    fit_pair_scorer,
    match_features,
)
from promptkit.errors import CacheError, file_location

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CalibrationResult",
    "CurvePoint",
    "HeldOut",
    "LabelledPairs",
    "Progress",
    "ProtocolOutcome",
    "blended_similarity",
    "calibrate_pairs",
    "calibrate_protocol",
    "cross_fitted_outcome",
    "fit_protocol_scorer",
    "held_out_part",
    "load_pairs",
    "pair_similarities",
    "protocol_candidates",
    "protocol_outcome",
    "split_pairs",
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


class HeldOut(BaseModel):
    """The chosen settings measured on pairs calibration never saw. ``hit_rate``: the share of the same-question
    pairs that hit (what a cache serves of the questions it could serve); ``false_hit_rate``: the share of the
    different-question pairs that hit."""

    pairs: int
    positives: int
    negatives: int
    hits: int
    true_hits: int
    false_hits: int
    precision: float
    hit_rate: float
    false_hit_rate: float
    curve: list[CurvePoint] = Field(default_factory=list)


class CalibrationResult(BaseModel):
    """What calibration found. ``threshold`` is None when no threshold meets the target.

    With a learned ``scorer`` the ambiguity rule is ``confidence`` (its minimum share of the best answer);
    without one it is ``margin``. ``min_lead`` is whichever applies.
    """

    threshold: float | None
    margin: float | None = None
    confidence: float | None = None
    scorer: PairScorer | None = None
    classifier: PairClassifier | None = None
    target_false_hit: float
    precision: float | None = None
    recall: float | None = None
    false_hit_rate: float | None = None
    positives: int = 0
    negatives: int = 0
    method: str = "pairs"
    lexical_weight: float = 0.25
    curve: list[CurvePoint] = Field(default_factory=list)
    held_out: HeldOut | None = None

    @property
    def min_lead(self) -> float | None:
        return self.confidence if self.scorer is not None else self.margin

    def config_values(self) -> dict[str, Any]:
        """The ``[cache.semantic]`` keys this result sets (nothing when no threshold met the target)."""
        if self.threshold is None:
            return {}
        # The threshold's meaning depends on the classifier: one left from an earlier calibration must go.
        values: dict[str, Any] = {
            "threshold": self.threshold,
            "classifier": self.classifier.model_dump() if self.classifier is not None else None,
        }
        if self.scorer is not None:
            values["confidence"] = self.confidence
            values["scorer"] = self.scorer.model_dump()
        else:
            values["scorer"] = None  # a scorer left from an earlier calibration would override the margin
            if self.margin is not None:
                values["margin"] = self.margin
        return values


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
    """Read labelled pairs (JSONL, CSV, JSON, each optionally gzipped: ``pairs.jsonl.gz``) or GPTCache's
    mock_data.json; errors name file, line and field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CacheError(f"cannot read pairs: {exc.strerror}", location=str(path)) from None
    suffix = path.suffix.lower()
    if suffix == ".gz":  # pairs.jsonl.gz: the format is the suffix before .gz
        import gzip
        import zlib

        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise CacheError(f"not a readable gzip file: {exc}", location=str(path)) from None
        suffix = Path(path.stem).suffix.lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CacheError(f"not UTF-8 text (byte {exc.start})", location=str(path)) from None
    a: list[str] = []
    b: list[str] = []
    labels: list[bool] = []
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"a", "b", "label"} <= set(reader.fieldnames):
            raise CacheError("a CSV of pairs needs the header a,b,label", location=file_location(path, 1))
        for line, row in enumerate(reader, start=2):
            x, y, lab = _pair(row, file_location(path, line))
            a.append(x)
            b.append(y)
            labels.append(lab)
    elif suffix == ".jsonl":
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CacheError(f"invalid JSON: {exc.msg}", location=file_location(path, line)) from None
            x, y, lab = _pair(item, file_location(path, line))
            a.append(x)
            b.append(y)
            labels.append(lab)
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
                a.append(item["origin"])
                b.append(item["similar"])
                labels.append(True)
            return LabelledPairs("gptcache", a, b, labels, str(path))
        for i, item in enumerate(data):
            x, y, lab = _pair(item, f"{path}: [{i}]")
            a.append(x)
            b.append(y)
            labels.append(lab)
    if not a:
        raise CacheError("no pairs found", location=str(path))
    return LabelledPairs("pairs", a, b, labels, str(path))


def _grid(lo: float = -0.2, hi: float = 1.0, step: float = 0.005) -> list[float]:
    return [round(lo + i * step, 4) for i in range(int(round((hi - lo) / step)) + 1)]


def threshold_curve(
    scores: Sequence[float], labels: Sequence[bool], thresholds: Sequence[float] | None = None
) -> list[CurvePoint]:
    """Precision, recall and false-hit rate of every threshold (a score of -inf never hits)."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    positives = int(y.sum())
    negatives = len(y) - positives
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    grid = list(thresholds if thresholds is not None else _grid())
    # Scores at or above t: the count past the first index where t would go.
    true_counts = len(pos) - np.searchsorted(pos, grid, side="left")
    false_counts = len(neg) - np.searchsorted(neg, grid, side="left")
    out = []
    for t, tp, fp in zip(grid, true_counts.tolist(), false_counts.tolist(), strict=True):
        hits = tp + fp
        out.append(
            CurvePoint(
                threshold=t,
                hits=hits,
                true_hits=tp,
                false_hits=fp,
                precision=tp / hits if hits else 1.0,
                recall=tp / positives if positives else 0.0,
                false_hit_rate=fp / negatives if negatives else 0.0,
            )
        )
    return out


Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` during long calibration steps (embedding, scoring, fitting)."""


def _embed(
    embedder: Any, texts: list[str], progress: Progress | None = None, chunk: int = 1000
) -> np.ndarray:
    """Unit vectors for ``texts``, embedding each distinct text once, ``chunk`` texts a call (for progress)."""
    import numpy as np

    unique = list(dict.fromkeys(texts))
    fn = getattr(embedder, "embed_array", None)
    parts = []
    for start in range(0, len(unique), chunk):
        block = unique[start : start + chunk]
        parts.append(np.asarray(fn(block) if callable(fn) else embedder.embed(block), dtype=np.float32))
        if progress is not None:
            progress("embedding", start + len(block), len(unique))
    matrix = np.vstack(parts) if parts else np.zeros((0, 1), dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms == 0, 1.0, norms)
    row = {t: i for i, t in enumerate(unique)}
    return matrix[[row[t] for t in texts]]


def held_out_part(a: str, b: str, share: float) -> bool:
    """Whether a pair belongs to the held-out part: a hash of its two texts (in either order), so the split
    is the same on every run and machine, and a pair listed twice lands in one part."""
    digest = hashlib.sha256("\0".join(sorted((a, b))).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def split_pairs(pairs: LabelledPairs, held_out: float = 0.3) -> tuple[LabelledPairs, LabelledPairs]:
    """(calibration part, held-out part) of labelled pairs, by ``held_out_part``."""
    parts: tuple[tuple[list[str], list[str], list[bool]], ...] = (([], [], []), ([], [], []))
    for x, y, lab in zip(pairs.a, pairs.b, pairs.labels, strict=True):
        a, b, labels = parts[held_out_part(x, y, held_out)]
        a.append(x)
        b.append(y)
        labels.append(lab)
    return (
        LabelledPairs(pairs.kind, *parts[0], pairs.source),
        LabelledPairs(pairs.kind, *parts[1], f"{pairs.source} (held out)"),
    )


def pair_similarities(
    a: Sequence[str],
    b: Sequence[str],
    cosines: Sequence[float],
    *,
    lexical_weight: float = 0.25,
    guards: tuple[str, ...] = GUARDS,
    classifier: PairClassifier | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """What the semantic cache compares with its threshold when ``b`` is cached and ``a`` is asked: the
    cache's own ``choose`` on ``b`` alone; -inf where a guard refuses the hit (it can never hit)."""
    import numpy as np

    out = np.empty(len(a))
    every = max(1, len(a) // 50)
    for i, (x, y, c) in enumerate(zip(a, b, cosines, strict=True)):
        if guard_conflict(x, y, guards):
            out[i] = -np.inf
        else:
            choice = choose(x, [y], [float(c)], [0], lexical_weight=lexical_weight, classifier=classifier)
            out[i] = choice.similarity  # type: ignore[union-attr]
        if progress is not None and ((i + 1) % every == 0 or i + 1 == len(a)):
            progress("scoring", i + 1, len(a))
    return out


def _match_rows(pairs: LabelledPairs, cosines: np.ndarray, progress: Progress | None) -> np.ndarray:
    import numpy as np

    rows = np.empty((len(pairs.a), len(MATCH_FEATURES)))
    every = max(1, len(rows) // 50)
    for i, (x, y, c) in enumerate(zip(pairs.a, pairs.b, cosines, strict=True)):
        rows[i] = match_features(x, [y], [float(c)])[0]
        if progress is not None and ((i + 1) % every == 0 or i + 1 == len(rows)):
            progress("features", i + 1, len(rows))
    return rows


def _cross_fitted_probabilities(
    rows: np.ndarray, labels: list[bool], folds: int, l2: float, where: str
) -> np.ndarray:
    """Each pair's probability from a classifier fitted on the other folds (a fixed, hash-free assignment:
    pair i goes to fold i mod folds), so the threshold is calibrated on scores of pairs the fit never saw."""
    import numpy as np

    y = np.asarray(labels, dtype=bool)
    out = np.empty(len(y))
    fold = np.arange(len(y)) % folds
    for k in range(folds):
        held = fold == k
        model = fit_pair_classifier(rows[~held], y[~held].tolist(), l2=l2, where=where)
        out[held] = model.probability(rows[held])
    return out


def calibrate_pairs(
    pairs: LabelledPairs,
    embedder: Any,
    *,
    target_false_hit: float = 0.01,
    lexical_weight: float = 0.25,
    guards: tuple[str, ...] = GUARDS,
    thresholds: Sequence[float] | None = None,
    held_out: float = 0.3,
    learn: bool = False,
    l2: float = 1.0,
    progress: Progress | None = None,
) -> CalibrationResult:
    """The lowest threshold whose false-hit rate on the calibration part's negatives is at most
    ``target_false_hit``, measured on the held-out part (``held_out``: its share of the pairs, split by
    ``split_pairs``; 0 calibrates and reports on all of them).

    Scores are what the cache's lookup computes (``pair_similarities``). With ``learn``, a ``PairClassifier`` is
    fitted on the calibration part and its probability is the score; the threshold is chosen on cross-fitted
    probabilities (each pair scored by a classifier fitted without it).
    """
    import numpy as np

    if pairs.kind != "pairs":
        raise CacheError(
            "calibrate_pairs takes labelled pairs; use calibrate_protocol", location=pairs.source
        )
    if not any(pairs.labels) or all(pairs.labels):
        raise CacheError("calibration needs both paraphrase and different pairs", location=pairs.source)
    if not 0.0 <= held_out < 1.0:
        raise CacheError(f"held_out must be in [0, 1), got {held_out}", location=pairs.source)
    fit, report = split_pairs(pairs, held_out) if held_out else (pairs, None)
    for part in (fit, report):
        if part is not None and (not any(part.labels) or all(part.labels)):
            raise CacheError(
                f"the {'held-out' if part is report else 'calibration'} part ({held_out:.0%} held out) lacks "
                "paraphrase or different pairs: give more pairs, or calibrate on all of them (held out 0)",
                location=pairs.source,
            )
    vectors = _embed(embedder, [*pairs.a, *pairs.b], progress)
    n = len(pairs.a)
    cosines = dict(
        zip(
            zip(pairs.a, pairs.b, strict=True),
            np.einsum("ij,ij->i", vectors[:n], vectors[n:]).tolist(),
            strict=True,
        )
    )

    def cos_of(part: LabelledPairs) -> np.ndarray:
        return np.array([cosines[x, y] for x, y in zip(part.a, part.b, strict=True)])

    classifier = None
    if learn:
        rows = _match_rows(fit, cos_of(fit), progress)
        if progress is not None:
            progress("fitting", 0, 1)
        scores = _cross_fitted_probabilities(rows, fit.labels, 5, l2, fit.source)
        classifier = fit_pair_classifier(rows, fit.labels, l2=l2, where=fit.source)
        if progress is not None:
            progress("fitting", 1, 1)
        refused = np.array([bool(guard_conflict(x, y, guards)) for x, y in zip(fit.a, fit.b, strict=True)])
        scores[refused] = -np.inf
        grid = thresholds if thresholds is not None else _grid(0.0, 1.0, 0.001)
    else:
        scores = pair_similarities(
            fit.a, fit.b, cos_of(fit), lexical_weight=lexical_weight, guards=guards, progress=progress
        )
        grid = thresholds if thresholds is not None else _grid()
    curve = threshold_curve(scores, fit.labels, grid)
    ok = [p for p in curve if p.false_hit_rate <= target_false_hit]
    best = min(ok, key=lambda p: p.threshold) if ok else None
    figures = None
    if report is not None:
        held_scores = pair_similarities(
            report.a, report.b, cos_of(report), lexical_weight=lexical_weight, guards=guards,
            classifier=classifier, progress=progress,
        )  # fmt: skip
        held_curve = threshold_curve(held_scores, report.labels, grid)
        at = (
            threshold_curve(held_scores, report.labels, [best.threshold])[0]
            if best is not None
            else CurvePoint(threshold=math.inf, hits=0, true_hits=0, false_hits=0, precision=1.0, recall=0.0,
                            false_hit_rate=0.0)
        )  # fmt: skip
        figures = HeldOut(
            pairs=len(report.labels), positives=sum(report.labels), negatives=len(report.labels) - sum(report.labels),
            hits=at.hits, true_hits=at.true_hits, false_hits=at.false_hits, precision=at.precision,
            hit_rate=at.recall, false_hit_rate=at.false_hit_rate, curve=held_curve,
        )  # fmt: skip
    return CalibrationResult(
        threshold=best.threshold if best else None,
        target_false_hit=target_false_hit,
        precision=best.precision if best else None,
        recall=best.recall if best else None,
        false_hit_rate=best.false_hit_rate if best else None,
        positives=sum(fit.labels),
        negatives=len(fit.labels) - sum(fit.labels),
        method="pairs+classifier" if learn else "pairs",
        lexical_weight=lexical_weight,
        classifier=classifier,
        held_out=figures,
        curve=curve,
    )


@dataclass(frozen=True)
class ProtocolOutcome:
    """Per query of the GPTCache protocol: the chosen candidate's blended similarity, its lead (over the
    nearest candidate with another answer; with a learned ``scorer``, the scorer's confidence), whether a
    guard refuses it, and whether it is the right origin."""

    similarity: np.ndarray
    lead: np.ndarray
    guarded: np.ndarray
    correct: np.ndarray
    scorer: PairScorer | None = None

    def hits(self, threshold: float, min_lead: float) -> np.ndarray:
        """``min_lead``: the margin, or with a learned scorer the minimum confidence."""
        return (self.similarity >= threshold) & (self.lead >= min_lead) & ~self.guarded

    def table(self, threshold: float, min_lead: float, rows: Any = None) -> dict[str, int]:
        import numpy as np

        select = np.arange(len(self.correct)) if rows is None else np.asarray(rows)
        hit = self.hits(threshold, min_lead)[select]
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
    scorer: PairScorer | None = None,
) -> ProtocolOutcome:
    """Score the GPTCache protocol the way ``SemanticCache`` decides (origins are distinct, each its own answer;
    both call ``_score.choose``)."""
    import numpy as np

    n = len(queries)
    similarity = np.full(n, -np.inf)
    lead = np.full(n, np.inf)
    guarded = np.zeros(n, dtype=bool)
    correct = np.zeros(n, dtype=bool)
    for i, query in enumerate(queries):
        candidates = [int(j) for j in top[i]]
        choice = choose(
            query,
            [origins[j] for j in candidates],
            [float(c) for c in cosines[i]],
            candidates,
            lexical_weight=lexical_weight,
            scorer=scorer,
        )
        if choice is None:
            continue
        best = candidates[choice.best]
        similarity[i], lead[i] = choice.similarity, choice.lead
        guarded[i] = guard_conflict(query, origins[best], guards) is not None
        correct[i] = best == expected[i]
    return ProtocolOutcome(similarity=similarity, lead=lead, guarded=guarded, correct=correct, scorer=scorer)


def fit_protocol_scorer(
    origins: Sequence[str],
    queries: Sequence[str],
    expected: Sequence[int],
    top: np.ndarray,
    cosines: np.ndarray,
    rows: Any = None,
    *,
    l2: float = 1.0,
) -> PairScorer:
    """Fit the learned pair scorer on the protocol's queries ``rows`` (all when None): each query against its
    top-k origins, the right origin the positive. Fit on the calibration rows only, never the reported ones."""
    import numpy as np

    select = range(len(queries)) if rows is None else [int(i) for i in np.asarray(rows)]
    groups = []
    for i in select:
        candidates = [int(j) for j in top[i]]
        right = candidates.index(expected[i]) if expected[i] in candidates else None
        groups.append((queries[i], [origins[j] for j in candidates], [float(c) for c in cosines[i]], right))
    return fit_pair_scorer(groups, l2=l2, where="GPTCache protocol calibration rows")


def cross_fitted_outcome(
    origins: Sequence[str],
    queries: Sequence[str],
    expected: Sequence[int],
    top: np.ndarray,
    cosines: np.ndarray,
    rows: Any = None,
    *,
    folds: int = 10,
    seed: int = 0,
    lexical_weight: float = 0.25,
    guards: tuple[str, ...] = GUARDS,
    l2: float = 1.0,
) -> ProtocolOutcome:
    """The protocol outcome of the learned scorer on ``rows`` (all when None), each query scored by a scorer
    fitted on the *other* folds of ``rows`` (seeded assignment). Calibrate on this, not on the outcome of a
    scorer fitted on the same queries: that one is sure of its own training queries, so a confidence chosen
    there lets through more wrong hits on new ones. Rows outside ``rows`` stay misses; ``scorer`` is the
    one fitted on all of ``rows``, the one to deploy.

    Ten folds by default: each inner scorer sees 9/10 of the rows, so it is nearly as sure as the deployed one
    and the confidence calibrated on it is not needlessly strict (with 4 folds, a 1% target gave 0.8% wrong
    hits out of fold on GPTCache's data, and fewer right ones).
    """
    import numpy as np

    select = np.arange(len(queries)) if rows is None else np.asarray(rows, dtype=np.int64)
    if folds < 2 or len(select) < folds:
        raise CacheError(
            f"cross-fitting needs at least 2 folds and a query per fold ({len(select)} queries, {folds} folds)",
            location="GPTCache protocol calibration rows",
        )
    n = len(queries)
    similarity, lead = np.full(n, -np.inf), np.full(n, -np.inf)
    guarded, correct = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    parts = np.array_split(np.random.default_rng(seed).permutation(select), folds)
    for i, held in enumerate(parts):
        fit_rows = np.concatenate([p for j, p in enumerate(parts) if j != i])
        scorer = fit_protocol_scorer(origins, queries, expected, top, cosines, fit_rows, l2=l2)
        part = protocol_outcome(
            origins, [queries[r] for r in held], [expected[r] for r in held], top[held], cosines[held],
            lexical_weight=lexical_weight, guards=guards, scorer=scorer,
        )  # fmt: skip
        similarity[held], lead[held] = part.similarity, part.lead
        guarded[held], correct[held] = part.guarded, part.correct
    final = fit_protocol_scorer(origins, queries, expected, top, cosines, select, l2=l2)
    return ProtocolOutcome(similarity=similarity, lead=lead, guarded=guarded, correct=correct, scorer=final)


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
    correct hits. ``rows`` selects the calibration queries (the rest stay unseen for reporting). With a learned
    scorer (``outcome.scorer``) the minimum confidence takes the margin's place (``margins`` are then
    confidences; default 0.30 to 0.99).

    The protocol has no unrelated queries, so nothing in it bounds the threshold from below: it never goes
    under ``min_threshold`` (MiniLM scores unrelated sentences below 0.3, paraphrases mostly above 0.7).
    """
    import numpy as np

    select = np.arange(len(outcome.correct)) if rows is None else np.asarray(rows)
    n = len(select)
    best: tuple[int, float, float] | None = None
    curve: list[CurvePoint] = []
    learned = outcome.scorer is not None
    if margins is None:
        margins = (
            [round(0.3 + 0.01 * i, 2) for i in range(70)]
            if learned
            else [round(0.005 * i, 3) for i in range(13)]
        )
    for margin in margins:
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
            threshold=None,
            target_false_hit=target_false_hit,
            method="gptcache-protocol",
            positives=n,
            scorer=outcome.scorer,
        )
    point = next(p for p in curve if p.threshold == best[1])
    return CalibrationResult(
        threshold=best[1],
        margin=None if learned else best[2],
        confidence=best[2] if learned else None,
        scorer=outcome.scorer,
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


def _toml(value: Any, where: str) -> str:
    """One TOML value on one line: numbers, strings, lists and (inline) tables, as the config keys need."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CacheError(f"{value!r} cannot be written to the config", location=where)
        return repr(round(value, 6))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v, where) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v, f'{where}.{k}')}" for k, v in value.items()) + " }"
    raise CacheError(f"cannot write a {type(value).__name__} to the config", location=where)


def write_semantic_config(path: str | Path, values: dict[str, Any]) -> Path:
    """Set keys of ``[cache.semantic]`` (``[tool.promptkit.cache.semantic]`` in pyproject.toml) in place,
    keeping every other line as it is; the table is appended when missing. Returns the file written.

    Values are numbers, strings, lists or tables (written inline: ``scorer = { version = "pair-v2", ... }``);
    None removes the key.
    """
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
        lines += [
            f"{key} = {_toml(value, f'{path}: {table}.{key}')}"
            for key, value in values.items()
            if value is not None
        ]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        for key, value in values.items():
            pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
            found = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
            if value is None:
                if found is not None:
                    del lines[found]
                    end -= 1
                continue
            line = f"{key} = {_toml(value, f'{path}: {table}.{key}')}"
            if found is not None:
                lines[found] = line
            else:
                lines.insert(end, line)
                end += 1
    try:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CacheError(f"cannot write the config: {exc.strerror}", location=str(path)) from None
    return path
