"""The second stage of a semantic lookup: score the index's candidates, pick the best answer, say how clear
the choice is. ``SemanticCache`` and the GPTCache protocol simulation both call ``choose``, so calibration
measures exactly what the cache does.

Two scorers:

* blend (the default; nothing to learn): ``(cosine + w * trigram) / (1 + w)``; the lead is the best
  similarity minus that of the nearest candidate holding another answer (compared with ``margin``).
* learned (``PairScorer``, fitted by ``promptkit cache calibrate``): a linear score over the pair features in
  ``FEATURES``, trained listwise (a softmax over one query's candidates). Candidates are ranked by it, and the
  lead is the softmax share of the best answer (compared with ``confidence``). The threshold still applies to
  the blended similarity, so a question unlike everything cached stays a miss whatever the ranking says.

Why learned: sentence embeddings blur near-duplicate cached questions; the words a paraphrase keeps (names,
rare terms, phrasing), the order it keeps them in, and the candidates' relative standing separate them better
than cosine alone. Order matters because two near-duplicate cached questions often hold the same words; a
paraphrase of one follows that one's sequence (the longest common subsequence features).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from promptkit.cache._match import GUARDS, _content, _words, guard_conflict
from promptkit.errors import CacheError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "FEATURES",
    "MATCH_FEATURES",
    "Choice",
    "PairClassifier",
    "PairScorer",
    "blend",
    "blended_similarity",
    "choose",
    "fit_pair_classifier",
    "fit_pair_scorer",
    "match_features",
    "TextProfile",
    "pair_features",
    "text_profile",
]

FEATURES: tuple[str, ...] = (
    "cosine",  # embedding cosine
    "trigram",  # character-trigram cosine
    "jaccard",  # content words
    "covers_question",  # share of the question's content words the candidate has
    "covers_cached",  # share of the candidate's content words the question has
    "length_ratio",  # shorter / longer, in words
    "cosine_lead",  # cosine minus the best other candidate's
    "trigram_lead",  # trigram minus the best other candidate's
    "rare_overlap",  # question words in the candidate, weighted by rarity among the candidates
    "stem_jaccard",  # content words with common suffixes cut
    "bigram_jaccard",  # word pairs: kept phrasing
    "char4",  # character 4-gram cosine
    "char5",  # character 5-gram cosine
    # pair-v2: word order, as the longest common subsequence (LCS) over each text's length
    "lcs_stems_question",  # LCS of the content-word stems / the question's count
    "lcs_stems_cached",  # the same / the candidate's count
    "lcs_stems_lead",  # their F-measure minus the best other candidate's
    "lcs_words_question",  # LCS of all the words / the question's count
    "lcs_words_cached",  # the same / the candidate's count
    "lcs_words_lead",  # their F-measure minus the best other candidate's
)
# A pair-v1 scorer (fitted before the LCS features existed) has weights for the first 13 only.
_V1_FEATURES = 13

_SUFFIX = re.compile(r"(?:ing|ed|es|s|ly)$")


def _checked_weights(value: tuple[float, ...], names: Sequence[str], which: str = "") -> tuple[float, ...]:
    """``value`` when it holds one finite weight per feature in ``names``; else ValueError saying why."""
    if len(value) != len(names):
        raise ValueError(
            f"expected {len(names)} weights{which} (one per feature {list(names)}), got {len(value)}"
        )
    if not all(math.isfinite(v) for v in value):
        raise ValueError("weights must be finite numbers")
    return value


class PairScorer(BaseModel):
    """Weights of the learned scorer, one per name in ``FEATURES`` (``[cache.semantic] scorer`` in the config).

    Fitted for one embedder: its cosines are features, so refit after changing the embedding model.
    """

    model_config = ConfigDict(frozen=True)

    version: Literal["pair-v1", "pair-v2"] = "pair-v2"
    weights: tuple[float, ...]

    @field_validator("weights")
    @classmethod
    def _one_per_feature(cls, value: tuple[float, ...], info: ValidationInfo) -> tuple[float, ...]:
        version = info.data.get("version", "pair-v2")  # validated first: it is declared first
        names = FEATURES if version == "pair-v2" else FEATURES[:_V1_FEATURES]
        return _checked_weights(value, names, f" for {version}")

    def vector(self) -> np.ndarray:
        """The weights over every feature in ``FEATURES`` (a pair-v1 scorer gives the newer ones no weight)."""
        import numpy as np

        out = np.zeros(len(FEATURES))
        out[: len(self.weights)] = self.weights
        return out


@dataclass(frozen=True)
class Choice:
    """The chosen candidate (an index into the candidates given) and how clearly it won.

    ``lead``: with the blend, similarity minus ``runner_up`` (infinite when no candidate holds another
    answer); with a learned scorer, ``confidence``. A hit needs ``lead`` >= margin (blend) or confidence.
    """

    best: int
    similarity: float
    runner_up: float | None
    lead: float
    confidence: float | None = None


def blend(cosines: np.ndarray, trigrams: np.ndarray, lexical_weight: float) -> np.ndarray:
    """The blended similarity, ``(cosine + w * trigram) / (1 + w)``, with ``trigram`` the character-trigram
    cosine in [0, 1] (``pair_features``' column ``trigram``). The one place this formula lives."""
    if not lexical_weight:
        return cosines
    return (cosines + lexical_weight * trigrams) / (1.0 + lexical_weight)


def blended_similarity(cosine: float, a: str, b: str, lexical_weight: float) -> float:
    """The similarity the semantic cache compares with its threshold for one cached text ``b`` and a question
    ``a``: what ``choose`` (the cache's lookup) computes for a lone candidate."""
    choice = choose(a, [b], [cosine], [0], lexical_weight=lexical_weight)
    assert choice is not None  # one candidate given
    return choice.similarity


# Channels of a text profile: three sets of words, three bags of character n-grams.
_CONTENT, _STEMS, _BIGRAMS, _CHAR3, _CHAR4, _CHAR5 = range(6)
_TRIGRAM = _CHAR3
_CHANNELS = 6
_SETS = (_CONTENT, _STEMS, _BIGRAMS)
_ID_BITS = 58  # the channel goes above: ids of different channels never meet
_ID_MASK = (1 << _ID_BITS) - 1
_MIX = 1_000_003  # polynomial rolling hash of code points (uint64, wrapping)


@dataclass(frozen=True, eq=False)
class TextProfile:
    """What the pair features need of one text, computed once and memoised (``text_profile``): hashed ids of
    its content words, stems, word bigrams and character 3/4/5-grams, sorted, with their counts.

    Hashing makes a whole lookup's features a few numpy calls instead of dict loops over every candidate;
    with 58-bit ids a collision inside one pair of questions is practically impossible.
    """

    ids: np.ndarray  # int64, sorted; the channel in the top bits
    counts: np.ndarray  # float64: 1 for the word sets, occurrences for the n-grams
    channel: np.ndarray  # int64, the channel of each id
    sizes: np.ndarray  # per channel: set size, or the n-gram vector's Euclidean norm
    words: int
    word_seq: tuple[str, ...]  # all the words, in order
    stem_seq: tuple[str, ...]  # the content words' stems, in order
    word_masks: dict[str, int]  # word -> bit mask of its positions in word_seq (for the bit-parallel LCS)
    stem_masks: dict[str, int]


def _stems(content: list[str]) -> list[str]:
    return [_SUFFIX.sub("", w) if len(w) > 4 else w for w in content]


def _positions(seq: Sequence[str]) -> dict[str, int]:
    masks: dict[str, int] = {}
    for i, w in enumerate(seq):
        masks[w] = masks.get(w, 0) | (1 << i)
    return masks


def _lcs_length(seq: Sequence[str], masks: dict[str, int], length: int) -> int:
    """Length of the longest common subsequence of ``seq`` and a sequence of ``length`` items given by its
    position ``masks`` (bit-parallel: a few integer operations per item of ``seq``, Allison-Dix / Hyyrö)."""
    full = (1 << length) - 1
    v = full
    for w in seq:
        u = v & masks.get(w, 0)
        v = ((v + u) | (v - u)) & full
    return length - v.bit_count()


def _word_ids(words: list[str]) -> list[int]:
    """Hashed ids of the content words, their stems and the word bigrams (sets), sorted by channel and id."""
    content = _content(words)
    ids = {(hash(w) & _ID_MASK) | (_CONTENT << _ID_BITS) for w in content}
    ids.update((hash(w) & _ID_MASK) | (_STEMS << _ID_BITS) for w in _stems(content))
    ids.update(
        (hash(pair) & _ID_MASK) | (_BIGRAMS << _ID_BITS) for pair in zip(words, words[1:], strict=False)
    )
    return sorted(ids)


def _char_ids(text: str) -> np.ndarray:
    """Hashed character 3-, 4- and 5-grams (with repeats) of the lower-cased text, whitespace collapsed."""
    import numpy as np

    padded = " " + " ".join(text.lower().split()) + " "
    codes = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = []
    h = codes
    for n in range(2, 6):
        width = len(codes) - n + 1
        if width <= 0:
            break
        h = h[:width] * np.uint64(_MIX) + codes[n - 1 : n - 1 + width]  # grams of n from grams of n-1
        if n >= 3:
            parts.append((h & np.uint64(_ID_MASK)).astype(np.int64) | ((_CHAR3 + n - 3) << _ID_BITS))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@lru_cache(maxsize=8192)
def text_profile(text: str) -> TextProfile:
    """The memoised profile of a text (cached questions come back lookup after lookup)."""
    import numpy as np

    words = _words(text)
    word_ids = np.asarray(_word_ids(words), dtype=np.int64)
    char_ids, char_counts = np.unique(_char_ids(text), return_counts=True)
    ids = np.concatenate([word_ids, char_ids])  # word channels sort below the character ones
    counts = np.concatenate([np.ones(len(word_ids)), char_counts.astype(np.float64)])
    channel = ids >> _ID_BITS
    sizes = np.bincount(channel, counts * np.where(channel >= _CHAR3, counts, 1.0), minlength=_CHANNELS)
    sizes[_CHAR3:] = np.sqrt(sizes[_CHAR3:])
    word_seq, stem_seq = tuple(words), tuple(_stems(_content(words)))
    return TextProfile(
        ids=ids, counts=counts, channel=channel, sizes=sizes, words=len(words),
        word_seq=word_seq, stem_seq=stem_seq, word_masks=_positions(word_seq), stem_masks=_positions(stem_seq),
    )  # fmt: skip


def _match_counts(question: TextProfile, candidates: Sequence[TextProfile]) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate and channel, the shared mass with the question (set intersection size, n-gram dot
    product), and the rarity-weighted share of the question's content words each candidate has."""
    import numpy as np

    k = len(candidates)
    ids = np.concatenate([c.ids for c in candidates])
    counts = np.concatenate([c.counts for c in candidates])
    owner = np.repeat(np.arange(k), [len(c.ids) for c in candidates])
    channel = np.concatenate([c.channel for c in candidates])
    if len(question.ids):
        pos = np.minimum(np.searchsorted(question.ids, ids), len(question.ids) - 1)
        found = question.ids[pos] == ids
    else:
        pos, found = np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
    pos, owner, channel = pos[found], owner[found], channel[found]
    shared = np.bincount(
        owner * _CHANNELS + channel, counts[found] * question.counts[pos], minlength=k * _CHANNELS
    ).reshape(k, _CHANNELS)
    # Rarity among the candidates: a question word few of them share tells the right one apart.
    words = channel == _CONTENT
    q_words = question.channel == _CONTENT
    df = np.bincount(pos[words], minlength=len(question.ids))[q_words]
    idf = np.log((k + 1) / (df + 0.5))
    weight = np.zeros(len(question.ids))
    weight[q_words] = idf
    total = float(idf.sum())
    rare = np.bincount(owner[words], weight[pos[words]], minlength=k)
    return shared, rare / total if total > 0 else np.zeros(k)


def _others_max(values: np.ndarray) -> np.ndarray:
    """For each position, the largest value among the other positions (the value itself when alone)."""
    import numpy as np

    if len(values) < 2:
        return values.copy()
    order = np.argsort(-values, kind="stable")
    first, second = values[order[0]], values[order[1]]
    out = np.full(len(values), first)
    out[order[0]] = second
    return out


def pair_features(question: str, texts: Sequence[str], cosines: Sequence[float]) -> np.ndarray:
    """One row of ``FEATURES`` per candidate text (the question's top-k neighbours, best cosine first)."""
    import numpy as np

    q = text_profile(question)
    cands = [text_profile(t) for t in texts]
    k = len(cands)
    if not k:
        return np.zeros((0, len(FEATURES)))
    shared, rare = _match_counts(q, cands)
    sizes = np.stack([c.sizes for c in cands])
    rows = np.zeros((k, len(FEATURES)))
    rows[:, 0] = np.asarray(cosines, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for column, channel in ((2, _CONTENT), (9, _STEMS), (10, _BIGRAMS)):
            union = q.sizes[channel] + sizes[:, channel] - shared[:, channel]
            rows[:, column] = np.where(union > 0, shared[:, channel] / union, 1.0)
        inter = shared[:, _CONTENT]
        rows[:, 3] = inter / q.sizes[_CONTENT] if q.sizes[_CONTENT] else 1.0
        rows[:, 4] = np.where(sizes[:, _CONTENT] > 0, inter / sizes[:, _CONTENT], 1.0)
        lengths = np.array([c.words for c in cands], dtype=np.float64)
        rows[:, 5] = np.minimum(q.words, lengths) / np.maximum(np.maximum(q.words, lengths), 1)
        for column, channel in ((1, _CHAR3), (11, _CHAR4), (12, _CHAR5)):
            norm = q.sizes[channel] * sizes[:, channel]
            rows[:, column] = np.where(shared[:, channel] > 0, shared[:, channel] / norm, 0.0)
    rows[:, 8] = rare
    rows[:, 6] = rows[:, 0] - _others_max(rows[:, 0])
    rows[:, 7] = rows[:, 1] - _others_max(rows[:, 1])
    for column, seq, masks in ((13, "stem_seq", "stem_masks"), (16, "word_seq", "word_masks")):
        mine = getattr(q, seq)
        for j, c in enumerate(cands):
            theirs = getattr(c, seq)
            common = _lcs_length(mine, getattr(c, masks), len(theirs))
            rows[j, column] = common / max(len(mine), 1)
            rows[j, column + 1] = common / max(len(theirs), 1)
        p, r = rows[:, column], rows[:, column + 1]
        f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
        rows[:, column + 2] = f - _others_max(f)
    return rows


# The learned *match* scorer (``PairClassifier``) sees one pair at a time: only features of the pair itself,
# none that compare a candidate with the others (no leads, no rarity among the candidates), so a pair scores
# the same alone in calibration as among the candidates of a lookup.
MATCH_FEATURES: tuple[str, ...] = (
    "cosine",
    "cosine_squared",  # the probability of a duplicate rises steeply near the top of the cosine range
    "trigram",
    "jaccard",
    "covers_question",
    "covers_cached",
    "length_ratio",
    "stem_jaccard",
    "bigram_jaccard",
    "char4",
    "char5",
    "lcs_stems_question",
    "lcs_stems_cached",
    "lcs_words_question",
    "lcs_words_cached",
    "guard_negation",  # 1 when that guard sees opposite meanings (the guard refuses the hit anyway)
    "guard_number",
    "guard_antonym",
    "guard_reversal",
    # max(0, cosine - knot): lets the linear model bend where the cosine starts to mean "the same question"
    *(
        f"cosine_above_{knot:.2f}"
        for knot in (0.5, 0.6, 0.7, 0.76, 0.8, 0.84, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98)
    ),
)
_KNOTS = [
    (i, float(name.rsplit("_", 1)[1]))
    for i, name in enumerate(MATCH_FEATURES)
    if name.startswith("cosine_above_")
]
_FROM_PAIR = {name: FEATURES.index(name) for name in MATCH_FEATURES if name in FEATURES}


def match_features(question: str, texts: Sequence[str], cosines: Sequence[float]) -> np.ndarray:
    """One row of ``MATCH_FEATURES`` per candidate text; each row depends on that candidate alone."""
    import numpy as np

    pair = pair_features(question, texts, cosines)
    rows = np.zeros((len(texts), len(MATCH_FEATURES)))
    for column, name in enumerate(MATCH_FEATURES):
        if name in _FROM_PAIR:
            rows[:, column] = pair[:, _FROM_PAIR[name]]
    rows[:, MATCH_FEATURES.index("cosine_squared")] = pair[:, 0] ** 2
    for column, knot in _KNOTS:
        rows[:, column] = np.maximum(pair[:, 0] - knot, 0.0)
    first = MATCH_FEATURES.index("guard_negation")
    for j, text in enumerate(texts):
        for g, guard in enumerate(GUARDS):
            rows[j, first + g] = guard_conflict(question, text, (guard,)) is not None
    return rows


class PairClassifier(BaseModel):
    """The learned match scorer (``[cache.semantic] classifier``, fitted by ``promptkit cache calibrate --scorer``
    on labelled pairs): a logistic regression over ``MATCH_FEATURES`` whose probability that a cached question
    asks the same as the new one replaces the blended similarity. The threshold then applies to it.

    Fitted for one embedder (the cosine is a feature): refit after changing the embedding model.
    """

    model_config = ConfigDict(frozen=True)

    version: Literal["match-v1"] = "match-v1"
    bias: float
    weights: tuple[float, ...]

    @field_validator("weights")
    @classmethod
    def _one_per_feature(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return _checked_weights(value, MATCH_FEATURES)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """P(same question) for each row of ``match_features``."""
        import numpy as np

        z = features @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def fit_pair_classifier(
    features: np.ndarray, labels: Sequence[bool], *, l2: float = 1.0, where: str = "calibration pairs"
) -> PairClassifier:
    """Logistic regression of the labels on ``match_features`` rows (standardised, L2 penalty ``l2``, Newton's
    method); both labels must be present."""
    import numpy as np

    y = np.asarray(labels, dtype=float)
    if len(y) != len(features) or len(y) < 10 or y.min() == y.max():
        raise CacheError(
            f"the learned scorer needs at least 10 pairs of both labels, got {int(y.sum())} same and "
            f"{int(len(y) - y.sum())} different",
            location=where,
        )
    mean, std = features.mean(0), features.std(0)
    std = np.where(std > 1e-9, std, 1.0)
    x = np.hstack([(features - mean) / std, np.ones((len(y), 1))])
    d = x.shape[1]
    penalty = np.full(d, l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    w = np.zeros(d)

    def loss(w: np.ndarray) -> float:
        z = x @ w
        return float(np.logaddexp(0.0, z).sum() - y @ z + 0.5 * (penalty * w) @ w)

    current = loss(w)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -500, 500)))
        grad = x.T @ (p - y) + penalty * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6:  # halve the step until the loss goes down
            candidate = w - scale * step
            new = loss(candidate)
            if new <= current:
                break
            scale /= 2
        else:
            break
        w = candidate
        done = current - new < 1e-10 * max(1.0, abs(current))
        current = new
        if done:
            break
    weights = w[:-1] / std
    return PairClassifier(bias=float(w[-1] - weights @ mean), weights=tuple(float(v) for v in weights))


def choose(
    question: str,
    texts: Sequence[str],
    cosines: Sequence[float],
    answers: Sequence[Hashable],
    *,
    lexical_weight: float,
    scorer: PairScorer | None = None,
    classifier: PairClassifier | None = None,
) -> Choice | None:
    """Pick the best of the candidates (texts with their cosines and answers); None when there are none.

    ``similarity`` (what the threshold is compared with) is the blended similarity, or with a ``classifier``
    its probability that the pair asks the same; calibration scores pairs through this same function.
    """
    import numpy as np

    if not texts:
        return None
    cos = np.asarray(cosines, dtype=np.float64)
    features = pair_features(question, texts, cos) if scorer is not None or lexical_weight else None
    if classifier is not None:
        blended = classifier.probability(match_features(question, texts, cos))
    else:
        blended = cos if features is None else blend(cos, features[:, 1], lexical_weight)
    confidence: float | None = None
    if scorer is None:
        best = int(np.argmax(blended))  # first of equals: the index's order
    else:
        scores = features @ scorer.vector()  # type: ignore[operator]
        best = int(np.argmax(scores))
        share = np.exp(scores - scores[best])
        # Candidates holding the best one's answer all vote for it: duplicates do not make a query ambiguous.
        same = np.fromiter((a == answers[best] for a in answers), dtype=bool, count=len(answers))
        confidence = float(share[same].sum() / share.sum())
    similarity = float(blended[best])
    others = [float(s) for s, a in zip(blended, answers, strict=True) if a != answers[best]]
    runner_up = max(others, default=None)
    if confidence is not None:
        lead = confidence
    else:
        lead = math.inf if runner_up is None else similarity - runner_up
    return Choice(best=best, similarity=similarity, runner_up=runner_up, lead=lead, confidence=confidence)


def fit_pair_scorer(
    groups: Iterable[tuple[str, Sequence[str], Sequence[float], int | None]],
    *,
    l2: float = 1.0,
    where: str = "calibration",
) -> PairScorer:
    """Fit the learned scorer on queries with known answers: each group is (question, candidate texts, their
    cosines, the index of the right candidate or None when it is not among them).

    A conditional logit (softmax over each group's candidates) with an L2 penalty on standardised features,
    fitted by Newton's method; groups without the right candidate, or with one candidate only, teach nothing.
    """
    import numpy as np

    feats: list[np.ndarray] = []
    right: list[int] = []
    for question, texts, cosines, answer in groups:
        if answer is None or len(texts) < 2:
            continue
        feats.append(pair_features(question, texts, cosines))
        right.append(answer)
    if len(feats) < 10:
        raise CacheError(
            f"the learned scorer needs at least 10 queries whose right answer is among the candidates, got {len(feats)}",
            location=where,
        )
    k = max(len(f) for f in feats)
    d = len(FEATURES)
    x = np.zeros((len(feats), k, d))
    mask = np.zeros((len(feats), k), dtype=bool)  # groups can hold fewer than k candidates
    for i, f in enumerate(feats):
        x[i, : len(f)] = f
        mask[i, : len(f)] = True
    flat = x[mask]
    mean, std = flat.mean(0), flat.std(0)
    std = np.where(std > 1e-9, std, 1.0)
    z = np.where(mask[:, :, None], (x - mean) / std, 0.0)
    y = np.zeros_like(mask, dtype=float)
    y[np.arange(len(right)), right] = 1.0

    def loss_grad_hess(w: np.ndarray, hessian: bool = True) -> tuple[float, np.ndarray, np.ndarray | None]:
        s = np.where(mask, z @ w, -np.inf)
        s = s - s.max(1, keepdims=True)
        p = np.exp(s)
        total = p.sum(1, keepdims=True)
        p = p / total
        loss = -float((y * np.where(mask, s, 0.0)).sum() - np.log(total).sum()) + 0.5 * l2 * float(w @ w)
        mean_z = (p[:, :, None] * z).sum(1)
        grad = -((y[:, :, None] * z).sum(1) - mean_z).sum(0) + l2 * w
        if not hessian:
            return loss, grad, None
        hess = np.einsum("nk,nki,nkj->ij", p, z, z) - mean_z.T @ mean_z + l2 * np.eye(d)
        return loss, grad, hess

    w = np.zeros(d)
    loss, grad, hess = loss_grad_hess(w)
    for _ in range(100):
        step = np.linalg.solve(hess, grad)  # type: ignore[arg-type]
        scale = 1.0
        while scale > 1e-6:  # halve the step until the loss goes down: Newton can overshoot
            candidate = w - scale * step
            new_loss = loss_grad_hess(candidate, hessian=False)[0]
            if new_loss <= loss:
                break
            scale /= 2
        else:
            break
        w = candidate
        done = loss - new_loss < 1e-9 * max(1.0, abs(loss))
        loss, grad, hess = loss_grad_hess(w)
        if done:
            break
    # Back to raw features; the mean shift adds the same to every candidate of a query, so it drops out.
    return PairScorer(version="pair-v2", weights=tuple(float(v) for v in w / std))
