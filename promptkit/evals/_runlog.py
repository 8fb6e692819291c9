"""The run log: one SQLite file per eval run, committed result by result, so a killed run resumes.

Each (variant, model, item, repeat) result is one row, written in its own transaction as soon as it is
scored (WAL mode: a crashed process loses nothing that was committed). A resumed run skips the keys that
are already there. The header (the EvalLog without results) lives in the ``meta`` table.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from promptkit.errors import EvalError
from promptkit.evals._log import EvalLog, ItemResult, ResultKey

__all__ = ["RunLog", "run_log_path", "find_run_log", "RUNS_FOLDER"]

RUNS_FOLDER = "evals"
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


def run_log_path(run_id: str, *, state_dir: Path, out: Path | None = None) -> Path:
    """Next to ``out`` when there is one (``<out folder>/<run_id>.sqlite``), else ``<state_dir>/evals/``."""
    folder = out.parent if out is not None else state_dir / RUNS_FOLDER
    return folder / f"{run_id}.sqlite"


def find_run_log(ref: str | Path, *, state_dir: Path, out: Path | None = None) -> Path:
    """The run log of ``ref``: a path to a .sqlite file, or a run id looked up next to ``out`` and in the state dir."""
    direct = Path(ref)
    if direct.suffix == ".sqlite" and direct.is_file():
        return direct
    candidates = [run_log_path(str(ref), state_dir=state_dir, out=out)] if out is not None else []
    candidates.append(run_log_path(str(ref), state_dir=state_dir))
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
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise EvalError(f"cannot open the run log: {exc}", location=str(self.path)) from None

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

    def update_header(self, **fields: object) -> None:
        header = self.header()
        if header is None:
            raise EvalError("the run log has no header", location=str(self.path))
        self.write_header(header.model_copy(update=fields))

    # -- results --------------------------------------------------------------------------------------------

    def add(self, result: ItemResult) -> None:
        """Commit one result; a key that is already there keeps its first result (a run never redoes one)."""
        self._db.execute(
            "INSERT OR IGNORE INTO results (variant, model, item_id, repeat, data) VALUES (?, ?, ?, ?, ?)",
            (result.variant, result.model, result.item_id, result.repeat, result.model_dump_json()),
        )

    def done(self) -> set[ResultKey]:
        rows = self._db.execute("SELECT variant, model, item_id, repeat FROM results")
        return {(v, m, i, int(r)) for v, m, i, r in rows}

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def iter_results(self) -> Iterator[ItemResult]:
        for (data,) in self._db.execute("SELECT data FROM results ORDER BY seq"):
            yield ItemResult.model_validate_json(data)

    def to_log(self) -> EvalLog:
        header = self.header()
        if header is None:
            raise EvalError("the run log has no header", location=str(self.path))
        return header.model_copy(update={"results": list(self.iter_results())})

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
        self._db.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
