"""The embedding cache: float32 round trips, model ids kept apart, and embedders that only compute misses."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from promptkit.embeddings import CachedEmbedder, EmbeddingCache, LlamaEmbedder, embedding_key
from promptkit.errors import CacheError


def test_round_trip_is_float32_and_survives_reopening(tmp_path: Path):
    path = tmp_path / "state" / "embeddings.sqlite"
    with EmbeddingCache(path) as cache:
        assert cache.get_many("m", ["a", "b"]) == [None, None]
        cache.put_many("m", ["a", "b"], [[0.1, 0.2, 0.3], np.array([1.0, -2.0, 3.5])])
    with EmbeddingCache(path) as cache:
        a, b = cache.get_many("m", ["a", "b"])
        assert a.dtype == np.float32 and np.array_equal(a, np.float32([0.1, 0.2, 0.3]))
        assert np.array_equal(b, np.float32([1.0, -2.0, 3.5]))
        assert cache.count() == 2
        import sqlite3

        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_model_ids_do_not_collide(tmp_path: Path):
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    cache.put_many("model-a", ["same text"], [[1.0, 0.0]])
    cache.put_many("model-b", ["same text"], [[0.0, 1.0]])
    assert cache.get_many("model-a", ["same text"])[0].tolist() == [1.0, 0.0]
    assert cache.get_many("model-b", ["same text"])[0].tolist() == [0.0, 1.0]
    assert cache.get_many("model-c", ["same text"]) == [None]
    # The separator keeps (id, text) pairs that concatenate alike apart.
    assert embedding_key("ab", "c") != embedding_key("a", "bc")
    assert cache.clear("model-a") == 1 and cache.count() == 1


def test_many_keys_and_threads(tmp_path: Path):
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    texts = [f"text {i}" for i in range(1200)]  # more than one SELECT chunk
    cache.put_many("m", texts, np.arange(1200 * 2, dtype=np.float32).reshape(1200, 2))
    errors: list[BaseException] = []

    def read() -> None:
        try:
            got = cache.get_many("m", texts[::-1])
            assert got[0].tolist() == [2398.0, 2399.0] and got[-1].tolist() == [0.0, 1.0]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_unusable_files_raise_cache_error_naming_the_path(tmp_path: Path):
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CacheError) as info:
        EmbeddingCache(bad).get_many("m", ["x"])
    assert str(bad) in str(info.value)
    with pytest.raises(CacheError, match="2 texts but 1 vectors"):
        EmbeddingCache(tmp_path / "ok.sqlite").put_many("m", ["a", "b"], [[1.0]])
    closed = EmbeddingCache(tmp_path / "ok.sqlite")
    closed.close()
    with pytest.raises(CacheError, match="closed"):
        closed.get_many("m", ["a"])


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import llama_cpp

    calls: list[int] = []
    real = llama_cpp.llama_decode

    def counting(ctx, batch):  # type: ignore[no-untyped-def]
        calls.append(int(batch.n_tokens))
        return real(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", counting)
    return calls


def test_second_embed_comes_from_the_cache_without_calling_the_model(
    tmp_path: Path, minilm_gguf: Path, monkeypatch: pytest.MonkeyPatch
):
    calls = _count_decodes(monkeypatch)
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    embedder = LlamaEmbedder(minilm_gguf, n_threads=1, cache=cache)
    texts = ["first text", "second text", "first text"]
    first = embedder.embed(texts)
    assert len(calls) == 1 and cache.count(embedder.model_id) == 2  # the duplicate was embedded once
    assert first[0] == first[2]

    again = embedder.embed(texts)
    assert len(calls) == 1  # nothing reached llama.cpp
    assert np.allclose(again, first, atol=1e-7)

    embedder.embed(["first text", "a new one"])
    assert len(calls) == 2 and calls[-1] == len(embedder.tokenize("a new one"))  # only the miss was decoded


def test_model_id_changes_with_settings_that_change_vectors(minilm_gguf: Path, tmp_path: Path):
    normalized = LlamaEmbedder(minilm_gguf, n_threads=1)
    raw = LlamaEmbedder(minilm_gguf, n_threads=1, normalize=False)
    short = LlamaEmbedder(minilm_gguf, n_threads=1, max_tokens=32)
    assert len({normalized.model_id, raw.model_id, short.model_id}) == 3
    assert np.linalg.norm(raw.embed_one("not normalised")) > 1.5  # MiniLM's raw mean-pooled norm is ~3-7


def test_cached_embedder_wraps_any_embedder(tmp_path: Path):
    class Counting:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def embed(self, texts: list[str]) -> list[list[float]]:
            self.seen += texts
            return [[float(len(t)), 1.0] for t in texts]

    inner = Counting()
    wrapped = CachedEmbedder(inner, EmbeddingCache(tmp_path / "e.sqlite"), model_id="lengths")
    assert wrapped.embed(["ab", "abc"]) == [[2.0, 1.0], [3.0, 1.0]]
    assert wrapped.embed(["abc", "abcd"]) == [[3.0, 1.0], [4.0, 1.0]]
    assert inner.seen == ["ab", "abc", "abcd"]
