"""What every promptkit embedder shares: float32 arrays, de-duplication and the embedding cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from promptkit.errors import BackendError

if TYPE_CHECKING:
    import numpy as np

    from promptkit.embeddings._cache import EmbeddingCache
    from promptkit.types import Embedder

__all__ = ["BaseEmbedder", "CachedEmbedder", "cosine", "normalize_rows"]


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to unit L2 length (an all-zero row stays zero), as float32."""
    import numpy as np

    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return (array / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def cosine(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cosine similarity of two vectors (0.0 if either is all zeros)."""
    import numpy as np

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / denominator if denominator else 0.0


class BaseEmbedder:
    """Subclasses implement ``_compute`` (and ``_acompute`` when they have a native async path).

    Identical texts in one call are embedded once; with a cache, only texts it lacks reach the model.
    """

    cache: EmbeddingCache | None = None

    @property
    def model_id(self) -> str:
        """Names the vectors this embedder produces; the cache key depends on it."""
        raise NotImplementedError

    def _compute(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _acompute(self, texts: list[str]) -> np.ndarray:
        import asyncio

        return await asyncio.to_thread(self._compute, texts)

    def _plan(self, texts: Sequence[str]) -> tuple[list[np.ndarray | None], list[str]]:
        if isinstance(texts, str):
            raise BackendError(
                "embed() takes a list of texts; use embed_one() for a single text", location="texts"
            )
        found: list[np.ndarray | None] = (
            self.cache.get_many(self.model_id, texts) if self.cache is not None else [None] * len(texts)
        )
        missing = list(
            dict.fromkeys(text for text, vector in zip(texts, found, strict=True) if vector is None)
        )
        return found, missing

    def _assemble(
        self, texts: Sequence[str], found: list[np.ndarray | None], missing: list[str], computed: np.ndarray
    ) -> np.ndarray:
        import numpy as np

        if len(computed) != len(missing):
            raise BackendError(
                f"{self.model_id}: asked for {len(missing)} embeddings, got {len(computed)}",
                location="embeddings",
            )
        if missing and self.cache is not None:
            self.cache.put_many(self.model_id, missing, computed)
        fresh = dict(zip(missing, computed, strict=True))
        rows = [
            vector if vector is not None else fresh[text] for text, vector in zip(texts, found, strict=True)
        ]
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """A float32 array of shape ``(len(texts), dim)``."""
        found, missing = self._plan(texts)
        computed = self._compute(missing) if missing else _empty()
        return self._assemble(texts, found, missing, computed)

    async def aembed_array(self, texts: Sequence[str]) -> np.ndarray:
        found, missing = self._plan(texts)
        computed = await self._acompute(missing) if missing else _empty()
        return self._assemble(texts, found, missing, computed)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text (the ``promptkit.types.Embedder`` protocol)."""
        return self.embed_array(texts).tolist()

    async def aembed(self, texts: list[str]) -> list[list[float]]:
        return (await self.aembed_array(texts)).tolist()

    def embed_one(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()


def _empty() -> np.ndarray:
    import numpy as np

    return np.zeros((0, 0), dtype=np.float32)


class CachedEmbedder(BaseEmbedder):
    """Puts an ``EmbeddingCache`` in front of any ``Embedder``; ``model_id`` must name what ``inner`` computes."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache, model_id: str) -> None:
        if not model_id:
            raise BackendError("CachedEmbedder needs a non-empty model_id", location="model_id")
        self.inner = inner
        self.cache = cache
        self._model_id = model_id

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, {self.cache!r}, model_id={self._model_id!r})"

    @property
    def model_id(self) -> str:
        return self._model_id

    def _compute(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        return np.asarray(self.inner.embed(texts), dtype=np.float32)
