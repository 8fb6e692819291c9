"""The exact cache's background writer: set() returns before the commit, and nothing set is ever lost
by this process or invisible to it."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from promptkit.backends import GenerateResponse
from promptkit.cache import ExactCache
from promptkit.errors import CacheError


def committed(path: Path, key: str) -> bool:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT 1 FROM cache_entries WHERE key = ?", (key,)).fetchone() is not None
    finally:
        conn.close()


class SlowCommits:
    """Hold the cache's writer inside its transaction until released, so 'not yet committed' is a state
    the test controls instead of a race it hopes to win."""

    def __init__(self, cache: ExactCache, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        db = cache._db
        real_write = db.write

        def write(action: str):  # type: ignore[no-untyped-def]
            self.entered.set()
            assert self.release.wait(10)
            return real_write(action)

        monkeypatch.setattr(db, "write", write)


def test_own_writes_are_served_before_they_are_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "c.sqlite"
    with ExactCache(path) as cache:
        slow = SlowCommits(cache, monkeypatch)
        cache.set("k", GenerateResponse(text="held back"))
        assert slow.entered.wait(5)  # the writer has taken the batch and waits to commit it
        assert not committed(path, "k")
        entry = cache.get("k")
        assert entry is not None and entry.response.text == "held back" and entry.response.cached
        slow.release.set()
        cache.flush()
        assert committed(path, "k")


def test_other_instances_see_a_write_without_an_explicit_flush(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    with ExactCache(path) as writer, ExactCache(path) as reader:
        writer.set("k", GenerateResponse(text="shared"))
        deadline = time.monotonic() + 5
        while reader.get("k") is None:
            assert time.monotonic() < deadline, "the background writer never committed"
            time.sleep(0.005)


def test_close_and_collection_commit_pending_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "c.sqlite"
    cache = ExactCache(path)
    # Keep the writer thread from ever running, so only close() can commit.
    monkeypatch.setattr(cache._writer, "_start", lambda: None)
    cache.set("closed", GenerateResponse(text="a"))
    assert not committed(path, "closed")
    cache.close()
    assert committed(path, "closed")

    lost = ExactCache(path)
    monkeypatch.setattr(lost._writer, "_start", lambda: None)
    lost.set("collected", GenerateResponse(text="b"))
    del lost
    gc.collect()
    assert committed(path, "collected")


def test_delete_clear_and_stats_see_pending_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with ExactCache(tmp_path / "c.sqlite") as cache:
        monkeypatch.setattr(cache._writer, "_start", lambda: None)
        cache.set("a", GenerateResponse(text="a"))
        cache.set("b", GenerateResponse(text="b"))
        assert cache.stats().entries == 2
        assert cache.delete("a") is True
        cache.set("c", GenerateResponse(text="c"))
        assert cache.clear() == 2
        assert cache.get("b") is None and cache.get("c") is None


def test_a_failed_background_write_is_raised_by_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "c.sqlite"
    with ExactCache(path) as cache:
        real_write = cache._db.write

        def failing(action: str):  # type: ignore[no-untyped-def]
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(cache._db, "write", failing)
        cache.set("k", GenerateResponse(text="x"))
        deadline = time.monotonic() + 5
        while cache._writer.error is None:
            assert time.monotonic() < deadline, "the writer never tried"
            time.sleep(0.005)
        monkeypatch.setattr(cache._db, "write", real_write)
        with pytest.raises(CacheError, match="disk I/O error") as info:
            cache.flush()
        assert str(path) in str(info.value)
        cache.flush()  # reported once; the cache keeps working
        cache.set("after", GenerateResponse(text="y"))
        cache.flush()
        assert committed(path, "after")


def test_write_behind_can_be_turned_off(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    with ExactCache(path, write_behind=False) as cache:
        cache.set("k", GenerateResponse(text="now"))
        assert committed(path, "k")


def test_reads_share_a_snapshot_that_never_hides_our_own_commits(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    with ExactCache(path) as cache:
        assert cache.get("other") is None  # opens this thread's read snapshot
        cache.set("k", GenerateResponse(text="mine"))
        deadline = time.monotonic() + 5
        while not committed(path, "k"):  # the sweeper thread commits it on its own connection
            assert time.monotonic() < deadline
            time.sleep(0.005)
        entry = cache.get("k")  # no longer in memory: the snapshot must have been renewed
        assert entry is not None and entry.response.text == "mine"


def test_another_process_write_shows_within_the_snapshot_age(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    with ExactCache(path) as cache:
        cache.set("seed", GenerateResponse(text="s"))
        cache.flush()
        assert cache.get("theirs") is None
        row = sqlite3.connect(path).execute("SELECT * FROM cache_entries WHERE key = 'seed'").fetchone()
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("INSERT INTO cache_entries VALUES (?, 'theirs', ?, ?, ?, ?, ?, ?)", (row[0], *row[2:]))
        other.close()
        time.sleep(0.05)  # longer than the snapshot may live
        assert cache.get("theirs") is not None


def test_a_read_snapshot_never_blocks_writers_or_wraps_a_write(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    with ExactCache(path) as cache:
        cache.set("k", GenerateResponse(text="x"))
        cache.flush()
        assert cache.get("missing") is None  # snapshot open
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # a reader holds no write lock
        other.execute("ROLLBACK")
        assert cache.delete("k") is True  # a write after a read ends the snapshot first...
        assert not committed(path, "k")  # ...and is committed, not left open inside it
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
