"""Real sentence embeddings, offline: all-MiniLM-L6-v2 converted to GGUF and run by llama.cpp, or any
provider through litellm, with an on-disk cache.

    from promptkit.embeddings import load_default_embedder
    embedder = load_default_embedder()          # converts the model on first use
    vectors = embedder.embed(["How do I reset my password?", "I forgot my password"])

Heavy libraries (numpy, gguf, llama_cpp, litellm) are imported only when used.
"""

from __future__ import annotations

from promptkit.embeddings._base import BaseEmbedder, CachedEmbedder, cosine, normalize_rows
from promptkit.embeddings._cache import EmbeddingCache, embedding_key
from promptkit.embeddings._convert import (
    MINILM_INSTALL,
    MINILM_PACKAGE,
    convert_minilm_to_gguf,
    find_minilm_source,
)
from promptkit.embeddings._default import DEFAULT_EMBEDDER_FILE, default_embedder_path, load_default_embedder
from promptkit.embeddings._litellm import LiteLLMEmbedder
from promptkit.embeddings._llama import LlamaEmbedder

__all__ = [
    "BaseEmbedder",
    "CachedEmbedder",
    "EmbeddingCache",
    "LlamaEmbedder",
    "LiteLLMEmbedder",
    "convert_minilm_to_gguf",
    "find_minilm_source",
    "default_embedder_path",
    "load_default_embedder",
    "cosine",
    "normalize_rows",
    "embedding_key",
    "MINILM_PACKAGE",
    "MINILM_INSTALL",
    "DEFAULT_EMBEDDER_FILE",
]
