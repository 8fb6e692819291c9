"""Prompt embeddings for learned routers: all-MiniLM-L6-v2 through llama.cpp, cached on disk once per text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptkit.config import Config, load_config

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EMBEDDING_CACHE_FILE", "default_embedding_cache", "embed_texts", "load_router_embedder"]

EMBEDDING_CACHE_FILE = "embeddings.sqlite"


def default_embedding_cache(config: Config | None = None) -> Path:
    """``<state_dir>/embeddings.sqlite``: shared by every command that embeds."""
    return (config or load_config()).state_dir / EMBEDDING_CACHE_FILE


def load_router_embedder(
    *, cache_path: Path | None = None, config: Config | None = None, **options: Any
) -> Any:
    """The default MiniLM embedder with the on-disk cache in front (converted on first use)."""
    from promptkit.embeddings import EmbeddingCache, load_default_embedder

    path = cache_path or default_embedding_cache(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    return load_default_embedder(config, cache=EmbeddingCache(path), **options)


def embed_texts(texts: Sequence[str], embedder: Any) -> np.ndarray:
    """A float32 ``(len(texts), dim)`` array; uses ``embed_array`` when the embedder has it (no list detour)."""
    import numpy as np

    if hasattr(embedder, "embed_array"):
        return np.asarray(embedder.embed_array(list(texts)), dtype=np.float32)
    return np.asarray(embedder.embed(list(texts)), dtype=np.float32)
