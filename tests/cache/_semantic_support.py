"""Shared by the semantic-cache tests: the real MiniLM embedder (converted once per process) and a small
deterministic embedder for tests about the cache's mechanics rather than about meaning."""

from __future__ import annotations

import hashlib
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from promptkit.embeddings import MINILM_INSTALL


@lru_cache(maxsize=1)
def minilm():  # type: ignore[no-untyped-def]
    """LlamaEmbedder on all-MiniLM-L6-v2 converted to GGUF; fails (never skips) without the weights package."""
    from promptkit.embeddings import LlamaEmbedder, convert_minilm_to_gguf, find_minilm_source
    from promptkit.errors import BackendUnavailable

    try:
        find_minilm_source()
    except BackendUnavailable as exc:  # pragma: no cover - CI installs it
        raise AssertionError(
            f"the semantic cache tests need the MiniLM weights: {MINILM_INSTALL} ({exc})"
        ) from None
    folder = Path(tempfile.mkdtemp(prefix="promptkit-minilm-"))
    return LlamaEmbedder(convert_minilm_to_gguf(folder / "minilm.gguf"), n_threads=2)


class HashEmbedder:
    """Bag of words hashed into 64 dimensions: texts with the same words get the same vector."""

    model_id = "test-hash-bow-64"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
        return out.tolist()
