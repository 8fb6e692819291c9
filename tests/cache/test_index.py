"""Vector indexes: exact brute force and faiss HNSW behind one protocol, with save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptkit.cache import BruteForceIndex, HNSWIndex, VectorIndex, load_index, make_index
from promptkit.errors import CacheError


def _unit(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("cls", [BruteForceIndex, HNSWIndex])
def test_search_finds_each_vector_first_with_cosine_one(cls: type) -> None:
    vectors = _unit(300, 16)
    index = cls(16)
    assert isinstance(index, VectorIndex)
    index.add(list(range(1000, 1300)), vectors)
    assert len(index) == 300
    for i in (0, 57, 299):
        (top_id, score), *rest = index.search(vectors[i], 3)
        assert top_id == 1000 + i
        assert score == pytest.approx(1.0, abs=1e-5)
        assert all(s <= score for _, s in rest)


@pytest.mark.parametrize("cls", [BruteForceIndex, HNSWIndex])
def test_remove_hides_entries_and_save_load_round_trips(cls: type, tmp_path: Path) -> None:
    vectors = _unit(50, 8, seed=1)
    index = cls(8)
    index.add(range(50), vectors)
    assert index.remove([3, 4, 999]) == 2
    assert len(index) == 48
    assert all(i not in (3, 4) for i, _ in index.search(vectors[3], 48))
    index.save(tmp_path / "i.npz", meta={"generation": 7})
    loaded, meta = load_index(tmp_path / "i.npz")
    assert meta == {"generation": 7}
    assert type(loaded) is cls and len(loaded) == 48
    assert loaded.search(vectors[10], 1)[0][0] == 10
    assert all(i not in (3, 4) for i, _ in loaded.search(vectors[4], 48))


def test_brute_force_scores_are_exact_inner_products() -> None:
    vectors = _unit(20, 4, seed=2)
    index = BruteForceIndex(4)
    index.add(range(20), vectors)
    query = _unit(1, 4, seed=3)[0]
    got = index.search(query, 20)
    expected = sorted(((i, float(vectors[i] @ query)) for i in range(20)), key=lambda p: -p[1])
    assert [i for i, _ in got] == [i for i, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-6)


def test_hnsw_recall_against_exact_search() -> None:
    vectors = _unit(5000, 32, seed=4)
    exact, approx = BruteForceIndex(32), HNSWIndex(32)
    exact.add(range(5000), vectors)
    approx.add(range(5000), vectors)
    queries = _unit(100, 32, seed=5)
    found = sum(
        len({i for i, _ in exact.search(q, 10)} & {i for i, _ in approx.search(q, 10)}) for q in queries
    )
    assert found / 1000 >= 0.95


@pytest.mark.parametrize("cls", [BruteForceIndex, HNSWIndex])
def test_bad_input_is_a_cache_error(cls: type) -> None:
    index = cls(8)
    with pytest.raises(CacheError, match="dimension 8"):
        index.add([1], np.ones((1, 5), dtype=np.float32))
    index.add([1], _unit(1, 8))
    with pytest.raises(CacheError, match="already in the index"):
        index.add([1], _unit(1, 8))
    with pytest.raises(CacheError, match="ids for"):
        index.add([2, 3], _unit(1, 8))


def test_unreadable_index_file_is_a_cache_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CacheError, match="cannot read the vector index") as info:
        load_index(bad)
    assert str(bad) in str(info.value)


def test_make_index_chooses_by_expected_size() -> None:
    assert isinstance(make_index(8, "auto", expected=10), BruteForceIndex)
    assert isinstance(make_index(8, "auto", expected=50_000), HNSWIndex)
    assert isinstance(make_index(8, "hnsw"), HNSWIndex)
    with pytest.raises(CacheError, match="unknown index kind"):
        make_index(8, "nope")  # type: ignore[arg-type]
