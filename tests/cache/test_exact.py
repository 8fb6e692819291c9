"""The exact cache on one process: storage, TTL, namespaces, clearing, statistics and bad files."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from promptkit.backends import GenerateResponse
from promptkit.cache import CACHE_FILE, CacheEntry, ExactCache, default_cache
from promptkit.config import Config
from promptkit.errors import CacheError, ConfigError
from promptkit.types import Usage


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def response(text: str = "Paris", cost: float | None = 0.002) -> GenerateResponse:
    return GenerateResponse(
        text=text, model="openai/gpt-4o-mini", usage=Usage(input_tokens=12, output_tokens=3), cost_usd=cost
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tmp_path: Path, clock: Clock):
    with ExactCache(tmp_path / "cache.sqlite", clock=clock) as c:
        yield c


def test_miss_then_hit_returns_the_stored_answer_marked_cached(cache: ExactCache, clock: Clock):
    assert cache.get("k") is None
    original = response()
    cache.set("k", original, template="capital", model="openai/gpt-4o-mini")
    entry = cache.get("k")
    assert isinstance(entry, CacheEntry)
    assert entry.response.cached is True
    assert entry.response.model_dump(exclude={"cached"}) == original.model_dump(exclude={"cached"})
    assert original.cached is False  # the caller's object is untouched
    assert (entry.key, entry.namespace, entry.template, entry.model) == (
        "k",
        "default",
        "capital",
        "openai/gpt-4o-mini",
    )
    assert entry.created_at == clock.now and entry.expires_at is None
    assert entry.cost_usd == 0.002  # taken from the response when not given


def test_explicit_cost_overrides_the_responses_cost(cache: ExactCache):
    cache.set("k", response(cost=None), cost_usd=0.5)
    entry = cache.get("k")
    assert entry is not None and entry.cost_usd == 0.5


def test_set_replaces_an_existing_entry(cache: ExactCache):
    cache.set("k", response("old"))
    cache.set("k", response("new"))
    entry = cache.get("k")
    assert entry is not None and entry.response.text == "new"
    assert cache.stats().entries == 1


def test_entries_survive_reopening(tmp_path: Path):
    with ExactCache(tmp_path / "c.sqlite") as first:
        first.set("k", response("kept"))
    with ExactCache(tmp_path / "c.sqlite") as second:
        entry = second.get("k")
    assert entry is not None and entry.response.text == "kept"


def test_only_responses_can_be_stored(cache: ExactCache):
    with pytest.raises(CacheError, match="only a GenerateResponse"):
        cache.set("k", RuntimeError("boom"))  # type: ignore[arg-type]
    with pytest.raises(CacheError, match="only a GenerateResponse"):
        cache.set("k", {"text": "dict"})  # type: ignore[arg-type]
    assert cache.get("k") is None


def test_ttl_expires_entries_and_deletes_them_lazily(tmp_path: Path, clock: Clock):
    path = tmp_path / "c.sqlite"
    with ExactCache(path, ttl_s=60, clock=clock) as cache:
        cache.set("k", response())
        clock.now += 59.9
        entry = cache.get("k")
        assert entry is not None and entry.expires_at == pytest.approx(clock.now + 0.1)
        clock.now += 0.1
        assert cache.get("k") is None
    rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM cache_entries").fetchone()[0]
    assert rows == 0


def test_per_entry_ttl_overrides_the_default(cache: ExactCache, clock: Clock):
    cache.set("short", response(), ttl_s=5)
    cache.set("forever", response())
    clock.now += 10
    assert cache.get("short") is None
    assert cache.get("forever") is not None


def test_infinite_ttl_never_expires_even_with_a_default(tmp_path: Path, clock: Clock):
    with ExactCache(tmp_path / "c.sqlite", ttl_s=1, clock=clock) as cache:
        cache.set("pinned", response(), ttl_s=math.inf)
        cache.set("default", response())
        clock.now += 10_000
        assert cache.get("pinned") is not None
        assert cache.get("default") is None


@pytest.mark.parametrize("bad", [0, -1, "10"])
def test_bad_ttl_is_refused(tmp_path: Path, bad: object):
    with pytest.raises(CacheError, match="ttl_s"):
        ExactCache(tmp_path / "c.sqlite", ttl_s=bad)  # type: ignore[arg-type]


def test_expired_entries_are_not_counted_and_purge_removes_them(cache: ExactCache, clock: Clock):
    cache.set("a", response(), ttl_s=10)
    cache.set("b", response())
    clock.now += 20
    assert cache.stats().entries == 1
    assert cache.purge_expired() == 1
    assert cache.purge_expired() == 0


def test_namespaces_are_isolated(tmp_path: Path):
    with ExactCache(tmp_path / "c.sqlite", namespace="alpha") as cache:
        cache.set("k", response("from alpha"))
        cache.set("k", response("from beta"), namespace="beta")
        alpha, beta = cache.get("k"), cache.get("k", namespace="beta")
        assert alpha is not None and alpha.response.text == "from alpha" and alpha.namespace == "alpha"
        assert beta is not None and beta.response.text == "from beta" and beta.namespace == "beta"
        assert cache.get("k", namespace="gamma") is None
        assert cache.delete("k", namespace="beta") is True
        assert cache.get("k", namespace="beta") is None
        assert cache.get("k") is not None


def test_delete_reports_whether_the_entry_existed(cache: ExactCache):
    cache.set("k", response())
    assert cache.delete("k") is True
    assert cache.delete("k") is False


def test_clear_one_namespace_or_all(cache: ExactCache):
    for i in range(3):
        cache.set(f"a{i}", response(), namespace="a")
    for i in range(2):
        cache.set(f"b{i}", response(), namespace="b")
    assert cache.clear("a") == 3
    assert cache.stats().namespaces == {"b": 2}
    assert cache.clear("missing") == 0
    assert cache.clear() == 2
    assert cache.stats().entries == 0


def test_stats_count_hits_misses_and_money_saved(cache: ExactCache):
    cache.set("a", response(cost=0.25))
    cache.set("b", response(cost=None))
    cache.set("c", response(), namespace="other")
    for k in ["a", "a", "b", "missing", "a", "nope"]:
        cache.get(k)
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.exact_hits, stats.semantic_hits) == (4, 2, 4, 0)
    assert stats.saved_usd == pytest.approx(0.75)
    assert stats.entries == 3 and stats.namespaces == {"default": 2, "other": 1}
    assert stats.hit_rate == pytest.approx(4 / 6)
    assert stats.bytes > 0


def test_counters_are_persisted_and_shared_between_instances(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    with ExactCache(path) as one:
        one.set("k", response(cost=1.0))
        one.get("k")
        one.get("x")
    with ExactCache(path) as two:
        two.get("k")
        stats = two.stats()
    assert (stats.hits, stats.misses, stats.saved_usd) == (2, 1, pytest.approx(2.0))


def test_counts_of_an_unclosed_cache_are_flushed_when_it_is_collected(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    cache = ExactCache(path)
    cache.get("x")
    del cache
    import gc

    gc.collect()
    with ExactCache(path) as again:
        assert again.stats().misses == 1


def test_closed_cache_refuses_work_and_close_is_idempotent(tmp_path: Path):
    cache = ExactCache(tmp_path / "c.sqlite")
    cache.close()
    cache.close()
    with pytest.raises(CacheError, match="closed"):
        cache.get("k")


def test_corrupt_file_is_a_cache_error_naming_the_path(tmp_path: Path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database, just some bytes " * 200)
    with pytest.raises(CacheError) as info:
        ExactCache(path)
    assert str(path) in str(info.value)


def test_unopenable_path_is_a_cache_error_naming_the_path(tmp_path: Path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(CacheError) as info:
        ExactCache(folder)
    assert str(folder) in str(info.value)


def test_file_from_a_newer_schema_is_refused(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(CacheError, match="schema version 99"):
        ExactCache(path)


def test_an_unreadable_stored_answer_is_a_miss_and_is_removed(cache: ExactCache):
    cache.set("k", response())
    cache.flush()
    conn = sqlite3.connect(cache.path)
    conn.execute('UPDATE cache_entries SET response = \'{"not": "a response"}\'')
    conn.commit()
    conn.close()
    assert cache.get("k") is None
    assert cache.stats().entries == 0


def test_file_is_in_wal_mode(cache: ExactCache):
    cache.set("k", response())
    mode = sqlite3.connect(cache.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_set_many_stores_everything_in_batches(cache: ExactCache):
    n = cache.set_many(
        ((f"k{i}", response(f"answer {i}")) for i in range(250)), namespace="warm", batch_size=100
    )
    assert n == 250
    assert cache.stats().namespaces == {"warm": 250}
    entry = cache.get("k137", namespace="warm")
    assert entry is not None and entry.response.text == "answer 137"


async def test_async_get_and_set(cache: ExactCache):
    await cache.aset("k", response("async"), ttl_s=100)
    entry = await cache.aget("k")
    assert entry is not None and entry.response.text == "async" and entry.response.cached
    assert await cache.aget("other") is None


def test_default_cache_lives_in_the_state_dir_and_reads_cache_config(tmp_path: Path):
    state = tmp_path / "state" / "nested"
    config = Config(state_dir=state, cache={"ttl_s": 30, "namespace": "proj"})
    with default_cache(config) as cache:
        assert cache.path == state / CACHE_FILE
        assert (cache.namespace, cache.ttl_s) == ("proj", 30)
    assert (state / CACHE_FILE).is_file()


def test_default_cache_honours_promptkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with default_cache() as cache:
        assert cache.path == tmp_path / "home" / CACHE_FILE


def test_default_cache_rejects_a_bad_ttl_in_config(tmp_path: Path):
    with pytest.raises(ConfigError, match="ttl_s"):
        default_cache(Config(state_dir=tmp_path, cache={"ttl_s": "soon"}))
