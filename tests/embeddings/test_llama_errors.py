"""LlamaEmbedder's failures say what is wrong and how to fix it; loaded models are shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptkit.embeddings import LlamaEmbedder
from promptkit.errors import BackendError, BackendUnavailable


def test_missing_model_file_names_it_and_the_command(tmp_path: Path):
    missing = tmp_path / "absent.gguf"
    with pytest.raises(BackendUnavailable) as info:
        LlamaEmbedder(missing)
    assert str(missing) in str(info.value) and "promptkit models convert-embedder" in str(info.value)


def test_a_file_that_is_not_a_model(tmp_path: Path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF but not really" * 10)
    with pytest.raises(BackendUnavailable, match="cannot load") as info:
        LlamaEmbedder(junk)
    assert str(junk) in str(info.value)


def test_a_chat_model_without_pooling_is_refused(tiny_gguf: Path):
    with pytest.raises(BackendUnavailable, match="no pooling"):
        LlamaEmbedder(tiny_gguf, n_threads=1)


def test_missing_llama_cpp_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minilm_gguf: Path
):
    import sys

    copy = tmp_path / "other.gguf"
    copy.write_bytes(minilm_gguf.read_bytes())  # not in the pool yet, so it must import llama_cpp
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(BackendUnavailable, match=r"promptkit\[local\]"):
        LlamaEmbedder(copy)


def test_bad_arguments_and_a_single_string(minilm_gguf: Path, embedder):
    with pytest.raises(BackendError, match="batch_size"):
        LlamaEmbedder(minilm_gguf, batch_size=0)
    with pytest.raises(BackendError, match="embed_one"):
        embedder.embed("a string, not a list")  # type: ignore[arg-type]


def test_embedders_on_one_file_share_the_loaded_model(minilm_gguf: Path, embedder):
    other = LlamaEmbedder(minilm_gguf, n_threads=1, batch_size=3)
    assert other._loaded is embedder._loaded
    assert LlamaEmbedder(minilm_gguf, n_threads=1, n_ctx=256)._loaded is not embedder._loaded
    texts = [f"t{i}" for i in range(7)]
    # Smaller batches change float summation order only (more so with the AVX-512 kernels: up to ~3e-4).
    assert np.allclose(other.embed(texts), embedder.embed(texts), atol=1e-3)
