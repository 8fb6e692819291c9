"""Embeddings from any provider litellm reaches (OpenAI, Azure, Cohere, an OpenAI-compatible local server)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from promptkit.backends import map_exception
from promptkit.embeddings._base import BaseEmbedder, normalize_rows
from promptkit.errors import (
    BackendError,
    BackendUnavailable,
    MalformedResponse,
)

if TYPE_CHECKING:
    import numpy as np

    from promptkit.embeddings._cache import EmbeddingCache

__all__ = ["LiteLLMEmbedder"]

# OpenAI-compatible local servers ignore the key, but the OpenAI client refuses to send a request without one.
_PLACEHOLDER_KEY = "sk-no-key-required"


def _litellm() -> Any:
    # Without this, importing litellm fetches its price map from the internet.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as exc:
        raise BackendUnavailable(
            f"litellm is not installed ({exc}): pip install 'promptkit[remote]'", location="litellm"
        ) from None
    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners
    return litellm


class LiteLLMEmbedder(BaseEmbedder):
    """Embeds with ``litellm.embedding`` (``aembedding`` from the async methods).

    ``model`` is a litellm model name (``"openai/text-embedding-3-small"``, or ``"openai/<alias>"`` with
    ``api_base`` for an OpenAI-compatible server). The key is read from the environment variable
    ``api_key_env`` at call time and is never stored or logged; with ``api_base`` and no ``api_key_env`` a
    placeholder key is sent, since local servers do not check it. Vectors are float32, L2-normalised unless
    ``normalize=False``; texts go in requests of ``batch_size``.
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key_env: str | None = None,
        cache: EmbeddingCache | None = None,
        normalize: bool = True,
        batch_size: int = 64,
        timeout_s: float = 60.0,
    ) -> None:
        if not model or batch_size < 1:
            raise BackendError("model must be named and batch_size >= 1", location="LiteLLMEmbedder")
        self.model = model
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.cache = cache
        self.normalize = normalize
        self.batch_size = batch_size
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"LiteLLMEmbedder({self.model!r}, api_base={self.api_base!r})"

    @property
    def model_id(self) -> str:
        norm = "normalized" if self.normalize else "raw"
        return f"litellm:{self.model}@{self.api_base or 'default'}:{norm}"

    def _kwargs(self) -> tuple[dict[str, Any], str | None]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "timeout": self.timeout_s,
            "encoding_format": "float",
            # Retries and fallbacks belong to the router (promptkit.routing); fail fast here.
            "num_retries": 0,
            "max_retries": 0,
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        key: str | None = None
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise BackendUnavailable(
                    f"environment variable {self.api_key_env} is not set; export it with the API key",
                    location=f"embedder {self.model}",
                )
        elif self.api_base:
            key = _PLACEHOLDER_KEY
        if key:
            kwargs["api_key"] = key
        return kwargs, key

    def _vectors(self, response: Any, expected: int) -> np.ndarray:
        import numpy as np

        where = f"embedder {self.model}"
        try:
            items = sorted(
                (item["index"] if isinstance(item, dict) else item.index, _embedding(item))
                for item in response.data
            )
            array = np.asarray([vector for _, vector in items], dtype=np.float32)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(f"embedding response without vectors: {exc}", location=where) from None
        if array.ndim != 2 or len(array) != expected:
            raise MalformedResponse(
                f"asked for {expected} embeddings, got an array of shape {array.shape}", location=where
            )
        return array

    def _finish(self, parts: list[np.ndarray]) -> np.ndarray:
        import numpy as np

        array = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return normalize_rows(array) if self.normalize else array

    def _compute(self, texts: list[str]) -> np.ndarray:
        litellm = _litellm()
        kwargs, key = self._kwargs()
        parts = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            try:
                response = litellm.embedding(input=chunk, **kwargs)
            except Exception as exc:  # every SDK failure becomes a promptkit error, key scrubbed
                raise map_exception(
                    exc, secrets=[key], location=f"embedder {self.model}", what="embedding request"
                ) from None
            parts.append(self._vectors(response, len(chunk)))
        return self._finish(parts)

    async def _acompute(self, texts: list[str]) -> np.ndarray:
        litellm = _litellm()
        kwargs, key = self._kwargs()
        parts = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            try:
                response = await litellm.aembedding(input=chunk, **kwargs)
            except Exception as exc:
                raise map_exception(
                    exc, secrets=[key], location=f"embedder {self.model}", what="embedding request"
                ) from None
            parts.append(self._vectors(response, len(chunk)))
        return self._finish(parts)


def _embedding(item: Any) -> list[float]:
    vector = item["embedding"] if isinstance(item, dict) else item.embedding
    if not isinstance(vector, list):
        raise TypeError(f"embedding is {type(vector).__name__}, not a list of floats")
    return vector
