"""The ``similarity`` scorer: cosine similarity of the answer and the expected text (lexical or embedded)."""

from __future__ import annotations

import asyncio
import inspect
import math
from typing import Any, Literal

from pydantic import model_validator

from promptkit.evals._dataset import Item
from promptkit.evals._eval_log import Score
from promptkit.evals._scorer_base import (
    BuiltinScorer,
    Generation,
    MatchOptions,
    ScorerEnv,
    as_text,
    expected_value,
    import_object,
    pick,
    verdict,
)

__all__ = ["Similarity"]


class Similarity(BuiltinScorer):
    """Cosine similarity of the answer and the expected text: lexical TF-IDF or an Embedder."""

    kind = "graded"

    class Options(MatchOptions):
        method: Literal["lexical", "embedding"] = "lexical"
        embedder: str | None = None  # "package.module:attr": an Embedder, or a class/factory making one
        threshold: float | None = 0.8

        @model_validator(mode="after")
        def _embedder(self) -> Similarity.Options:
            if self.method == "embedding" and not self.embedder:
                raise ValueError("method 'embedding' needs embedder: 'package.module:attr'")
            return self

    def __init__(self, options: Any, env: ScorerEnv) -> None:
        super().__init__(options, env)
        self._embedder: Any = None

    def embedder(self) -> Any:
        if self._embedder is None:
            if self.options.method == "lexical":
                from promptkit.prompts import LexicalEmbedder

                self._embedder = LexicalEmbedder()
            else:
                found = import_object(self.options.embedder, "embedder")
                self._embedder = found() if inspect.isclass(found) or not hasattr(found, "embed") else found
        return self._embedder

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:
        opts = self.options
        a = as_text(pick(parsed, output.text, opts.field) or "")
        b = as_text(expected_value(item, opts.expected_field, opts.field) or "")
        vectors = await asyncio.to_thread(self.embedder().embed, [a, b])
        value = max(0.0, min(1.0, _cosine(vectors[0], vectors[1])))
        return self.score(value, verdict(value, opts.threshold))


def _cosine(a: list[float], b: list[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0
