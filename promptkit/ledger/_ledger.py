"""The ledger: a SQLite record of every attempt, grouped into runs, with totals computed in SQL."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from promptkit._sqlite import SQLiteFile
from promptkit.config import Config, load_config
from promptkit.errors import LedgerError
from promptkit.ledger._models import SUCCESS_OUTCOMES, LedgerEntry, LedgerTotals, RunSummary
from promptkit.ledger._scrub import scrub_secrets, scrub_value

__all__ = ["Ledger", "LEDGER_FILE", "default_ledger"]

LEDGER_FILE = "ledger.sqlite"

_SCHEMA_VERSION = 1
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
CREATE INDEX IF NOT EXISTS ledger_attempts_run ON ledger_attempts (run_id, ts)
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
        # Runs this object has seen in the file; recording into one needs no INSERT OR IGNORE of its run row.
        self._known_runs: set[str] = set()

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
                self._known_runs.add(run_id)
                return run_id
            except LedgerError as exc:
                if not isinstance(exc.__cause__, sqlite3.IntegrityError):
                    raise
        raise self._db.fail(f"could not find a free run id after {_NEW_RUN_TRIES} tries")

    def latest_run(self) -> str | None:
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

        Committed before it returns (WAL, no fsync per commit): a returned call survives a crash of the process.
        """
        row = self._row(entry)
        if entry.run_id in self._known_runs:
            # The hot path: one autocommit INSERT, no explicit transaction. Runs are never deleted, so a run
            # seen once by this ledger still exists.
            conn = self._db.connection()
            try:
                conn.execute(_INSERT, row)
            except sqlite3.Error as exc:
                raise self._db.fail(f"ledger: cannot record an attempt: {exc}") from exc
            return
        with self._db.write("record an attempt") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO ledger_runs (run_id, started_at, name, meta) VALUES (?, ?, NULL, '{}')",
                (entry.run_id, entry.ts),
            )
            conn.execute(_INSERT, row)
        self._known_runs.add(entry.run_id)

    async def arecord(self, entry: LedgerEntry) -> None:
        await asyncio.to_thread(self.record, entry)

    def _row(self, entry: LedgerEntry) -> tuple[Any, ...]:
        if not isinstance(entry, LedgerEntry):
            raise self._db.fail(f"record() takes a LedgerEntry, not {type(entry).__name__}")
        # The entry's own attribute dict: model_dump() would deep-copy features only for us to encode them.
        values = entry.__dict__
        error = values["error"]
        accepted = values["accepted"]
        return (
            *[values[c] for c in _COLUMNS[:_ERROR_INDEX]],
            scrub_secrets(error) if error is not None else None,
            self._json(scrub_value(values["features"]), "features"),
            None if accepted is None else int(accepted),
        )

    def entries(self, run_id: str | None = None) -> list[LedgerEntry]:
        """Attempts in time order, of one run or of the whole ledger."""
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
        """Close every connection. Safe to call twice."""
        self._db.close()

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
