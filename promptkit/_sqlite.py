"""One SQLite file shared by threads, asyncio tasks and processes: a connection per thread, WAL mode.

Shared by every store that lasts: the exact and semantic caches, the ledger, the embedding cache.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from promptkit.errors import PromptkitError

__all__ = ["SQLiteFile"]

BUSY_TIMEOUT_MS = 15_000
# Switching a fresh file to WAL needs a moment of exclusive access; other processes may hold it.
_INIT_DEADLINE_S = 30.0
_WAL_SIZE_LIMIT = 64 * 1024 * 1024


class _Connection(sqlite3.Connection):
    """A plain connection that can be weakly referenced (the base class cannot)."""


class SQLiteFile:
    """A database file opened lazily, once per thread, with the schema created on first use.

    ``schema`` is run (in one transaction) when the file's ``user_version`` is below ``version``;
    a file written by a newer promptkit, or one that is not a database, raises ``error`` naming the path.
    """

    def __init__(
        self, path: Path, *, error: type[PromptkitError], what: str, schema: str, version: int
    ) -> None:
        self.path = path
        self._error = error
        self._what = what
        self._schema = schema
        self._version = version
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._pid = os.getpid()
        self._closed = False
        self._ready = False

    # -- errors -----------------------------------------------------------------------------------------

    def fail(self, message: str) -> PromptkitError:
        return self._error(message, location=str(self.path))

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn any sqlite3 error inside the block into this file's promptkit error."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self.fail(f"{self._what}: cannot {action}: {exc}") from exc

    # -- connections ------------------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        if self._closed:
            raise self.fail(f"{self._what} is closed")
        if os.getpid() != self._pid:
            # A forked child must not touch the parent's connections; start afresh.
            self._local = threading.local()
            self._connections = weakref.WeakSet()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> _Connection:
        with self.errors("open"):
            if self.path.is_dir():
                raise sqlite3.OperationalError("is a directory")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # autocommit; writes open their own BEGIN IMMEDIATE
                check_same_thread=False,  # only close() touches a connection from another thread
                factory=_Connection,
            )
            try:
                self._configure(conn)
            except BaseException:
                conn.close()
                raise
        with self._lock:
            if self._closed:
                conn.close()
                raise self.fail(f"{self._what} is closed")
            self._connections.add(conn)
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        deadline = time.monotonic() + _INIT_DEADLINE_S
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"journal_mode is {mode!r}, WAL is required")
                conn.execute("PRAGMA synchronous = NORMAL")
                # After a checkpoint, shrink a WAL that a big transaction blew up; a huge WAL slows every read.
                conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
                if not self._ready:
                    self._migrate(conn)
                    self._ready = True
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > self._version:
            raise self.fail(
                f"{self._what} has schema version {found}; this promptkit reads up to {self._version}"
            )
        if found == self._version:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < self._version:
                for statement in self._schema.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {self._version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (BEGIN IMMEDIATE) so it never fails halfway on a lock."""
        conn = self.connection()
        with self.errors(action):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def checkpoint(self) -> None:
        """Copy the WAL back into the database and truncate it, if no reader is in the way (best effort)."""
        conn = self.connection()
        with self.errors("checkpoint"):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def close(self) -> None:
        """Close every thread's connection. Safe to call twice."""
        with self._lock:
            self._closed = True
            connections = list(self._connections) if os.getpid() == self._pid else []
            self._connections = weakref.WeakSet()
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:  # closing is best effort; the data is already committed
                pass
        self._local = threading.local()

    @property
    def closed(self) -> bool:
        return self._closed
