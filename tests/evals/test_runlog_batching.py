"""The run log commits in batches, journals every result first (nothing lost on kill -9 or on errors), and
returns a faithful EvalLog."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest
from promptkit.errors import EvalError
from promptkit.evals import arun_suite, run_suite
from promptkit.evals._eval_log import ItemResult
from promptkit.evals._runlog import COMMIT_BATCH, COMMIT_INTERVAL_S, BatchCommitter, RunLog
from tests.evals.test_runner import N_ITEMS, adder, project, suite_text  # noqa: F401 - the fixture


def _result(n: int, variant: str = "plain") -> ItemResult:
    return ItemResult(item_id=f"i{n}", variant=variant, model="m1", inputs={"q": n}, output=str(n))


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])


def test_the_batches_are_small() -> None:
    # How long other readers of the log may wait to see a result: documented in _runlog.
    assert COMMIT_INTERVAL_S <= 0.25 and COMMIT_BATCH <= 64


async def test_journaled_results_survive_a_crash_and_are_replayed_once(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    log = RunLog(path)
    committer = BatchCommitter(log, interval_s=60, batch=100)
    for n in range(3):
        committer.put(_result(n))
    assert _rows(path) == 0  # nothing committed: only the journal has them
    os.close(log._journal_fd)  # as a kill -9 would leave it: no flush, no close
    log._db.close()
    with open(path.with_name("run.sqlite.pending"), "ab") as journal:
        journal.write(b'["plain", "m1", "torn')  # a write the kill cut short
    with RunLog(path) as again:
        assert sorted(r.item_id for r in again.iter_results()) == ["i0", "i1", "i2"]
    with RunLog(path) as third:
        assert third.count() == 3  # replayed once, not once per opening
    assert not path.with_name("run.sqlite.pending").exists()


async def test_a_batch_is_committed_when_full_or_after_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with RunLog(path) as log:
        committer = BatchCommitter(log, interval_s=0.05, batch=4)
        for n in range(3):
            committer.put(_result(n))
        assert _rows(path) == 0 and committer.pending == 3  # not yet: neither full nor due
        committer.put(_result(3))
        assert _rows(path) == 4 and committer.pending == 0  # full: committed at once, in one transaction
        committer.put(_result(4))
        assert _rows(path) == 4
        await asyncio.sleep(0.15)
        assert _rows(path) == 5 and committer.pending == 0  # due: the timer committed it
        assert [r.item_id for r in committer.results()] == [f"i{n}" for n in range(5)]


async def test_a_failed_commit_keeps_the_results_and_reaches_the_run(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run.sqlite")
    committer = BatchCommitter(log, interval_s=0.01, batch=100)
    committer.put(_result(0))
    log._db.execute("DROP TABLE results")  # the file is there, the table it needs is not
    await asyncio.sleep(0.05)  # the timer's commit fails...
    with pytest.raises(EvalError, match="cannot commit results") as info:
        committer.put(_result(1))  # ...and the next put says so
    assert str(tmp_path / "run.sqlite") in str(info.value)
    assert committer.pending == 1  # the result is kept for another try, not dropped
    log.close()


async def test_a_duplicate_key_keeps_its_first_result_and_the_log_reads_from_the_file(tmp_path: Path) -> None:
    with RunLog(tmp_path / "run.sqlite") as log:
        committer = BatchCommitter(log, batch=2)
        committer.put(_result(0))
        committer.put(_result(0).model_copy(update={"output": "second"}))
        committer.flush()
        assert [(r.item_id, r.output) for r in committer.results()] == [("i0", "0")]


def test_the_returned_log_is_what_the_run_log_holds(project: Path) -> None:  # noqa: F811
    log = run_suite("suite.yaml", run_id="r1", progress=False, cache=False, backends={"m1": adder()})
    assert len(log.results) == N_ITEMS * 2 * 2
    with RunLog(project / "state" / "evals" / "r1.sqlite") as stored:
        read_back = stored.to_log()
    assert log.model_dump() == read_back.model_dump()


def test_a_resumed_run_returns_the_earlier_results_then_its_own(project: Path) -> None:  # noqa: F811
    calls: list[Any] = []

    def fails_on_i4(request: GenerateRequest) -> str:
        if "4 + 4" in request.messages[-1].content:
            raise EvalError("a bug in the dataset", location="data.jsonl:5")
        return adder(log=calls).fn(request)  # type: ignore[attr-defined]

    (project / "suite.yaml").write_text(suite_text(repeats=1, concurrency=1), encoding="utf-8")
    with pytest.raises(EvalError, match="a bug in the dataset"):
        run_suite(
            "suite.yaml",
            run_id="r2",
            progress=False,
            cache=False,
            backends={"m1": FunctionBackend(fails_on_i4)},
        )
    path = project / "state" / "evals" / "r2.sqlite"
    finished = _rows(path)
    assert finished == len(calls) > 0  # every result scored before the failure was committed, none lost
    with RunLog(path) as stored:
        assert stored.header().status == "failed"  # type: ignore[union-attr]
    more: list[Any] = []
    log = asyncio.run(
        arun_suite("suite.yaml", resume="r2", progress=False, cache=False, backends={"m1": adder(log=more)})
    )
    assert len(more) == N_ITEMS * 2 - finished  # nothing committed was redone
    with RunLog(path) as stored:
        read_back = stored.to_log()
    assert log.model_dump() == read_back.model_dump()
    assert len(log.results) == N_ITEMS * 2 and log.status == "complete"
