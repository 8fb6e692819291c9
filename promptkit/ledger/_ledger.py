"""The ledger: a SQLite record of every attempt, grouped into runs, with totals computed in SQL."""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import os
import secrets
import sqlite3
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import pydantic_core

from promptkit._sqlite import BatchWriter, SQLiteFile, current_pid
from promptkit.config import Config, load_config
from promptkit.errors import LedgerError
from promptkit.ledger._rows import SUCCESS_OUTCOMES, LedgerEntry, LedgerTotals, RunSummary
from promptkit.ledger._scrub import scrub_secrets, scrub_value

__all__ = ["Ledger", "LEDGER_FILE", "default_ledger"]

LEDGER_FILE = "ledger.sqlite"

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_runs (
    run_id     TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    name       TEXT,
    meta       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS ledger_runs_started ON ledger_runs (started_at);
CREATE TABLE IF NOT EXISTS ledger_attempts (
    id               INTEGER PRIMARY KEY,
    run_id           TEXT NOT NULL,
    ts               REAL NOT NULL,
    call_id          TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    template         TEXT,
    template_hash    TEXT,
    model            TEXT NOT NULL,
    tier             INTEGER,
    input_tokens     INTEGER NOT NULL,
    output_tokens    INTEGER NOT NULL,
    cost_usd         REAL NOT NULL,
    compute_s        REAL,
    latency_s        REAL NOT NULL,
    cache            TEXT,
    cache_similarity REAL,
    saved_usd        REAL NOT NULL,
    reason           TEXT,
    outcome          TEXT NOT NULL,
    error            TEXT,
    features         TEXT NOT NULL,
    accepted         INTEGER
);
CREATE INDEX IF NOT EXISTS ledger_attempts_run ON ledger_attempts (run_id, ts);
CREATE TABLE IF NOT EXISTS ledger_segments (name TEXT PRIMARY KEY)
"""

_COLUMNS = (
    "run_id",
    "ts",
    "call_id",
    "attempt",
    "template",
    "template_hash",
    "model",
    "tier",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "compute_s",
    "latency_s",
    "cache",
    "cache_similarity",
    "saved_usd",
    "reason",
    "outcome",
    "error",
    "features",
    "accepted",
)
# The last three columns are transformed on the way in (scrubbed, encoded); the rest go as they are.
_ERROR_INDEX = _COLUMNS.index("error")
assert _COLUMNS[_ERROR_INDEX:] == ("error", "features", "accepted")
_INSERT = f"INSERT INTO ledger_attempts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM ledger_attempts"

_SUCCESS = "(" + ", ".join(f"'{o}'" for o in SUCCESS_OUTCOMES) + ")"
# One row of sums per {group} (run_id, or '' for the whole ledger); a call is identified by (run_id, call_id).
# Failures (calls with no successful attempt) come from _FAILURES.
_SUMS = f"""
SELECT {{group}},
    COUNT(DISTINCT run_id || char(31) || call_id), COUNT(*),
    COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
    COALESCE(SUM(cost_usd), 0.0), COALESCE(SUM(compute_s), 0.0),
    COALESCE(SUM(reason IN ('retry', 'reask')), 0), COALESCE(SUM(reason = 'escalation'), 0),
    COALESCE(SUM(reason = 'fallback'), 0),
    COALESCE(SUM(outcome = 'cache_hit' OR cache IS NOT NULL), 0), COALESCE(SUM(saved_usd), 0.0),
    COALESCE(SUM(outcome NOT IN {_SUCCESS}), 0), COALESCE(SUM(latency_s), 0.0)
FROM ledger_attempts {{where}} GROUP BY 1
"""
_FAILURES = f"""
SELECT {{group}}, COUNT(*) FROM (
    SELECT run_id, call_id FROM ledger_attempts {{where}}
    GROUP BY run_id, call_id HAVING SUM(outcome IN {_SUCCESS}) = 0
) GROUP BY 1
"""
_TOTAL_FIELDS = (
    "calls",
    "attempts",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "compute_s",
    "retries",
    "escalations",
    "fallbacks",
    "cache_hits",
    "saved_usd",
    "failed_attempts",
    "latency_s",
)

_NEW_RUN_TRIES = 50


class _NotJSON(Exception):
    """A value json cannot encode; the ledger turns it into a LedgerError naming the field."""


def _refuse(obj: object) -> object:
    raise _NotJSON(type(obj).__name__)


# One encoder for every row: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=_refuse)


_DEFAULTS: dict[str, Any] = {
    name: field.get_default(call_default_factory=True)
    for name, field in LedgerEntry.model_fields.items()
    if not field.is_required()
}
_ADD_RUN = "INSERT OR IGNORE INTO ledger_runs (run_id, started_at, name, meta) VALUES (?, ?, NULL, '{}')"
_TEMP_LOCK = ".lock-new"


class _Journal(BatchWriter):
    """Rows on their way into the ledger. ``add`` appends the row to this process's current journal segment
    with one write(2), so a returned ``record()`` survives a kill -9; a background thread commits the rows
    in batches, and with them the segment's name, and then deletes the segment. Segments left by a process
    that died are replayed, exactly once, by the next Ledger that opens the file (``recover``).

    Files live in ``<ledger>.pending/``: ``<owner>.lock`` (held with flock while the owner lives) and
    ``<owner>-<n>.rows`` (JSON lines), where ``<owner>`` is ``<pid>-<random>``.
    """

    def __init__(self, db: SQLiteFile, folder: Path) -> None:
        self.folder = folder
        super().__init__(db, name="promptkit-ledger-writer")
        _JOURNALS.add(self)

    def _drop_inherited(self) -> None:
        """In a forked child: close our copies of the parent's descriptors (never unlock them: that would
        unlock the parent's), so the parent's lock dies with the parent even while the child lives on."""
        for fd in (self._lock_fd, self._fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._lock_fd = self._fd = None
        self._owner = None

    def _reset(self) -> None:
        # A forked child keeps none of the parent's files: it starts its own owner name and segments.
        super()._reset()
        self._owner: str | None = None
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._segment: Path | None = None
        self._seq = 0
        self._carried: list[Path] = []  # segments whose rows failed to commit and were queued again
        self._unlinked: list[str] = []  # names to forget in the next transaction, their files gone

    # -- this process's segments ------------------------------------------------------------------------

    def _claim(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        # Locked under a temporary name first: a lock file visible but not yet held would look abandoned.
        temp = self.folder / f"{owner}{_TEMP_LOCK}"
        fd = os.open(temp, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(temp, self.folder / f"{owner}.lock")
        self._owner, self._lock_fd = owner, fd

    def _on_add(self, key: Any, item: Any) -> None:
        if self._fd is None:
            if self._owner is None:
                self._claim()
            self._seq += 1
            self._segment = self.folder / f"{self._owner}-{self._seq}.rows"
            self._fd = os.open(self._segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self._fd, pydantic_core.to_json(item) + b"\n")

    def _on_take(self) -> Any:
        segments = [*self._carried]
        self._carried = []
        if self._fd is not None:
            os.close(self._fd)
            segments.append(self._segment)
            self._fd, self._segment = None, None
        forget, self._unlinked = self._unlinked, []
        return segments, forget

    def write(self, conn: sqlite3.Connection, items: list[Any], token: Any) -> None:
        segments, forget = token
        _insert_rows(conn, items, [p.name for p in segments])
        if forget:
            conn.executemany("DELETE FROM ledger_segments WHERE name = ?", [(n,) for n in forget])

    def _on_commit(self, token: Any) -> None:
        for path in token[0]:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        with self.lock:
            self._unlinked.extend(p.name for p in token[0])

    def _on_failure(self, items: dict[Any, Any], token: Any) -> None:
        # Rows are never dropped: they go back to the front of the queue, and their segments stay on disk.
        self._pending = {**items, **self._pending}
        self._carried = [*token[0], *self._carried]
        self._unlinked = [*token[1], *self._unlinked]

    def release(self) -> None:
        """After a final flush: nothing of ours is pending, so the lock file goes."""
        if self._lock_fd is None or self._pid != current_pid() or self.pending:
            return
        try:
            (self.folder / f"{self._owner}.lock").unlink()
        except FileNotFoundError:
            pass
        os.close(self._lock_fd)
        self._lock_fd, self._owner = None, None

    # -- other processes' segments ----------------------------------------------------------------------

    def recover(self) -> int:
        """Replay the segments of every process that died before committing them. Returns rows added."""
        try:
            locks = [p for p in self.folder.iterdir() if p.name.endswith(".lock")]
        except FileNotFoundError:
            return 0
        added = 0
        for lock in locks:
            owner = lock.name[: -len(".lock")]
            if owner == self._owner:
                continue
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue  # recovered by someone else just now
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive and will commit its own rows
                added += self._replay(owner)
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return added

    def _replay(self, owner: str) -> int:
        segments = sorted(
            self.folder.glob(f"{owner}-*.rows"), key=lambda p: int(p.name[len(owner) + 1 : -len(".rows")])
        )
        if not segments:
            return 0
        rows: list[Any] = []
        names = [p.name for p in segments]
        with self._db.write("recover the rows of a stopped process") as conn:
            marks = ", ".join("?" * len(names))
            done = {
                n for (n,) in conn.execute(f"SELECT name FROM ledger_segments WHERE name IN ({marks})", names)
            }
            for path in segments:
                if path.name not in done:
                    rows.extend(_read_segment(path))
            _insert_rows(conn, rows, [n for n in names if n not in done])
        for path in segments:
            path.unlink(missing_ok=True)
        with self._db.write("forget replayed segments") as conn:
            conn.executemany("DELETE FROM ledger_segments WHERE name = ?", [(n,) for n in names])
        return len(rows)


_JOURNALS: weakref.WeakSet[_Journal] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for journal in list(_JOURNALS):
        journal._drop_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _insert_rows(conn: sqlite3.Connection, rows: list[Any], segments: list[str]) -> None:
    started: dict[str, float] = {}
    for row in rows:
        started.setdefault(row[0], row[1])
    conn.executemany(_ADD_RUN, started.items())
    conn.executemany(_INSERT, rows)
    conn.executemany("INSERT OR IGNORE INTO ledger_segments (name) VALUES (?)", [(n,) for n in segments])


def _read_segment(path: Path) -> list[Any]:
    rows = []
    for line in path.read_bytes().split(b"\n"):
        try:
            row = json.loads(line)
        except ValueError:
            continue  # the torn last line of a write cut short, or the empty tail
        if isinstance(row, list) and len(row) == len(_COLUMNS):
            rows.append(tuple(row))
    return rows


class Ledger:
    """Every attempt of every call, in one SQLite file shared by threads, asyncio tasks and processes.

    Request bodies are never stored; ``error`` strings and ``features`` pass through ``scrub_secrets``.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._db = SQLiteFile(
            self.path, error=LedgerError, what="ledger", schema=_SCHEMA, version=_SCHEMA_VERSION
        )
        self._db.connection()  # a corrupt or unopenable file fails here, naming the path
        self._journal = _Journal(self._db, self.path.with_name(self.path.name + ".pending"))
        self._keys = itertools.count()
        self._recover()
        self._finalizer = weakref.finalize(self, _flush_at_exit, self._journal, self._db)

    # -- runs -------------------------------------------------------------------------------------------

    def new_run(self, name: str | None = None, meta: dict[str, Any] | None = None) -> str:
        """Start a run; its id sorts by start time (UTC), e.g. ``20261121-021633-4f2a``."""
        meta_json = self._json(scrub_value(meta or {}), "meta")
        conn = self._db.connection()
        for _ in range(_NEW_RUN_TRIES):
            now = self._clock()
            run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{secrets.token_hex(2)}"
            try:
                with self._db.errors("start a run"):
                    conn.execute(
                        "INSERT INTO ledger_runs (run_id, started_at, name, meta) VALUES (?, ?, ?, ?)",
                        (run_id, now, name, meta_json),
                    )
                return run_id
            except LedgerError as exc:
                if not isinstance(exc.__cause__, sqlite3.IntegrityError):
                    raise
        raise self._db.fail(f"could not find a free run id after {_NEW_RUN_TRIES} tries")

    def latest_run(self) -> str | None:
        self._settle()
        conn = self._db.connection()
        with self._db.errors("read runs"):
            row = conn.execute(
                "SELECT run_id FROM ledger_runs ORDER BY started_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
        return row[0] if row else None

    def resolve_run(self, ref: str) -> str:
        """``latest``, a full run id, or an unambiguous prefix of one → the run id; anything else is an error."""
        if ref == "latest":
            latest = self.latest_run()
            if latest is None:
                raise self._db.fail("the ledger has no runs yet")
            return latest
        conn = self._db.connection()
        with self._db.errors("read runs"):
            if conn.execute("SELECT 1 FROM ledger_runs WHERE run_id = ?", (ref,)).fetchone():
                return ref
            found = conn.execute(
                "SELECT run_id FROM ledger_runs WHERE substr(run_id, 1, ?) = ? LIMIT 2", (len(ref), ref)
            ).fetchall()
        if len(found) == 1:
            return str(found[0][0])
        if found:
            raise self._db.fail(f"run {ref!r} is ambiguous: it starts more than one run id")
        raise self._db.fail(f"no run {ref!r}")

    def run(self, run_id: str) -> RunSummary:
        """One run with its totals; an unknown id is a LedgerError."""
        self._settle()
        conn = self._db.connection()
        with self._db.errors("read runs"):
            row = conn.execute(
                "SELECT run_id, started_at, name, meta FROM ledger_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise self._db.fail(f"no run {run_id!r}")
        return self._summaries([row])[0]

    def runs(self, limit: int = 20) -> list[RunSummary]:
        """The most recent runs first, each with its totals."""
        self._settle()
        conn = self._db.connection()
        with self._db.errors("read runs"):
            rows = conn.execute(
                "SELECT run_id, started_at, name, meta FROM ledger_runs ORDER BY started_at DESC, rowid DESC LIMIT ?",
                (max(0, limit),),
            ).fetchall()
        return self._summaries(rows)

    def _summaries(self, rows: list[tuple[Any, ...]]) -> list[RunSummary]:
        ids = [row[0] for row in rows]
        where = f"WHERE run_id IN ({', '.join('?' * len(ids))})" if ids else "WHERE 0"
        totals = self._totals_by_run(where, tuple(ids))
        return [
            RunSummary(
                run_id=run_id,
                started_at=started_at,
                name=name,
                meta=json.loads(meta or "{}"),
                totals=totals.get(run_id, LedgerTotals()),
            )
            for run_id, started_at, name, meta in rows
        ]

    # -- attempts ---------------------------------------------------------------------------------------

    def record(self, entry: LedgerEntry) -> None:
        """Append one attempt (its run is created if it was never started with ``new_run``).

        Durable when it returns: the row is in this process's journal (one write(2), so it survives a kill
        of the process) and reaches SQLite within milliseconds, many rows per transaction; readers in this
        process see it at once. As with the WAL (``synchronous=NORMAL``), nothing is fsynced per row.
        """
        self._append(self._row(entry))

    def _append(self, row: tuple[Any, ...]) -> None:
        self._db.check_open()
        try:
            self._journal.add(next(self._keys), row)
        except OSError as exc:
            raise self._db.fail(f"ledger: cannot record an attempt: {exc}") from exc

    def flush(self) -> None:
        """Commit every recorded row now; raises the background writer's error, if it had one."""
        self._journal.flush_and_report("record attempts")

    def _recover(self) -> None:
        try:
            with self._db.errors("recover rows of a stopped process"):
                self._journal.recover()
        except OSError as exc:
            raise self._db.fail(f"ledger: cannot read pending rows: {exc}") from exc

    def _settle(self) -> None:
        """Before a read: the rows of this process committed, and those of dead processes replayed."""
        self.flush()
        with self._db.errors("record attempts"):
            self._journal.flush_family()
        self._recover()

    async def arecord(self, entry: LedgerEntry) -> None:
        await asyncio.to_thread(self.record, entry)

    def _row(self, entry: LedgerEntry) -> tuple[Any, ...]:
        if not isinstance(entry, LedgerEntry):
            raise self._db.fail(f"record() takes a LedgerEntry, not {type(entry).__name__}")
        # The entry's own attribute dict: model_dump() would deep-copy features only for us to encode them.
        return self._finish(entry.__dict__)

    def record_trusted(self, values: dict[str, Any]) -> None:
        """``record()`` for values promptkit built itself, already of ``LedgerEntry``'s types: no model is
        validated (this is every model call's hot path). Missing keys take LedgerEntry's defaults."""
        self._append(self._finish({**_DEFAULTS, "ts": time.time(), **values}, trusted=True))

    def _finish(self, values: dict[str, Any], *, trusted: bool = False) -> tuple[Any, ...]:
        error = values["error"]
        accepted = values["accepted"]
        return (
            *[values[c] for c in _COLUMNS[:_ERROR_INDEX]],
            scrub_secrets(error) if error is not None else None,
            self._features(values["features"], trusted),
            None if accepted is None else int(accepted),
        )

    def _features(self, features: dict[str, Any], trusted: bool) -> str:
        # promptkit's own features are plain JSON values: the Rust encoder; anything else is checked.
        text = pydantic_core.to_json(features).decode() if trusted else self._json(features, "features")
        # Scrubbing the encoded text is one pass; when it finds something, scrub value by value instead,
        # so that a mask can never break the JSON.
        if scrub_secrets(text) == text:
            return text
        return self._json(scrub_value(features), "features")

    def entries(self, run_id: str | None = None) -> list[LedgerEntry]:
        """Attempts in time order, of one run or of the whole ledger."""
        self._settle()
        conn = self._db.connection()
        sql, args = (f"{_SELECT} WHERE run_id = ?", (run_id,)) if run_id is not None else (_SELECT, ())
        with self._db.errors("read attempts"):
            rows = conn.execute(f"{sql} ORDER BY ts, id", args).fetchall()
        out = []
        for row in rows:
            values = dict(zip(_COLUMNS, row, strict=True))
            values["features"] = json.loads(values["features"])
            values["accepted"] = None if values["accepted"] is None else bool(values["accepted"])
            out.append(LedgerEntry.model_validate(values))
        return out

    def totals(self, run_id: str | None = None) -> LedgerTotals:
        """Sums over one run, or over the whole ledger."""
        self._settle()
        if run_id is not None:
            return self._totals_by_run("WHERE run_id = ?", (run_id,)).get(run_id, LedgerTotals())
        return self._totals_by_run("", (), group="''").get("", LedgerTotals())

    def _totals_by_run(
        self, where: str, args: tuple[Any, ...], group: str = "run_id"
    ) -> dict[str, LedgerTotals]:
        conn = self._db.connection()
        with self._db.errors("sum attempts"):
            sums = conn.execute(_SUMS.format(where=where, group=group), args).fetchall()
            failures = dict(conn.execute(_FAILURES.format(where=where, group=group), args).fetchall())
        return {
            row[0]: LedgerTotals(
                **dict(zip(_TOTAL_FIELDS, row[1:], strict=True)), failures=failures.get(row[0], 0)
            )
            for row in sums
        }

    # -- lifecycle --------------------------------------------------------------------------------------

    def close(self) -> None:
        """Commit every recorded row and close every connection. Safe to call twice."""
        if self._db.closed:
            return
        try:
            self.flush()
            self._journal.release()
        finally:
            self._db.close()
            self._finalizer.detach()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def _json(self, value: Any, field: str) -> str:
        try:
            return _ENCODER.encode(value)
        except _NotJSON as exc:
            raise self._db.fail(f"{field} must hold JSON values; got {exc.args[0]}") from None


def _flush_at_exit(journal: _Journal, db: SQLiteFile) -> None:
    """Last chance for the rows of a ledger nobody closed. If it fails they stay in the journal, and the
    next Ledger on this file replays them."""
    try:
        journal.flush()
        journal.release()
        db.close()
    except Exception:  # noqa: BLE001 - interpreter shutdown or garbage collection
        pass


def default_ledger(config: Config | None = None) -> Ledger:
    """Open the ledger in the configured state folder (created if missing)."""
    config = config or load_config()
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(
            f"cannot create the state folder: {exc.strerror}", location=str(config.state_dir)
        ) from None
    return Ledger(config.state_dir / LEDGER_FILE)
