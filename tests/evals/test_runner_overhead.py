"""The runner's fixed costs: nothing formats the whole log at exit, and the run log commits cheaply."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from promptkit.evals import EvalLog, run_suite
from promptkit.evals._eval_log import ItemResult
from promptkit.evals._runlog import RunLog
from tests.evals.test_runner import adder, project, suite_text  # noqa: F401 - the fixture

_OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    variant TEXT NOT NULL, model TEXT NOT NULL, item_id TEXT NOT NULL, repeat INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (variant, model, item_id, repeat)
);
"""


def _result(n: int) -> ItemResult:
    return ItemResult(item_id=f"i{n}", variant="plain", model="m1", repeat=0, inputs={"q": n}, output=str(n))


def test_run_suite_never_formats_the_log(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # asyncio.run formats repr() of its main task at exit; a task's repr includes its result.
    calls: list[int] = []

    def counting_repr(self: EvalLog) -> str:
        calls.append(len(self.results))
        return "EvalLog(...)"

    monkeypatch.setattr(EvalLog, "__repr__", counting_repr)
    log = run_suite("suite.yaml", progress=False, ledger=False, backends={"m1": adder()})
    assert isinstance(log, EvalLog)
    assert len(log.results) == 6 * 2 * 2
    assert all(r.error is None for r in log.results)
    assert calls == []


def test_results_come_back_in_commit_order_without_sqlite_sequence(tmp_path: Path) -> None:
    order = [5, 1, 9, 0, 3]
    with RunLog(tmp_path / "run.sqlite") as log:
        for n in order:
            log.add(_result(n))
        log.add(_result(1).model_copy(update={"output": "second"}))  # a key already there keeps its first
        assert [r.item_id for r in log.iter_results()] == [f"i{n}" for n in order]
        assert [r.output for r in log.iter_results()][1] == "1"
        autocheckpoint = log._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    assert autocheckpoint > 1000  # SQLite's default would fsync on the event loop every ~4 MB
    db = sqlite3.connect(tmp_path / "run.sqlite")
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()
    assert "sqlite_sequence" not in tables


def test_a_log_written_with_the_old_schema_still_reads_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_OLD_SCHEMA)
    db.execute(
        "INSERT INTO results (variant, model, item_id, repeat, data) VALUES (?, ?, ?, ?, ?)",
        ("plain", "m1", "i7", 0, _result(7).model_dump_json()),
    )
    db.commit()
    db.close()
    with RunLog(path) as log:
        log.add(_result(2))
        assert log.done() == {("plain", "m1", "i7", 0), ("plain", "m1", "i2", 0)}
        assert [r.item_id for r in log.iter_results()] == ["i7", "i2"]
