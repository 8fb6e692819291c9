"""The run log: one SQLite file per eval run, written as the run goes, so a killed run resumes.

Each (variant, model, item, repeat) result is one row. The runner commits results in small batches through
:class:`BatchCommitter` (one transaction per batch instead of one per result, which was most of the log's
cost), and first appends each one, with a single write(2), to the log's journal (``<log>.sqlite.pending``,
JSON lines). A ``kill -9`` therefore loses nothing that was scored: opening the log replays the journal
(``INSERT OR IGNORE`` on the result's key, so a replay is never counted twice), and a resumed run neither
loses nor redoes a finished result. The journal is emptied after each commit. The header (the EvalLog
without results) lives in the ``meta`` table.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pydantic_core

from promptkit.errors import EvalError
from promptkit.evals._eval_log import EvalLog, ItemResult, ResultKey

__all__ = [
    "RunLog",
    "BatchCommitter",
    "run_log_path",
    "find_run_log",
    "record_location",
    "RUNS_FOLDER",
    "COMMIT_INTERVAL_S",
    "COMMIT_BATCH",
]

RUNS_FOLDER = "evals"
# How long, and how many, results wait in the journal before a commit moves them into SQLite.
COMMIT_INTERVAL_S = 0.1
COMMIT_BATCH = 32
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY,
    variant TEXT NOT NULL, model TEXT NOT NULL, item_id TEXT NOT NULL, repeat INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (variant, model, item_id, repeat)
);
"""
_RESULTS_KEY = '"results":[]'
# Rows are never deleted, so a plain rowid already counts up in insertion order; AUTOINCREMENT would also
# rewrite sqlite_sequence in every commit (a third WAL page per result). Logs written with it still read.
# Checkpoint every ~40 MB of WAL rather than SQLite's 4 MB: each checkpoint fsyncs on the event loop's
# thread, stalling every worker for milliseconds, and closing the log checkpoints what is left anyway.
_WAL_AUTOCHECKPOINT_PAGES = 10_000
_INSERT = "INSERT OR IGNORE INTO results (variant, model, item_id, repeat, data) VALUES (?, ?, ?, ?, ?)"


def run_log_path(run_id: str, *, state_dir: Path, out: Path | None = None) -> Path:
    """Next to ``out`` when there is one (``<out folder>/<run_id>.sqlite``), else ``<state_dir>/evals/``."""
    folder = out.parent if out is not None else state_dir / RUNS_FOLDER
    return folder / f"{run_id}.sqlite"


def _pointer(run_id: str, state_dir: Path) -> Path:
    return state_dir / RUNS_FOLDER / f"{run_id}.location"


def record_location(run_id: str, log_path: Path, *, state_dir: Path) -> None:
    """Note in the state dir where a run log placed elsewhere (next to ``--out``) lives, for ``--resume``."""
    pointer = _pointer(run_id, state_dir)
    try:
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text(str(log_path.resolve()) + "\n", encoding="utf-8")
    except OSError as exc:
        raise EvalError(f"cannot record where the run log is: {exc}", location=str(pointer)) from None


def find_run_log(ref: str | Path, *, state_dir: Path, out: Path | None = None) -> Path:
    """The run log of ``ref``: a path to a .sqlite file, or a run id looked up next to ``out``, in the state dir,
    and where the state dir's note says a run started with ``--out`` put it."""
    direct = Path(ref)
    if direct.suffix == ".sqlite" and direct.is_file():
        return direct
    candidates = [run_log_path(str(ref), state_dir=state_dir, out=out)] if out is not None else []
    candidates.append(run_log_path(str(ref), state_dir=state_dir))
    pointer = _pointer(str(ref), state_dir)
    if "/" not in str(ref) and pointer.is_file():
        try:
            candidates.append(Path(pointer.read_text(encoding="utf-8").strip()))
        except OSError:
            pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise EvalError(f"no run log for run {str(ref)!r} (looked in {looked})", location="--resume")


class RunLog:
    """Append-only store of one run's results plus its header."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Switching a new, empty file to WAL under the default synchronous=FULL fsyncs it several times
            # (tens of ms on a busy disk) to protect data there is none of yet; an existing log is WAL already.
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise EvalError(f"cannot open the run log: {exc}", location=str(self.path)) from None
        self.journal_path = self.path.with_name(self.path.name + ".pending")
        self._journal_fd: int | None = None
        self._replay()

    # -- journal --------------------------------------------------------------------------------------------

    def _replay(self) -> None:
        """Move the results a killed run had journaled but not committed into the log."""
        try:
            text = self.journal_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise EvalError(
                f"cannot read the run log's journal: {exc}", location=str(self.journal_path)
            ) from None
        rows = []
        for line in text.split(b"\n"):
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the torn last line of a write cut short, or the empty tail
            if isinstance(row, list) and len(row) == 5:
                rows.append(tuple(row))
        self.commit_rows(rows)

    def journal(self, result: ItemResult) -> tuple[str, str, str, int, str]:
        """Append ``result`` to the journal (durable when this returns) and return its row for ``commit_rows``."""
        row = (result.variant, result.model, result.item_id, result.repeat, result.model_dump_json())
        try:
            if self._journal_fd is None:
                self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(self._journal_fd, pydantic_core.to_json(row) + b"\n")
        except OSError as exc:
            raise EvalError(
                f"cannot write the run log's journal: {exc}", location=str(self.journal_path)
            ) from None
        return row

    def commit_rows(self, rows: Sequence[tuple[str, str, str, int, str]]) -> int:
        """Commit journaled rows in one transaction, then empty the journal; returns how many were new."""
        try:
            with self._transaction():
                before = self._db.total_changes
                self._db.executemany(_INSERT, rows)
                added = self._db.total_changes - before
        except sqlite3.Error as exc:
            raise EvalError(f"cannot commit results to the run log: {exc}", location=str(self.path)) from None
        try:
            # One writer per log, and every journaled row is in this batch: the journal can go empty.
            if self._journal_fd is not None:
                os.ftruncate(self._journal_fd, 0)
            else:
                self.journal_path.unlink(missing_ok=True)
        except OSError as exc:
            raise EvalError(
                f"cannot empty the run log's journal: {exc}", location=str(self.journal_path)
            ) from None
        return added

    # -- header ---------------------------------------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _put(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def write_header(self, log: EvalLog) -> None:
        self._put("header", log.model_copy(update={"results": []}).model_dump_json())

    def header(self) -> EvalLog | None:
        text = self._get("header")
        return None if text is None else EvalLog.model_validate_json(text)

    def set_status(self, status: str, *, finished: bool = False) -> None:
        header = self.header()
        if header is None:
            raise EvalError("the run log has no header", location=str(self.path))
        update: dict[str, object] = {"status": status}
        if finished:
            update["finished_at"] = time.time()
        self.write_header(header.model_copy(update=update))

    def write_options(self, options: dict[str, Any]) -> None:
        """How the run was started (its suite overrides, its ``--out``), so a resume needs only the run id."""
        self._put("options", json.dumps(options, sort_keys=True))

    def options(self) -> dict[str, Any]:
        text = self._get("options")
        value = json.loads(text) if text else {}
        return value if isinstance(value, dict) else {}

    def update_header(self, **fields: object) -> EvalLog:
        """Change header fields; returns the new header."""
        header = self.header()
        if header is None:
            raise EvalError("the run log has no header", location=str(self.path))
        header = header.model_copy(update=fields)
        self.write_header(header)
        return header

    # -- results --------------------------------------------------------------------------------------------

    def add(self, result: ItemResult) -> None:
        """Commit one result; a key that is already there keeps its first result (a run never redoes one)."""
        self.add_many([result])

    def add_many(self, results: Sequence[ItemResult]) -> int:
        """Commit several results in one transaction; returns how many were new (the others keep their first)."""
        return self.commit_rows([self.journal(r) for r in results])

    def _transaction(self) -> sqlite3.Connection:
        # In autocommit mode (isolation_level=None) the connection's context manager does not BEGIN.
        self._db.execute("BEGIN")
        return self._db

    def last_seq(self) -> int:
        """The sequence number of the last committed result (0 for none): results after it are newer."""
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM results").fetchone()[0])

    def done(self) -> set[ResultKey]:
        rows = self._db.execute("SELECT variant, model, item_id, repeat FROM results")
        return {(v, m, i, int(r)) for v, m, i, r in rows}

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def iter_results(self, *, upto_seq: int | None = None) -> Iterator[ItemResult]:
        """Committed results in commit order; with ``upto_seq``, only those up to that sequence number."""
        if upto_seq is None:
            rows = self._db.execute("SELECT data FROM results ORDER BY seq")
        else:
            rows = self._db.execute("SELECT data FROM results WHERE seq <= ? ORDER BY seq", (upto_seq,))
        for (data,) in rows:
            yield ItemResult.model_validate_json(data)

    def to_log(self, results: Sequence[ItemResult] | None = None) -> EvalLog:
        """The header with ``results``, or with every committed result read back when not given."""
        header = self.header()
        if header is None:
            raise EvalError("the run log has no header", location=str(self.path))
        found = list(self.iter_results()) if results is None else list(results)
        return header.model_copy(update={"results": found})

    def write_json(self, path: Path) -> None:
        """Write the EvalLog JSON, streaming the results from the database instead of building the model."""
        header = self.header()
        if header is None:
            raise EvalError("the run log has no header", location=str(self.path))
        head, found, tail = header.model_dump_json().partition(_RESULTS_KEY)
        if not found:  # pragma: no cover - the header is always dumped with an empty results list
            raise EvalError("cannot place the results in the log", location=str(path))
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("w", encoding="utf-8") as handle:
                handle.write(head)
                handle.write('"results":[')
                self._stream(handle)
                handle.write("]")
                handle.write(tail)
            temporary.replace(path)  # readers never see half a log
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise EvalError(f"cannot write the eval log: {exc.strerror or exc}", location=str(path)) from None

    def _stream(self, handle: IO[str]) -> None:
        first = True
        for (data,) in self._db.execute("SELECT data FROM results ORDER BY seq"):
            if not first:
                handle.write(",")
            handle.write(data)
            first = False

    def close(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
            # Empty unless a commit failed; then it stays for the next opening to replay.
            if self.journal_path.exists() and self.journal_path.stat().st_size == 0:
                self.journal_path.unlink()
        self._db.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchCommitter:
    """Commits a run's results in batches, and keeps them, in commit order, for the run's EvalLog.

    ``put`` journals a result (durable at once) and queues it; the batch is committed when ``batch`` results wait or ``interval_s`` after the
    first of them was queued (a timer on the running loop), and on ``flush``. ``results()`` is every result of
    the log at the end: the rows committed before this run (read back once) followed by this run's results
    as they were built, so a run does not parse back from JSON what it already holds. ``put`` is called
    from the run's event loop (the timer lives there); a commit that fails in the timer is raised by the next
    ``put`` or ``flush``, with the results still queued.
    """

    def __init__(
        self, run_log: RunLog, *, interval_s: float = COMMIT_INTERVAL_S, batch: int = COMMIT_BATCH
    ) -> None:
        self.run_log = run_log
        self.interval_s = interval_s
        self.batch = batch
        self._before = run_log.last_seq()
        self._pending: list[ItemResult] = []
        self._rows: list[tuple[str, str, str, int, str]] = []
        self._committed: list[ItemResult] = []
        self._exact = True  # False once a row was ignored as a duplicate: then the file is the truth
        self._timer: asyncio.TimerHandle | None = None
        self._error: BaseException | None = None

    def put(self, result: ItemResult) -> None:
        if self._error is not None:
            raise self._error
        self._rows.append(self.run_log.journal(result))  # durable from here on
        self._pending.append(result)
        if len(self._pending) >= self.batch:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.flush()
        except BaseException as exc:  # raised to the run by the next put() or the final flush()
            self._error = exc

    def flush(self) -> None:
        """Commit every waiting result now. Raises the first commit error (the results stay queued)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            if self._error is not None:
                raise self._error
            return
        batch = self._pending
        added = self.run_log.commit_rows(self._rows)
        self._error = None
        self._pending, self._rows = [], []
        self._committed.extend(batch)
        if added != len(batch):
            self._exact = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def results(self) -> list[ItemResult]:
        """Every committed result of the log, in commit order."""
        if not self._exact:
            return list(self.run_log.iter_results())
        earlier = list(self.run_log.iter_results(upto_seq=self._before)) if self._before else []
        return earlier + self._committed
