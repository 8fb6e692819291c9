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
from typing import Any, ClassVar

from promptkit.errors import PromptkitError

__all__ = ["BatchWriter", "SQLiteFile", "current_pid"]

# The process id, kept current across fork by a hook: the hot paths compare it on every call, and
# os.getpid() is a system call.
_pid = os.getpid()


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def current_pid() -> int:
    return _pid


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
        self._pid = _pid
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

    def check_open(self) -> None:
        if self._closed:
            raise self.fail(f"{self._what} is closed")

    def connection(self) -> sqlite3.Connection:
        if self._closed:
            raise self.fail(f"{self._what} is closed")
        if _pid != self._pid:
            # A forked child must not touch the parent's connections; start afresh.
            self._local = threading.local()
            self._connections = weakref.WeakSet()
            self._pid = _pid
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        elif self._local.__dict__.get("snapshot_at") is not None:
            self._end_snapshot(conn)  # whatever comes next may write: it must not run inside a read snapshot
        return conn

    def snapshot(self, max_age_s: float, generation: int) -> sqlite3.Connection:
        """This thread's connection inside a read transaction that consecutive reads share.

        Each autocommit read takes and releases a WAL read lock, two system calls; a shared snapshot takes
        them once. It is renewed when older than ``max_age_s`` or when ``generation`` (a count of this
        process's commits to the file, kept by the caller) moved, so reads lag other processes' writes by at
        most ``max_age_s`` and never miss this process's. Any other use of the connection ends it first.
        """
        local = self._local
        at = local.__dict__.get("snapshot_at")
        if (
            at is not None
            and not self._closed
            and _pid == self._pid
            and local.snapshot_generation == generation
            and time.monotonic() - at <= max_age_s
        ):
            return local.conn  # type: ignore[no-any-return]
        conn = self.connection()  # ends a stale snapshot
        with self.errors("read"):
            conn.execute("BEGIN")
        local = self._local  # a forked child has a new one
        local.snapshot_at, local.snapshot_generation = time.monotonic(), generation
        return conn

    def _end_snapshot(self, conn: sqlite3.Connection) -> None:
        self._local.snapshot_at = None
        if conn.in_transaction:
            with self.errors("end a read"):
                conn.execute("COMMIT")

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
            connections = list(self._connections) if _pid == self._pid else []
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


class BatchWriter:
    """Items written to one SQLite file many per transaction, instead of one commit each.

    ``add`` queues an item; the batch is committed in the caller's thread once it holds ``max_items`` or
    its oldest item is ``max_delay_s`` old, and otherwise by a sweeper thread that wakes only while items
    wait. (A thread that committed every batch would contend for the GIL with a busy event loop on every
    syscall; most calls here just queue.) Until the commit ``find`` serves an item from memory by its key.
    ``flush`` commits everything now. A failed sweep is kept in ``error`` for the owner to raise.
    Subclasses hook ``_on_add`` (under the lock, as the item is queued), ``_on_take`` (under the lock, as a
    batch is taken) and ``_on_commit``/``_on_failure`` (after it).
    """

    # Every writer of this process, by file: another object on the same file must see our items too.
    _by_file: ClassVar[dict[str, weakref.WeakSet[BatchWriter]]] = {}
    _by_file_lock: ClassVar[threading.Lock] = threading.Lock()
    # Commits by the writers of each file in this process: readers renew their snapshot when it moves.
    _commits: ClassVar[dict[str, int]] = {}

    def __init__(self, db: SQLiteFile, *, name: str, max_items: int = 256, max_delay_s: float = 0.05) -> None:
        self._db = db
        self._name = name
        self._max_items = max_items
        self._max_delay_s = max_delay_s
        self._reset()
        self._file = str(db.path.resolve())
        with BatchWriter._by_file_lock:
            self._family = BatchWriter._by_file.setdefault(self._file, weakref.WeakSet())
            self._family.add(self)

    @property
    def generation(self) -> int:
        """How many batches this process's writers have committed to the file."""
        return BatchWriter._commits.get(self._file, 0)

    def _reset(self) -> None:
        self.lock = threading.Lock()  # guards pending/writing
        self._write_lock = threading.Lock()  # one batch at a time, whichever thread writes it
        self._pending: dict[Any, Any] = {}
        self._writing: dict[Any, Any] = {}
        self._oldest = 0.0  # monotonic time of the oldest pending item
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = _pid
        self.error: BaseException | None = None

    def _forget_parent(self) -> None:
        if _pid != self._pid:
            # A forked child has no sweeper; the parent's pending items are the parent's to write.
            self._reset()

    # -- to override ------------------------------------------------------------------------------------

    def write(self, conn: sqlite3.Connection, items: list[Any], token: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def _on_add(self, key: Any, item: Any) -> None:
        pass

    def _on_take(self) -> Any:
        return None

    def _on_commit(self, token: Any) -> None:
        pass

    def _on_failure(self, items: dict[Any, Any], token: Any) -> None:
        pass

    # -- use --------------------------------------------------------------------------------------------

    def add(self, key: Any, item: Any) -> None:
        self._forget_parent()
        now = time.monotonic()
        with self.lock:
            self._on_add(key, item)
            pending = self._pending
            first = not pending
            if first:
                self._oldest = now
            pending[key] = item
            due = len(pending) >= self._max_items or now - self._oldest >= self._max_delay_s
        if due:
            self.flush()
        elif first:
            if self._thread is None:
                self._start()
            self._wake.set()

    def find(self, key: Any) -> Any:
        """An item not yet committed, or None."""
        # No lock: each dict read is atomic, and an item moves from pending to writing to the file in that
        # order, so reading them in the same order never misses it (callers renew their read snapshot when
        # ``generation`` moves).
        found = self._pending.get(key)
        return found if found is not None else self._writing.get(key)

    def find_in_family(self, key: Any) -> Any:
        """``find`` across every writer of this process on the same file."""
        found = self.find(key)
        if found is None and len(self._family) > 1:
            for other in list(self._family):
                if other is not self and (found := other.find(key)) is not None:
                    break
        return found

    def flush(self) -> None:
        """Commit every queued item now, in this thread."""
        self._forget_parent()
        self._write_batch()

    def flush_and_report(self, action: str) -> None:
        """``flush`` for an owner's public API: SQLite errors become the file's error, and the error of a
        failed sweep, if any, is raised once."""
        self._db.connection()
        with self._db.errors(action):
            self.flush()
        error, self.error = self.error, None
        if isinstance(error, PromptkitError):
            raise error
        if error is not None:
            raise self._db.fail(f"{self._db._what}: a background write failed: {error}") from error

    def flush_family(self) -> None:
        """Commit the items of every writer of this process on the same file (before a read)."""
        for writer in list(self._family):
            if writer is self or not writer._db.closed:
                writer.flush()

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._writing)

    def _start(self) -> None:
        self._forget_parent()
        with self.lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=BatchWriter._sweep, args=(weakref.ref(self),), name=self._name, daemon=True
                )
                self._thread.start()

    @staticmethod
    def _sweep(ref: weakref.ref[BatchWriter]) -> None:
        while True:
            writer = ref()
            if writer is None or writer._db.closed:
                return
            wake, delay = writer._wake, writer._max_delay_s
            del writer  # hold no reference while idle, so an abandoned owner can be collected
            if not wake.wait(timeout=1.0):
                continue
            wake.clear()
            while True:
                time.sleep(delay)
                writer = ref()
                if writer is None:
                    return
                if not writer._pending:
                    break  # committed by add() in the meantime; sleep until items wait again
                if time.monotonic() - writer._oldest >= delay:
                    try:
                        writer._write_batch()
                    except Exception as exc:  # noqa: BLE001 - no caller to raise to: kept for flush()
                        writer.error = exc
                        break
                del writer

    def _write_batch(self) -> None:
        with self._write_lock:
            with self.lock:
                if not self._pending:
                    return
                self._writing, self._pending = self._pending, {}
                token = self._on_take()
            try:
                if self._db.closed:
                    raise self._db.fail(f"{self._db._what} is closed")
                with self._db.write("store entries") as conn:
                    self.write(conn, list(self._writing.values()), token)
            except BaseException:
                with self.lock:
                    failed, self._writing = self._writing, {}
                    self._on_failure(failed, token)
                raise
            with self.lock:
                self._writing = {}
            with BatchWriter._by_file_lock:
                BatchWriter._commits[self._file] = BatchWriter._commits.get(self._file, 0) + 1
            self._on_commit(token)
