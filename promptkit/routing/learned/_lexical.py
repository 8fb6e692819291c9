"""Lexical prompt features for routers that must decide in well under a millisecond, with no embedding model.

A prompt becomes hashed word uni/bigrams and in-word character trigrams (sublinear TF, IDF fitted on the
training prompts, L2-normalised) plus a few prompt statistics (length, digits, operators, question words,
choice markers, code). Hashing uses CRC32, so a saved featuriser gives the same vector in any process.
The fitted state (IDF and the statistics' scaling) is a few arrays, saved inside a routing policy.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LEXICAL_DIM", "LEXICAL_STATS", "LexicalFeaturizer", "prompt_stats"]

LEXICAL_DIM = 512
_WORD = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")
_QUESTION = ("what", "how", "why", "which", "who", "when", "where", "explain", "write", "calculate", "prove")
LEXICAL_STATS: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "digit_share",
    "log_numbers",
    "log_operators",
    "log_lines",
    "question_marks",
    "choice_markers",
    "code",
    *(f"starts_{w}" for w in _QUESTION),
    *(f"has_{w}" for w in _QUESTION),
)
_DIGIT = re.compile(r"\d")
_OPERATORS = re.compile(r"[+\-*/=%^<>$]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_CHOICE = re.compile(r"(?m)^\s*\(?[A-D][).:]\s")
_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]\s*$", re.M)


def prompt_stats(text: str) -> list[float]:
    """The ``LEXICAL_STATS`` values for one prompt (raw, unscaled)."""
    low = text.lower()
    words = low.split()
    first = re.sub(r"[^a-z]", "", words[0]) if words else ""
    present = set(_WORD.findall(low))
    chars = len(text)
    return [
        math.log1p(chars),
        math.log1p(len(words)),
        len(_DIGIT.findall(text)) / chars if chars else 0.0,
        math.log1p(len(_NUMBER.findall(text))),
        math.log1p(len(_OPERATORS.findall(text))),
        math.log1p(text.count("\n")),
        float(min(text.count("?"), 3)),
        float(min(len(_CHOICE.findall(text)), 4)),
        1.0 if _CODE.search(text) else 0.0,
        *(1.0 if first == w else 0.0 for w in _QUESTION),
        *(1.0 if w in present else 0.0 for w in _QUESTION),
    ]


def _terms(text: str) -> list[str]:
    tokens = _WORD.findall(text.lower())
    terms = [f"w:{t}" for t in tokens]
    terms.extend(f"b:{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False))
    for t in tokens:
        if len(t) > 3:
            padded = f"<{t}>"
            terms.extend(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
    return terms


class LexicalFeaturizer:
    """Text -> ``dim`` hashed TF-IDF values + ``len(LEXICAL_STATS)`` standardised statistics.

    The TF-IDF block has unit norm and the statistics block is scaled to about unit norm too, so cosine kNN
    weighs words and statistics alike; linear models re-standardise every column anyway.
    """

    def __init__(self, dim: int = LEXICAL_DIM) -> None:
        if dim < 16:
            raise ValueError(f"dim must be at least 16, got {dim}")
        self.dim = dim
        self.idf: np.ndarray | None = None
        self.stats_mean: np.ndarray | None = None
        self.stats_scale: np.ndarray | None = None

    @property
    def width(self) -> int:
        return self.dim + len(LEXICAL_STATS)

    # Raw (unfitted) parts: computed once per prompt, so cross-validation refits only the cheap scaling.
    def raw(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Hashed term counts ``(n, dim)`` and raw statistics ``(n, len(LEXICAL_STATS))``."""
        import numpy as np

        counts = np.zeros((len(texts), self.dim), dtype=np.float64)
        for i, text in enumerate(texts):
            buckets = [zlib.crc32(t.encode("utf-8")) % self.dim for t in _terms(text)]
            if buckets:
                counts[i] = np.bincount(buckets, minlength=self.dim)
        stats = np.asarray([prompt_stats(t) for t in texts], dtype=np.float64).reshape(
            len(texts), len(LEXICAL_STATS)
        )
        return counts, stats

    def fit_raw(self, counts: np.ndarray, stats: np.ndarray) -> LexicalFeaturizer:
        import numpy as np

        n = len(counts)
        df = (counts > 0).sum(axis=0)
        self.idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        self.stats_mean = stats.mean(axis=0) if n else np.zeros(stats.shape[1])
        std = stats.std(axis=0) if n else np.ones(stats.shape[1])
        self.stats_scale = np.where(std > 1e-12, std, 1.0) * math.sqrt(len(LEXICAL_STATS))
        return self

    def apply_raw(self, counts: np.ndarray, stats: np.ndarray) -> np.ndarray:
        import numpy as np

        if self.idf is None or self.stats_mean is None or self.stats_scale is None:
            raise ValueError("the lexical featuriser is not fitted")
        tf = np.where(counts > 0, 1.0 + np.log(np.maximum(counts, 1.0)), 0.0) * self.idf
        norms = np.linalg.norm(tf, axis=1, keepdims=True)
        tf /= np.where(norms > 0, norms, 1.0)
        return np.hstack([tf, (stats - self.stats_mean) / self.stats_scale])

    def fit(self, texts: Sequence[str]) -> LexicalFeaturizer:
        return self.fit_raw(*self.raw(texts))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.apply_raw(*self.raw(texts))

    def vector(self, text: str) -> list[float]:
        """One prompt's features without numpy: the per-request path (a fraction of a millisecond)."""
        if self.idf is None or self.stats_mean is None or self.stats_scale is None:
            raise ValueError("the lexical featuriser is not fitted")
        dim, crc = self.dim, zlib.crc32
        counts = Counter([crc(term.encode("utf-8")) % dim for term in _terms(text)])
        idf = self._idf_list
        # Only the occupied buckets are weighted and normalised: a prompt fills a few hundred of them.
        weights = {bucket: (1.0 + math.log(c)) * idf[bucket] for bucket, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in weights.values())) or 1.0
        tf = [0.0] * self.dim
        for bucket, v in weights.items():
            tf[bucket] = v / norm
        mean, scale = self._stats_lists
        tf.extend((v - m) / s for v, m, s in zip(prompt_stats(text), mean, scale, strict=True))
        return tf

    @property
    def _idf_list(self) -> list[float]:
        cached = getattr(self, "_idf_cache", None)
        if cached is None:
            assert self.idf is not None
            cached = self._idf_cache = [float(x) for x in self.idf]
        return cached  # type: ignore[no-any-return]

    @property
    def _stats_lists(self) -> tuple[list[float], list[float]]:
        cached = getattr(self, "_stats_cache", None)
        if cached is None:
            assert self.stats_mean is not None and self.stats_scale is not None
            cached = self._stats_cache = (
                [float(x) for x in self.stats_mean],
                [float(x) for x in self.stats_scale],
            )
        return cached  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """The feature block saved in a policy (``type: lexical``, read from the request's ``text``)."""
        if self.idf is None or self.stats_mean is None or self.stats_scale is None:
            raise ValueError("the lexical featuriser is not fitted")
        return {
            "type": "lexical",
            "field": "text",
            "dim": self.dim,
            "stats": list(LEXICAL_STATS),
            "idf": [round(float(x), 6) for x in self.idf],
            "stats_mean": self.stats_mean.tolist(),
            "stats_scale": self.stats_scale.tolist(),
        }

    @classmethod
    def from_dict(cls, block: dict[str, Any]) -> LexicalFeaturizer:
        """Rebuild from a policy's feature block; ValueError/KeyError/TypeError on a malformed one."""
        import numpy as np

        if list(block.get("stats", [])) != list(LEXICAL_STATS):
            raise ValueError(
                "the lexical block's statistics differ from this promptkit's; retrain the policy"
            )
        out = cls(int(block["dim"]))
        out.idf = np.asarray(block["idf"], dtype=np.float64)
        out.stats_mean = np.asarray(block["stats_mean"], dtype=np.float64)
        out.stats_scale = np.asarray(block["stats_scale"], dtype=np.float64)
        n_stats = (len(LEXICAL_STATS),)
        if out.idf.shape != (out.dim,) or out.stats_mean.shape != n_stats or out.stats_scale.shape != n_stats:
            raise ValueError("idf/stats arrays do not match dim and the statistics")
        return out
