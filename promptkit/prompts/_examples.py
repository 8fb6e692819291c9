"""Few-shot examples: the validated example objects, selection strategies and a lexical embedder."""

from __future__ import annotations

import math
import random
import re
import weakref
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from promptkit.errors import RenderError
from promptkit.types import Embedder

__all__ = ["Example", "ExampleSelection", "Strategy", "LexicalEmbedder", "select_examples", "STRATEGIES"]

Strategy = Literal["all", "first_k", "random_k", "fit_budget", "similar_k"]
STRATEGIES: tuple[str, ...] = ("all", "first_k", "random_k", "fit_budget", "similar_k")


class Example:
    """One validated few-shot example, as templates see it: ``.inputs``, ``.output``, ``.output_json``."""

    __slots__ = ("inputs", "output", "output_json", "index", "text")

    def __init__(self, inputs: dict[str, Any], output: Any, output_json: str, index: int) -> None:
        self.inputs = inputs
        self.output = output
        self.output_json = output_json
        self.index = index
        # What similar_k compares against: the example's input values as text.
        self.text = inputs_text(inputs)

    def __repr__(self) -> str:
        return f"Example(#{self.index}, inputs={sorted(self.inputs)})"


def inputs_text(inputs: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for value in inputs.values():
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, (list, tuple)):
            parts.extend(str(v) for v in value)
        elif isinstance(value, dict):
            parts.extend(str(v) for v in value.values())
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts)


class ExampleSelection(BaseModel):
    """Which few-shot examples a render includes.

    - ``all``: every example, in order;
    - ``first_k``: the first ``k``;
    - ``random_k``: ``k`` drawn with ``seed`` (deterministic), kept in their original order;
    - ``fit_budget``: as many as fit, in order: within ``budget`` tokens of example text when set,
      else within the render's own budget (all of them when there is no budget at all);
    - ``similar_k``: the ``k`` most similar to the current inputs (by the render's embedder, or
      :class:`LexicalEmbedder`), most similar first; ties keep the original order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy = "all"
    k: int | None = Field(default=None, ge=0)
    seed: int = 0
    budget: int | None = Field(default=None, ge=0)

    @classmethod
    def parse(cls, text: str) -> ExampleSelection:
        """``"first_k:2"``, ``"random_k:3"``, ``"all"``, ``"fit_budget:500"`` (the number is the budget)."""
        strategy, _, number = text.partition(":")
        strategy = strategy.strip()
        if strategy not in STRATEGIES:
            raise RenderError(f"unknown example strategy {strategy!r} (use one of {', '.join(STRATEGIES)})")
        value: int | None = None
        if number.strip():
            try:
                value = int(number)
            except ValueError:
                raise RenderError(f"example strategy {text!r}: {number!r} is not an integer") from None
            if value < 0:
                raise RenderError(f"example strategy {text!r}: the number must not be negative")
        if strategy == "fit_budget":
            return cls(strategy="fit_budget", budget=value)
        return cls(strategy=strategy, k=value)  # type: ignore[arg-type]


_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[^\sA-Za-z0-9_]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def lexical_tokens(text: str) -> list[str]:
    """Lower-cased words, with code identifiers also split at ``_`` and camelCase boundaries."""
    out: list[str] = []
    for token in _TOKEN.findall(text):
        if not (token[0].isalnum() or token[0] == "_"):
            continue  # punctuation carries little topical signal
        low = token.lower()
        out.append(low)
        pieces = [p.lower() for part in token.split("_") for p in _CAMEL.split(part) if p]
        if len(pieces) > 1:
            out.extend(pieces)
    return out


class LexicalEmbedder:
    """TF-IDF over hashed word features: a dependency-free :class:`~promptkit.types.Embedder`.

    Term frequency is sublinear (1 + log tf); IDF is computed over the texts of one ``embed`` call
    (smoothed, so a single text still gets a vector), then vectors are L2-normalised. Embed the query
    and the candidates in the same call for comparable vectors.
    """

    def __init__(self, dimensions: int = 2048) -> None:
        if dimensions < 16:
            raise ValueError("dimensions must be at least 16")
        self.dimensions = dimensions

    def embed(self, texts: list[str]) -> list[list[float]]:
        counts = [Counter(lexical_tokens(t)) for t in texts]
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        n = len(texts)
        vectors: list[list[float]] = []
        for c in counts:
            vector = [0.0] * self.dimensions
            for term, tf in c.items():
                idf = math.log((1 + n) / (1 + df[term])) + 1.0
                bucket = zlib.crc32(term.encode("utf-8")) % self.dimensions
                vector[bucket] += (1.0 + math.log(tf)) * idf
            norm = math.sqrt(sum(v * v for v in vector))
            vectors.append([v / norm for v in vector] if norm else vector)
        return vectors


# Example vectors for caller-supplied embedders, cached per embedder object and example set.
_VECTOR_CACHE: weakref.WeakKeyDictionary[Any, dict[int, list[list[float]]]] = weakref.WeakKeyDictionary()


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def _similar(examples: Sequence[Example], k: int, query: str, embedder: Embedder | None) -> list[Example]:
    if embedder is None or isinstance(embedder, LexicalEmbedder):
        lexical = embedder or LexicalEmbedder()
        vectors = lexical.embed([query, *(e.text for e in examples)])
        query_vec, example_vecs = vectors[0], vectors[1:]
    else:
        key = id(examples)
        try:
            per_embedder = _VECTOR_CACHE.setdefault(embedder, {})
        except TypeError:  # not weak-referenceable: no cache
            per_embedder = {}
        cached = per_embedder.get(key)
        if cached is None or len(cached) != len(examples):
            cached = embedder.embed([e.text for e in examples])
            per_embedder[key] = cached
        example_vecs = cached
        query_vec = embedder.embed([query])[0]
    scores = [_cosine(query_vec, v) for v in example_vecs]
    # Highest score first; equal scores keep the original order.
    order = sorted(range(len(examples)), key=lambda i: (-scores[i], i))
    return [examples[i] for i in order[:k]]


def select_examples(
    examples: Sequence[Example],
    selection: ExampleSelection,
    *,
    query: Callable[[], str],
    embedder: Embedder | None = None,
    example_tokens: Callable[[Example], int] | None = None,
) -> list[Example]:
    """Apply ``selection`` to ``examples``. ``fit_budget`` with a render budget is handled by the caller."""
    strategy = selection.strategy
    if not examples or strategy == "all":
        return list(examples)
    k = len(examples) if selection.k is None else selection.k
    if strategy == "first_k":
        return list(examples[:k])
    if strategy == "random_k":
        rng = random.Random(selection.seed)
        picked = sorted(rng.sample(range(len(examples)), min(k, len(examples))))
        return [examples[i] for i in picked]
    if strategy == "similar_k":
        return _similar(examples, k, query(), embedder)
    # fit_budget with its own token budget for the example text
    if selection.budget is None or example_tokens is None:
        return list(examples)
    chosen: list[Example] = []
    used = 0
    for example in examples:
        cost = example_tokens(example)
        if used + cost > selection.budget:
            break
        chosen.append(example)
        used += cost
    return chosen
