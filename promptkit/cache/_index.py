"""Vector indexes for the semantic cache: exact brute force (numpy) and approximate HNSW (faiss-cpu).

Both hold unit-length float32 vectors keyed by integer ids and score by inner product (= cosine). They are
not thread-safe on their own; ``SemanticCache`` serialises access with its lock.

Why faiss-cpu for the approximate index: it installs as a manylinux wheel (hnswlib builds from source, and
sqlite-vec's ``vec0`` tables are brute force only), its HNSW answers a 384-d query over 100,000 vectors in a
fraction of a millisecond, and it serialises to bytes, so one ``.npz`` file holds a whole index.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from promptkit.errors import BackendUnavailable, CacheError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "AUTO_APPROXIMATE_AT",
    "BruteForceIndex",
    "HNSWIndex",
    "IndexKind",
    "VectorIndex",
    "load_index",
    "make_index",
]

IndexKind = Literal["auto", "brute", "hnsw"]
# Below this many vectors a numpy scan is exact and fast enough (about 1 ms at 20,000 x 384).
AUTO_APPROXIMATE_AT = 20_000
_FORMAT = 1


@runtime_checkable
class VectorIndex(Protocol):
    """What the semantic cache needs from an index."""

    dim: int

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None: ...

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]: ...

    def remove(self, ids: Sequence[int]) -> int: ...

    def __len__(self) -> int: ...

    def save(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None: ...


def _as_matrix(vectors: Any, dim: int, where: str) -> np.ndarray:
    import numpy as np

    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != dim:
        raise CacheError(
            f"expected vectors of dimension {dim}, got shape {tuple(array.shape)}", location=where
        )
    return array


def _check_ids(ids: Sequence[int], n: int, where: str) -> list[int]:
    out = [int(i) for i in ids]
    if len(out) != n:
        raise CacheError(f"{len(out)} ids for {n} vectors", location=where)
    if len(set(out)) != len(out):
        raise CacheError("ids must be unique", location=where)
    return out


class BruteForceIndex:
    """Every vector in one growing float32 matrix; a search is one matrix-vector product (exact)."""

    kind = "brute"

    def __init__(self, dim: int) -> None:
        import numpy as np

        if dim < 1:
            raise CacheError(f"dimension must be >= 1, got {dim}", location="BruteForceIndex")
        self.dim = dim
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._n = 0
        self._rows: dict[int, int] = {}

    def __len__(self) -> int:
        return self._n

    def __contains__(self, item: int) -> bool:
        return int(item) in self._rows

    def ids(self) -> list[int]:
        return [int(i) for i in self._ids[: self._n]]

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        import numpy as np

        array = _as_matrix(vectors, self.dim, "BruteForceIndex.add")
        keys = _check_ids(ids, len(array), "BruteForceIndex.add")
        taken = [key for key in keys if key in self._rows]
        if taken:
            raise CacheError(f"id {taken[0]} is already in the index", location="BruteForceIndex.add")
        need = self._n + len(array)
        if need > len(self._matrix):  # amortised growth: doubling keeps adds O(1) on average
            capacity = max(need, 2 * len(self._matrix), 64)
            grown = np.zeros((capacity, self.dim), dtype=np.float32)
            grown[: self._n] = self._matrix[: self._n]
            ids_grown = np.zeros(capacity, dtype=np.int64)
            ids_grown[: self._n] = self._ids[: self._n]
            self._matrix, self._ids = grown, ids_grown
        self._matrix[self._n : need] = array
        self._ids[self._n : need] = keys
        for offset, key in enumerate(keys):
            self._rows[key] = self._n + offset
        self._n = need

    def remove(self, ids: Sequence[int]) -> int:
        removed = 0
        for key in ids:
            row = self._rows.pop(int(key), None)
            if row is None:
                continue
            last = self._n - 1
            if row != last:  # move the last row into the hole: the matrix stays dense
                self._matrix[row] = self._matrix[last]
                moved = int(self._ids[last])
                self._ids[row] = moved
                self._rows[moved] = row
            self._n = last
            removed += 1
        return removed

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        import numpy as np

        if self._n == 0 or k < 1:
            return []
        query = _as_matrix(vector, self.dim, "BruteForceIndex.search")[0]
        scores = self._matrix[: self._n] @ query
        k = min(k, self._n)
        top = np.argpartition(-scores, k - 1)[:k] if k < self._n else np.arange(self._n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._ids[i]), float(scores[i])) for i in top]

    def vectors(self) -> np.ndarray:
        return self._matrix[: self._n]

    def save(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        _write_npz(
            path, kind=self.kind, dim=self.dim, meta=meta, ids=self._ids[: self._n], vectors=self.vectors()
        )

    @classmethod
    def _restore(cls, dim: int, data: Any) -> BruteForceIndex:
        index = cls(dim)
        index.add(data["ids"].tolist(), data["vectors"])
        return index


def _faiss(where: str) -> Any:
    try:
        import faiss
    except ImportError:
        raise BackendUnavailable(
            "the approximate index needs faiss-cpu: pip install faiss-cpu (or use index='brute')",
            location=where,
        ) from None
    return faiss


class HNSWIndex:
    """Approximate nearest neighbours with faiss' HNSW graph (inner product).

    HNSW cannot delete, so ``remove`` leaves a tombstone that searches skip (the semantic cache never removes:
    after a deletion anywhere it rebuilds the index from SQLite).
    """

    kind = "hnsw"

    def __init__(self, dim: int, *, m: int = 32, ef_construction: int = 80, ef_search: int = 96) -> None:
        import numpy as np

        faiss = _faiss("HNSWIndex")
        self.dim = dim
        self.ef_search = ef_search
        self._index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = ef_construction
        self._index.hnsw.efSearch = ef_search
        self._labels = np.zeros(0, dtype=np.int64)  # faiss' sequential position -> our id
        self._n_labels = 0
        self._live: dict[int, int] = {}
        self._dead: set[int] = set()  # positions

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, item: int) -> bool:
        return int(item) in self._live

    def ids(self) -> list[int]:
        return list(self._live)

    @property
    def tombstones(self) -> int:
        return len(self._dead)

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        import numpy as np

        array = _as_matrix(vectors, self.dim, "HNSWIndex.add")
        keys = _check_ids(ids, len(array), "HNSWIndex.add")
        taken = [key for key in keys if key in self._live]
        if taken:
            raise CacheError(f"id {taken[0]} is already in the index", location="HNSWIndex.add")
        start = self._n_labels
        need = start + len(keys)
        if need > len(self._labels):
            grown = np.zeros(max(need, 2 * len(self._labels), 64), dtype=np.int64)
            grown[:start] = self._labels[:start]
            self._labels = grown
        self._labels[start:need] = keys
        self._index.add(array)
        for offset, key in enumerate(keys):
            self._live[key] = start + offset
        self._n_labels = need

    def remove(self, ids: Sequence[int]) -> int:
        removed = 0
        for key in ids:
            position = self._live.pop(int(key), None)
            if position is not None:
                self._dead.add(position)
                removed += 1
        return removed

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if not self._live or k < 1:
            return []
        query = _as_matrix(vector, self.dim, "HNSWIndex.search")
        want = min(k + len(self._dead), self._n_labels)
        self._index.hnsw.efSearch = max(self.ef_search, want)
        scores, positions = self._index.search(query, want)
        out: list[tuple[int, float]] = []
        for score, position in zip(scores[0].tolist(), positions[0].tolist(), strict=True):
            if position < 0 or position in self._dead:
                continue
            out.append((int(self._labels[position]), float(score)))
            if len(out) == k:
                break
        return out

    def save(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        import numpy as np

        faiss = _faiss(str(path))
        blob = faiss.serialize_index(self._index)
        _write_npz(
            path,
            kind=self.kind,
            dim=self.dim,
            meta=meta,
            labels=self._labels[: self._n_labels],
            dead=np.array(sorted(self._dead), dtype=np.int64),
            faiss=np.asarray(blob, dtype=np.uint8),
            ef_search=np.array([self.ef_search], dtype=np.int64),
        )

    @classmethod
    def _restore(cls, dim: int, data: Any) -> HNSWIndex:
        faiss = _faiss("HNSWIndex.load")
        index = cls(dim, ef_search=int(data["ef_search"][0]))
        index._index = faiss.deserialize_index(data["faiss"])
        labels = data["labels"].astype("int64")
        index._labels = labels.copy()
        index._n_labels = len(labels)
        index._dead = {int(p) for p in data["dead"].tolist()}
        index._live = {int(label): pos for pos, label in enumerate(labels.tolist()) if pos not in index._dead}
        return index


def make_index(dim: int, kind: IndexKind = "auto", *, expected: int = 0) -> BruteForceIndex | HNSWIndex:
    """A new empty index. ``auto``: brute force until ``expected`` reaches ``AUTO_APPROXIMATE_AT`` vectors."""
    if kind == "brute" or (kind == "auto" and expected < AUTO_APPROXIMATE_AT):
        return BruteForceIndex(dim)
    if kind in ("hnsw", "auto"):
        return HNSWIndex(dim)
    raise CacheError(f"unknown index kind {kind!r}; use 'auto', 'brute' or 'hnsw'", location="index")


def _write_npz(
    path: str | os.PathLike[str], *, kind: str, dim: int, meta: dict[str, Any] | None, **arrays: Any
) -> None:
    """Written beside the target and renamed: a reader sees the old file or the new one, never half."""
    import json

    import numpy as np

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"format": _FORMAT, "kind": kind, "dim": dim, "meta": meta or {}})
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, header=np.frombuffer(header.encode(), dtype=np.uint8), **arrays)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_index(path: str | os.PathLike[str]) -> tuple[BruteForceIndex | HNSWIndex, dict[str, Any]]:
    """Read an index written by ``save``; returns it with the ``meta`` saved beside it.

    A missing, truncated or foreign file raises ``CacheError`` (the semantic cache then rebuilds from SQLite).
    """
    import json
    import zipfile

    import numpy as np

    where = str(path)
    try:
        with np.load(where, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode())
            if header.get("format") != _FORMAT:
                raise CacheError(f"unknown index format {header.get('format')!r}", location=where)
            dim = int(header["dim"])
            index: BruteForceIndex | HNSWIndex
            if header["kind"] == "brute":
                index = BruteForceIndex._restore(dim, data)
            elif header["kind"] == "hnsw":
                index = HNSWIndex._restore(dim, data)
            else:
                raise CacheError(f"unknown index kind {header['kind']!r}", location=where)
            return index, dict(header.get("meta") or {})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise CacheError(f"cannot read the vector index: {exc}", location=where) from None
