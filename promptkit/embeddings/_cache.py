"""A persistent store of embeddings: SQLite in WAL mode, one connection per thread.

The key is sha256(model id, text); the value the float32 bytes of the vector. The model id must change
whenever the vectors would (another model file, truncation or normalisation), or stale vectors come back.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
_BUSY_TIMEOUT_S = 15.0
_CHUNK = 500  # stays below SQLite's bound-parameter limit


def embedding_key(model_id: str, text: str) -> str:
    # The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()


class EmbeddingCache:
    """Embeddings on disk, keyed by model id and text. Safe across threads and processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    def _fail(self, action: str, exc: BaseException) -> CacheError:
        return CacheError(f"embedding cache: cannot {action}: {exc}", location=str(self.path))

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise CacheError("embedding cache is closed", location=str(self.path))
        if os.getpid() != self._pid:  # a forked child must not share the parent's connections
            self._local, self._connections, self._pid = threading.local(), [], os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if self.path.is_dir():
                raise sqlite3.OperationalError("is a directory")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._configure(conn)
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            raise self._fail("open", exc) from exc
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"journal_mode is {mode!r}, WAL is required")
                conn.execute("PRAGMA synchronous = NORMAL")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > _SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(
                        f"schema version {version} is newer than this promptkit reads"
                    )
                if version < _SCHEMA_VERSION:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        conn.execute(_SCHEMA)
                        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                        conn.execute("COMMIT")
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                return
            except sqlite3.OperationalError as exc:
                # A fresh file switching to WAL needs a moment of exclusive access another process may hold.
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def get_many(self, model_id: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """One float32 vector per text, or ``None`` where this model has not embedded that text yet."""
        import numpy as np

        keys = [embedding_key(model_id, text) for text in texts]
        found: dict[str, np.ndarray] = {}
        conn = self._connection()
        try:
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
        except sqlite3.Error as exc:
            raise self._fail("read", exc) from exc
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
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail("write", exc) from exc

    def count(self, model_id: str | None = None) -> int:
        """How many vectors are stored (for one model id, if given)."""
        conn = self._connection()
        try:
            if model_id is None:
                return int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            return int(
                conn.execute("SELECT COUNT(*) FROM embeddings WHERE model_id = ?", (model_id,)).fetchone()[0]
            )
        except sqlite3.Error as exc:
            raise self._fail("count", exc) from exc

    def clear(self, model_id: str | None = None) -> int:
        """Delete the vectors (of one model id, if given); returns how many went."""
        conn = self._connection()
        try:
            if model_id is None:
                cursor = conn.execute("DELETE FROM embeddings")
            else:
                cursor = conn.execute("DELETE FROM embeddings WHERE model_id = ?", (model_id,))
            return int(cursor.rowcount)
        except sqlite3.Error as exc:
            raise self._fail("clear", exc) from exc

    def close(self) -> None:
        """Close every thread's connection. Safe to call twice."""
        with self._lock:
            self._closed = True
            connections, self._connections = (self._connections if os.getpid() == self._pid else []), []
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:  # best effort: the data is already committed
                pass
        self._local = threading.local()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
