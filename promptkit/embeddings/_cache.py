"""A persistent store of embeddings: SQLite in WAL mode, one connection per thread.

The key is sha256(model id, text); the value the float32 bytes of the vector. The model id must change
whenever the vectors would (another model file, truncation or normalisation), or stale vectors come back.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from promptkit._sqlite import SQLiteFile
from promptkit.errors import CacheError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EmbeddingCache", "embedding_key"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    key TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    created REAL NOT NULL
)
"""
_CHUNK = 500  # stays below SQLite's bound-parameter limit


def embedding_key(model_id: str, text: str) -> str:
    # The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()


class EmbeddingCache:
    """Embeddings on disk, keyed by model id and text. Safe across threads and processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._db = SQLiteFile(
            self.path, error=CacheError, what="embedding cache", schema=_SCHEMA, version=_SCHEMA_VERSION
        )

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    def get_many(self, model_id: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """One float32 vector per text, or ``None`` where this model has not embedded that text yet."""
        import numpy as np

        keys = [embedding_key(model_id, text) for text in texts]
        found: dict[str, np.ndarray] = {}
        conn = self._db.connection()
        with self._db.errors("read"):
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks}) AND model_id = ?",
                    [*chunk, model_id],
                )
                for key, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype="<f4")
                    if vector.size == dim:  # a torn or foreign row is a miss, not a wrong answer
                        found[key] = vector.astype(np.float32)
        return [found.get(key) for key in keys]

    def put_many(
        self, model_id: str, texts: Sequence[str], vectors: Sequence[Sequence[float]] | np.ndarray
    ) -> None:
        """Store one vector per text (as float32) for ``model_id``; an existing entry is replaced."""
        import numpy as np

        if len(texts) != len(vectors):
            raise CacheError(
                f"embedding cache: {len(texts)} texts but {len(vectors)} vectors", location=str(self.path)
            )
        now = time.time()
        rows = []
        for text, vector in zip(texts, vectors, strict=True):
            array = np.asarray(vector, dtype="<f4").reshape(-1)
            rows.append((embedding_key(model_id, text), model_id, int(array.size), array.tobytes(), now))
        if not rows:
            return
        with self._db.write("write") as conn:
            conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)

    def count(self, model_id: str | None = None) -> int:
        """How many vectors are stored (for one model id, if given)."""
        conn = self._db.connection()
        with self._db.errors("count"):
            if model_id is None:
                return int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            return int(
                conn.execute("SELECT COUNT(*) FROM embeddings WHERE model_id = ?", (model_id,)).fetchone()[0]
            )

    def clear(self, model_id: str | None = None) -> int:
        """Delete the vectors (of one model id, if given); returns how many went."""
        with self._db.write("clear") as conn:
            if model_id is None:
                cursor = conn.execute("DELETE FROM embeddings")
            else:
                cursor = conn.execute("DELETE FROM embeddings WHERE model_id = ?", (model_id,))
            return int(cursor.rowcount)

    def close(self) -> None:
        """Close every thread's connection. Safe to call twice."""
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
