"""Checkpoints of a plan's run in SQLite (WAL), saved at every step transition, so a run can resume.

The crash-safety argument, for a kill -9 at any instant:

- a step is marked ``running`` (committed) before anything of it touches the workspace;
- before a step first overwrites a file, the file's original content is committed to ``originals``;
- ``passed`` (with the files' hashes) and the removal of its originals are one transaction.

So on resume a ``passed`` step is finished (its files are checked against the recorded hashes), and a
``running`` step is undone from its originals and redone from scratch. Nothing is lost or done twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from promptkit.errors import WorkspaceError
from promptkit.execution._workspace import STATE_DIRNAME, Workspace
from promptkit.ledger import scrub_secrets, scrub_value

__all__ = ["RunState", "StepState", "StepStatus", "RunInfo", "RUN_STATE_FILE", "state_dir_for"]

StepStatus = Literal["pending", "running", "passed", "failed", "skipped"]
RUN_STATE_FILE = "run.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    workspace   TEXT NOT NULL,
    plan_json   TEXT NOT NULL,
    options     TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE IF NOT EXISTS steps (
    run_id      TEXT NOT NULL,
    step_id     TEXT NOT NULL,
    position    INTEGER NOT NULL,
    status      TEXT NOT NULL,
    data        TEXT NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, step_id)
);
CREATE TABLE IF NOT EXISTS originals (
    run_id      TEXT NOT NULL,
    step_id     TEXT NOT NULL,
    path        TEXT NOT NULL,
    existed     INTEGER NOT NULL,
    content     TEXT,
    PRIMARY KEY (run_id, step_id, path)
);
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    ts          REAL NOT NULL,
    step_id     TEXT,
    event       TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, id);
"""


def state_dir_for(workspace: str | Path) -> Path:
    return Path(workspace) / STATE_DIRNAME


class StepState(BaseModel):
    """Everything recorded about one step of a run."""

    step_id: str
    status: StepStatus = "pending"
    attempts: int = 0
    tier: int | None = None
    tier_name: str | None = None
    model: str | None = None
    escalations: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float = 0.0
    verifier_s: float = 0.0
    reason: str | None = None
    errors: list[str] = Field(default_factory=list)
    verifiers: list[dict[str, Any]] = Field(default_factory=list)
    files: dict[str, str | None] = Field(default_factory=dict)
    # How many times this step was started (an interrupted and redone step counts twice).
    runs: int = 0


class RunInfo(BaseModel):
    run_id: str
    created_at: float
    updated_at: float
    workspace: str
    plan_json: str
    options: dict[str, Any] = Field(default_factory=dict)
    status: str


class RunState:
    """One run's checkpoint in ``<workspace>/.promptkit/run.sqlite`` (WAL; safe across processes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(
                f"cannot create the state folder: {exc.strerror}", location=str(self.path.parent)
            ) from None
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=15.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise WorkspaceError(f"run state: cannot open: {exc}", location=str(self.path)) from None
        self._seq = 0

    @classmethod
    def for_workspace(cls, workspace: str | Path) -> RunState:
        return cls(state_dir_for(workspace) / RUN_STATE_FILE)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise WorkspaceError(f"run state: cannot {action}: {exc}", location=str(self.path)) from None

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise WorkspaceError(f"run state: cannot read: {exc}", location=str(self.path)) from None

    # -- runs -------------------------------------------------------------------------------------------

    def create_run(
        self, run_id: str, workspace: Path, plan_json: str, step_ids: list[str], options: dict[str, Any]
    ) -> None:
        now = time.time()
        with self._tx("start a run") as conn:
            conn.execute(
                "INSERT INTO runs (run_id, created_at, updated_at, workspace, plan_json, options) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    now,
                    now,
                    str(workspace),
                    plan_json,
                    json.dumps(scrub_value(options), sort_keys=True),
                ),
            )
            for position, step_id in enumerate(step_ids):
                conn.execute(
                    "INSERT INTO steps (run_id, step_id, position, status, data) VALUES (?, ?, ?, 'pending', ?)",
                    (run_id, step_id, position, StepState(step_id=step_id).model_dump_json()),
                )

    def run(self, run_id: str) -> RunInfo:
        rows = self._query(
            "SELECT run_id, created_at, updated_at, workspace, plan_json, options, status FROM runs WHERE run_id = ?",
            (run_id,),
        )
        if not rows:
            known = [r[0] for r in self._query("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 5")]
            hint = f"; recent runs: {', '.join(known)}" if known else "; this workspace has no runs"
            raise WorkspaceError(f"no run {run_id!r}{hint}", location=str(self.path))
        run_id, created, updated, workspace, plan_json, options, status = rows[0]
        return RunInfo(
            run_id=run_id,
            created_at=created,
            updated_at=updated,
            workspace=workspace,
            plan_json=plan_json,
            options=json.loads(options),
            status=status,
        )

    def resolve(self, ref: str) -> str:
        """``latest``, a run id or an unambiguous prefix of one → the run id."""
        if ref == "latest":
            rows = self._query("SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1")
        else:
            rows = self._query("SELECT run_id FROM runs WHERE run_id = ?", (ref,)) or self._query(
                "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? LIMIT 2", (len(ref), ref)
            )
        if len(rows) == 1:
            return str(rows[0][0])
        if rows:
            raise WorkspaceError(
                f"run {ref!r} is ambiguous: it starts more than one run id", location=str(self.path)
            )
        return self.run(ref).run_id  # raises, listing recent runs

    def set_run_status(self, run_id: str, status: str) -> None:
        with self._tx("update the run") as conn:
            conn.execute(
                "UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ?", (status, time.time(), run_id)
            )

    # -- steps ------------------------------------------------------------------------------------------

    def steps(self, run_id: str) -> dict[str, StepState]:
        rows = self._query("SELECT data FROM steps WHERE run_id = ? ORDER BY position", (run_id,))
        return {state.step_id: state for state in (StepState.model_validate_json(r[0]) for r in rows)}

    def step(self, run_id: str, step_id: str) -> StepState:
        rows = self._query("SELECT data FROM steps WHERE run_id = ? AND step_id = ?", (run_id, step_id))
        if not rows:
            raise WorkspaceError(f"run {run_id!r} has no step {step_id!r}", location=str(self.path))
        return StepState.model_validate_json(rows[0][0])

    def save_step(self, run_id: str, state: StepState, *, clear_originals: bool = False) -> None:
        """Write a step's state (one transaction); ``clear_originals`` when the step has just finished."""
        state.errors = [scrub_secrets(e) for e in state.errors]
        with self._tx(f"save step {state.step_id!r}") as conn:
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            conn.execute(
                "UPDATE steps SET status = ?, data = ?, seq = ? WHERE run_id = ? AND step_id = ?",
                (state.status, state.model_dump_json(), seq, run_id, state.step_id),
            )
            if clear_originals:
                conn.execute(
                    "DELETE FROM originals WHERE run_id = ? AND step_id = ?", (run_id, state.step_id)
                )
            conn.execute("UPDATE runs SET updated_at = ? WHERE run_id = ?", (time.time(), run_id))

    def expected_hashes(self, run_id: str) -> dict[str, str | None]:
        """Each file's hash as the last passed step that wrote it left it."""
        rows = self._query(
            "SELECT data FROM steps WHERE run_id = ? AND status = 'passed' ORDER BY seq", (run_id,)
        )
        expected: dict[str, str | None] = {}
        for (data,) in rows:
            expected.update(StepState.model_validate_json(data).files)
        return expected

    # -- originals: what an unfinished step has overwritten ---------------------------------------------

    def save_original(self, run_id: str, step_id: str, path: str, content: str | None) -> None:
        """Remember ``path``'s content before ``step_id`` first changes it (later calls keep the first)."""
        with self._tx("save an original") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO originals (run_id, step_id, path, existed, content) VALUES (?, ?, ?, ?, ?)",
                (run_id, step_id, path, int(content is not None), content),
            )

    def has_original(self, run_id: str, step_id: str, path: str) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM originals WHERE run_id = ? AND step_id = ? AND path = ?",
                (run_id, step_id, path),
            )
        )

    def restore_originals(self, run_id: str, step_id: str, workspace: Workspace) -> list[str]:
        """Put back every file ``step_id`` changed, as it was before the step; returns the paths."""
        rows = self._query(
            "SELECT path, existed, content FROM originals WHERE run_id = ? AND step_id = ? ORDER BY path",
            (run_id, step_id),
        )
        for path, existed, content in rows:
            if existed:
                workspace.write(path, content)
            else:
                workspace.delete(path)
        with self._tx("clear originals") as conn:
            conn.execute("DELETE FROM originals WHERE run_id = ? AND step_id = ?", (run_id, step_id))
        return [r[0] for r in rows]

    # -- the run log ------------------------------------------------------------------------------------

    def log(self, run_id: str, event: str, step_id: str | None = None, **data: Any) -> None:
        """Append one event to the run log (committed at once)."""
        payload = json.dumps(scrub_value(data), sort_keys=True, default=str, ensure_ascii=False)
        with self._tx("write the run log") as conn:
            conn.execute(
                "INSERT INTO events (run_id, ts, step_id, event, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), step_id, event, payload),
            )

    def events(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT ts, step_id, event, data FROM events WHERE run_id = ? ORDER BY id", (run_id,)
        )
        return [
            {"ts": ts, "step": step, "event": event, **json.loads(data)} for ts, step, event, data in rows
        ]
