"""Many writers on one cache file: asyncio tasks, threads and processes. No errors, no lost writes, no torn reads."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from promptkit.backends import GenerateResponse
from promptkit.cache import ExactCache

PROCESSES = 4
KEYS_PER_PROCESS = 300


def body(key: str) -> str:
    # Long enough to span pages, and derived from the key so a torn or mixed-up read shows.
    return f"<{key}>" + key[::-1] * 60 + f"</{key}>"


def worker(path: str, index: int, start: multiprocessing.synchronize.Event) -> tuple[int, int, list[str]]:
    """Write own keys, read them back, read other workers' keys; return (hits, misses, problems)."""
    problems: list[str] = []
    hits = misses = 0
    rng = random.Random(index)
    start.wait()
    with ExactCache(path) as cache:
        for j in range(KEYS_PER_PROCESS):
            key = f"p{index}-{j}"
            cache.set(key, GenerateResponse(text=body(key), cost_usd=0.001))
            cache.set(f"shared-{j % 20}", GenerateResponse(text=body(f"shared-{j % 20}")))
            for probe in (
                key,
                f"p{rng.randrange(PROCESSES)}-{rng.randrange(KEYS_PER_PROCESS)}",
                f"shared-{j % 20}",
            ):
                entry = cache.get(probe)
                if entry is None:
                    misses += 1
                    if probe == key:
                        problems.append(f"lost own write {key}")
                    continue
                hits += 1
                if entry.response.text != body(probe):
                    problems.append(f"torn read of {probe}")
    return hits, misses, problems


def test_four_processes_share_one_file_without_errors_or_lost_writes(tmp_path: Path):
    path = str(tmp_path / "shared.sqlite")
    # No file yet: the workers also race to create it and switch it to WAL.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(PROCESSES) as pool:
            pending = [pool.apply_async(worker, (path, i, start)) for i in range(PROCESSES)]
            start.set()
            results = [p.get(timeout=120) for p in pending]
    problems = [p for _, _, ps in results for p in ps]
    assert problems == []
    hits = sum(h for h, _, _ in results)
    misses = sum(m for _, m, _ in results)
    assert hits + misses == PROCESSES * KEYS_PER_PROCESS * 3
    with ExactCache(path) as cache:
        for i in range(PROCESSES):
            for j in range(KEYS_PER_PROCESS):
                entry = cache.get(f"p{i}-{j}")
                assert entry is not None and entry.response.text == body(f"p{i}-{j}")
        stats = cache.stats()
    assert stats.entries == PROCESSES * KEYS_PER_PROCESS + 20
    # Every process's counters reached the file: nothing lost between flushes.
    assert stats.hits == hits + PROCESSES * KEYS_PER_PROCESS
    assert stats.misses == misses


async def test_two_hundred_concurrent_tasks(tmp_path: Path):
    with ExactCache(tmp_path / "c.sqlite") as cache:

        async def task(i: int) -> list[str]:
            key = f"t{i}"
            await cache.aset(key, GenerateResponse(text=body(key), cost_usd=0.01))
            own = await cache.aget(key)
            other_key = f"t{(i * 7) % 200}"
            other = await cache.aget(other_key)
            problems = []
            if own is None or own.response.text != body(key):
                problems.append(f"lost {key}")
            if other is not None and other.response.text != body(other_key):
                problems.append(f"torn {other_key}")
            return problems

        results = await asyncio.gather(*(task(i) for i in range(200)))
        assert [p for ps in results for p in ps] == []
        stats = cache.stats()
        assert stats.entries == 200
        assert stats.hits + stats.misses == 400
        assert stats.hits >= 200


def test_threads_share_one_instance(tmp_path: Path):
    with ExactCache(tmp_path / "c.sqlite") as cache:

        def job(i: int) -> bool:
            key = f"th{i}"
            cache.set(key, GenerateResponse(text=body(key)))
            entry = cache.get(key)
            return entry is not None and entry.response.text == body(key)

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(job, range(400)))
        assert cache.stats().entries == 400
        assert cache.stats().hits == 400


def test_forked_child_does_not_write_the_parents_pending_counts(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    with ExactCache(path) as cache:
        cache.get("x")  # one miss, pending in the parent's memory

        def child_work() -> None:
            # The child inherits `cache` through fork: its own lookups count, the parent's pending one must not.
            cache.get("z")
            cache.flush_stats()

        child = multiprocessing.get_context("fork").Process(target=child_work)
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0
        cache.get("y")
        assert cache.stats().misses == 3
