"""The ledger's journal: record() returns before SQLite has the row, and still nothing is lost or counted
twice, whether the process is killed before the commit, between the commit and the clean-up, or not at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from promptkit.errors import LedgerError
from promptkit.ledger import Ledger, LedgerEntry

ROOT = Path(__file__).parents[2]


def kill_9_after(path: Path, body: str) -> str:
    """Run ``body`` in a child with ``led`` (a Ledger on ``path`` whose writer thread never starts) and
    ``run``; the child prints the run id and kills itself. Returns the run id."""
    code = (
        textwrap.dedent(
            f"""
        import os, shutil, signal
        from promptkit.ledger import Ledger, LedgerEntry
        led = Ledger({str(path)!r})
        led._journal._start = lambda: None  # only an explicit flush may commit
        run = led.new_run("crash")
        """
        )
        + textwrap.dedent(body)
        + textwrap.dedent(
            """
        print(run, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
        )
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.stdout.strip()


def test_rows_only_in_the_journal_are_replayed_once_after_a_kill(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    run = kill_9_after(
        path,
        """
        for i in range(3):
            led.record(LedgerEntry(run_id=run, call_id=f"c{i}", model="m", outcome="ok", cost_usd=1.0))
        """,
    )
    pending = path.with_name("ledger.sqlite.pending")
    assert len(list(pending.glob("*.rows"))) == 1  # the rows never reached SQLite
    with Ledger(path) as again:
        assert [e.call_id for e in again.entries(run)] == ["c0", "c1", "c2"]
    with Ledger(path) as third:
        assert third.totals(run).cost_usd == pytest.approx(3.0)  # replayed once, not once per opening
    assert list(pending.iterdir()) == []


def test_a_kill_between_commit_and_clean_up_does_not_count_rows_twice(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    run = kill_9_after(
        path,
        """
        for i in range(2):
            led.record(LedgerEntry(run_id=run, call_id=f"c{i}", model="m", outcome="ok"))
        segment = next(led._journal.folder.glob("*.rows"))
        shutil.copy(segment, str(segment) + ".bak")
        led.flush()  # commits the rows and deletes the segment
        shutil.move(str(segment) + ".bak", segment)  # as if the kill came before the delete
        """,
    )
    with Ledger(path) as again:
        assert [e.call_id for e in again.entries(run)] == ["c0", "c1"]


def test_a_torn_last_line_is_skipped(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    run = kill_9_after(
        path,
        """
        led.record(LedgerEntry(run_id=run, call_id="whole", model="m", outcome="ok"))
        segment = next(led._journal.folder.glob("*.rows"))
        with open(segment, "a") as f:
            f.write('["' + run + '", 1.0, "torn')
        """,
    )
    with Ledger(path) as again:
        assert [e.call_id for e in again.entries(run)] == ["whole"]


def test_a_live_process_rows_are_not_replayed_by_another(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    owner = Ledger(path)
    owner._journal._start = lambda: None  # type: ignore[method-assign]
    run = owner.new_run()
    owner.record(LedgerEntry(run_id=run, call_id="mine", model="m", outcome="ok"))
    # Another process finds our lock held, so it leaves our rows for us to commit.
    code = f"from promptkit.ledger import Ledger; print(Ledger({str(path)!r}).totals().attempts)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.stdout.strip() == "0", done.stderr
    owner.close()
    with Ledger(path) as again:
        assert again.totals().attempts == 1
    assert list(path.with_name("ledger.sqlite.pending").iterdir()) == []


def test_another_ledger_object_in_this_process_reads_our_rows_at_once(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as writer, Ledger(path) as reader:
        writer._journal._start = lambda: None  # type: ignore[method-assign]
        run = writer.new_run()
        writer.record(LedgerEntry(run_id=run, call_id="c", model="m", outcome="ok"))
        assert reader.totals(run).attempts == 1


def test_a_failed_commit_keeps_the_rows_and_reports_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import sqlite3

    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as led:
        led._journal._start = lambda: None  # type: ignore[method-assign]
        run = led.new_run()
        led.record(LedgerEntry(run_id=run, call_id="kept", model="m", outcome="ok"))
        real_write = led._db.write

        def failing(action: str):  # type: ignore[no-untyped-def]
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(led._db, "write", failing)
        with pytest.raises(LedgerError, match="disk I/O error"):
            led.flush()
        monkeypatch.setattr(led._db, "write", real_write)
        led.record(LedgerEntry(run_id=run, call_id="later", model="m", outcome="ok"))
        assert [e.call_id for e in led.entries(run)] == ["kept", "later"]
    assert list(path.with_name("ledger.sqlite.pending").iterdir()) == []


def test_an_unwritable_journal_is_a_ledger_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as led:
        run = led.new_run()
        path.with_name("ledger.sqlite.pending").write_text("not a folder")
        with pytest.raises(LedgerError) as info:
            led.record(LedgerEntry(run_id=run, call_id="c", model="m", outcome="ok"))
        assert str(path) in str(info.value)
        os.remove(path.with_name("ledger.sqlite.pending"))


def test_trusted_values_and_a_validated_entry_make_the_same_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SERVICE_API_KEY", "sk-planted-secret-123456")
    values = {
        "run_id": "r",
        "ts": 12.5,
        "call_id": "c",
        "attempt": 2,
        "template": "t",
        "model": "m",
        "tier": 1,
        "input_tokens": 7,
        "cost_usd": 0.25,
        "reason": "reask",
        "outcome": "invalid",
        "error": "rejected with key sk-planted-secret-123456",
        "features": {"template": "t", "tags": ["x"], "note": "sk-planted-secret-123456"},
        "accepted": False,
    }
    with Ledger(tmp_path / "a.sqlite") as a, Ledger(tmp_path / "b.sqlite") as b:
        a.record(LedgerEntry(**values))
        b.record_trusted(values)
        [from_entry], [from_values] = a.entries(), b.entries()
    assert from_entry == from_values
    assert "sk-planted" not in from_values.model_dump_json()
    assert from_values.features["tags"] == ["x"] and from_values.features["note"] == "***"


def test_a_forked_child_does_not_keep_a_dead_parents_rows_locked(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    run = kill_9_after(
        path,
        """
        import time
        led.record(LedgerEntry(run_id=run, call_id="parent", model="m", outcome="ok"))
        if os.fork() == 0:  # a child that outlives the parent and never touches the ledger
            os.close(1)
            os.close(2)
            time.sleep(5)
            os._exit(0)
        """,
    )
    with Ledger(path) as again:  # the child still runs: the parent's lock must not live on in it
        assert [e.call_id for e in again.entries(run)] == ["parent"]


def test_a_forked_child_records_into_its_own_segments(tmp_path: Path):
    import multiprocessing

    path = tmp_path / "ledger.sqlite"
    led = Ledger(path)
    led._journal._start = lambda: None  # type: ignore[method-assign]
    run = led.new_run()
    led.record(LedgerEntry(run_id=run, call_id="parent", model="m", outcome="ok"))

    def child() -> None:
        led.record(LedgerEntry(run_id=run, call_id="child", model="m", outcome="ok"))
        led.close()

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    led.close()
    with Ledger(path) as again:
        assert sorted(e.call_id for e in again.entries(run)) == ["child", "parent"]
