"""The ledger: recording attempts, totals across retries/fallbacks/escalations, runs, bad files, concurrency."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import sqlite3
from pathlib import Path

import pytest

from promptkit.config import Config
from promptkit.errors import LedgerError
from promptkit.ledger import LEDGER_FILE, Ledger, LedgerEntry, LedgerTotals, default_ledger


@pytest.fixture
def ledger(tmp_path: Path):
    with Ledger(tmp_path / "ledger.sqlite") as led:
        yield led


def attempt(run: str, call: str, outcome: str = "ok", **kw: object) -> LedgerEntry:
    return LedgerEntry(run_id=run, call_id=call, model=str(kw.pop("model", "cheap")), outcome=outcome, **kw)  # type: ignore[arg-type]


def record_story(ledger: Ledger, run: str) -> None:
    """Four calls, hand-built:
    c1: ok at once.
    c2: invalid, re-ask invalid, escalate to tier 1 which succeeds.
    c3: transport error, retry times out, fallback to another deployment that succeeds.
    c4: exact cache hit.
    c5: budget refused (fails for good).
    """
    t = 1000.0
    rows = [
        attempt(
            run,
            "c1",
            input_tokens=100,
            output_tokens=20,
            cost_usd=0.001,
            latency_s=0.5,
            compute_s=0.4,
            tier=0,
        ),
        attempt(
            run, "c2", "invalid", input_tokens=80, output_tokens=30, cost_usd=0.001, tier=0, accepted=False
        ),
        attempt(
            run,
            "c2",
            "invalid",
            attempt=2,
            reason="reask",
            input_tokens=120,
            output_tokens=30,
            cost_usd=0.002,
        ),
        attempt(
            run,
            "c2",
            attempt=3,
            reason="escalation",
            model="smart",
            tier=1,
            input_tokens=80,
            output_tokens=25,
            cost_usd=0.02,
            latency_s=1.5,
            accepted=True,
        ),
        attempt(run, "c3", "transport_error", error="HTTP 503", latency_s=0.1),
        attempt(run, "c3", "transport_error", attempt=2, reason="retry", error="timed out", latency_s=2.0),
        attempt(
            run,
            "c3",
            attempt=3,
            reason="fallback",
            model="smart-eu",
            input_tokens=50,
            output_tokens=10,
            cost_usd=0.01,
        ),
        attempt(run, "c4", "cache_hit", cache="exact", saved_usd=0.02),
        attempt(run, "c5", "budget_refused", error="run cap $1.00 reached"),
    ]
    for i, row in enumerate(rows):
        row.ts = t + i
        ledger.record(row)


def test_totals_across_retries_fallbacks_escalations(ledger: Ledger):
    run = ledger.new_run("story")
    record_story(ledger, run)
    totals = ledger.totals(run).model_dump()
    assert totals == dict(
        calls=5,
        attempts=9,
        input_tokens=430,
        output_tokens=115,
        cost_usd=pytest.approx(0.034),
        compute_s=pytest.approx(0.4),
        retries=2,  # one re-ask, one transport retry
        escalations=1,
        fallbacks=1,
        cache_hits=1,
        saved_usd=pytest.approx(0.02),
        failures=1,  # only c5 never succeeded
        failed_attempts=5,
        latency_s=pytest.approx(4.1),
    )


def test_totals_are_per_run_and_whole_ledger_counts_calls_per_run(ledger: Ledger):
    a, b = ledger.new_run("a"), ledger.new_run("b")
    record_story(ledger, a)
    # The same call ids in another run are different calls.
    ledger.record(attempt(b, "c1", input_tokens=7, cost_usd=1.0))
    ledger.record(attempt(b, "c2", "error", error="boom"))
    assert (
        ledger.totals(b).calls == 2 and ledger.totals(b).failures == 1 and ledger.totals(b).input_tokens == 7
    )
    everything = ledger.totals()
    assert everything.calls == 7 and everything.attempts == 11
    assert everything.failures == 2
    assert everything.input_tokens == 437
    assert everything.cost_usd == pytest.approx(1.034)


def test_totals_of_an_empty_or_unknown_run_are_zero(ledger: Ledger):
    run = ledger.new_run()
    assert ledger.totals(run) == LedgerTotals()
    assert ledger.totals("nope") == LedgerTotals()
    assert ledger.totals() == LedgerTotals()


def test_entries_round_trip_in_time_order(ledger: Ledger):
    run = ledger.new_run()
    late = attempt(run, "c", ts=20.0, features={"input_chars": 812, "tags": ["math"]}, accepted=True, tier=2)
    early = attempt(
        run,
        "c",
        "invalid",
        ts=10.0,
        accepted=False,
        cache="semantic",
        cache_similarity=0.93,
        template="t",
        template_hash="h",
    )
    ledger.record(late)
    ledger.record(early)
    assert ledger.entries(run) == [early, late]


def test_entries_without_run_are_the_whole_ledger(ledger: Ledger):
    a, b = ledger.new_run(), ledger.new_run()
    ledger.record(attempt(a, "x", ts=1.0))
    ledger.record(attempt(b, "y", ts=2.0))
    assert [e.call_id for e in ledger.entries()] == ["x", "y"]
    assert [e.call_id for e in ledger.entries(b)] == ["y"]


def test_run_ids_are_sortable_unique_and_shaped_like_a_timestamp(tmp_path: Path):
    now = [1_795_227_393.0]  # 2026-11-21 02:16:33 UTC
    with Ledger(tmp_path / "l.sqlite", clock=lambda: now[0]) as ledger:
        same_second = {ledger.new_run() for _ in range(50)}
        assert len(same_second) == 50
        assert all(re.fullmatch(r"20261121-021633-[0-9a-f]{4}", r) for r in same_second)
        now[0] += 3600
        later = ledger.new_run()
        assert all(later > r for r in same_second)


def test_runs_list_newest_first_with_totals_and_latest(ledger: Ledger, tmp_path: Path):
    assert ledger.runs() == [] and ledger.latest_run() is None
    first = ledger.new_run("first", meta={"suite": "gsm8k"})
    second = ledger.new_run("second")
    record_story(ledger, first)
    ledger.record(attempt(second, "only", input_tokens=3))
    runs = ledger.runs()
    assert [r.run_id for r in runs] == [second, first]
    assert runs[1].name == "first" and runs[1].meta == {"suite": "gsm8k"}
    assert runs[1].totals == ledger.totals(first)
    assert runs[0].totals.input_tokens == 3
    assert [r.run_id for r in ledger.runs(limit=1)] == [second]
    assert ledger.latest_run() == second


def test_recording_into_a_run_never_started_creates_it(ledger: Ledger):
    ledger.record(attempt("adhoc-run", "c", ts=123.0))
    assert [(r.run_id, r.started_at) for r in ledger.runs()] == [("adhoc-run", 123.0)]


def test_resolve_run_accepts_latest_full_ids_and_unique_prefixes(ledger: Ledger):
    with pytest.raises(LedgerError, match="no runs"):
        ledger.resolve_run("latest")
    ledger.record(attempt("alpha-1", "c", ts=1.0))
    ledger.record(attempt("alpha-2", "c", ts=2.0))
    ledger.record(attempt("beta", "c", ts=3.0))
    assert ledger.resolve_run("latest") == "beta"
    assert ledger.resolve_run("alpha-1") == "alpha-1"
    assert ledger.resolve_run("be") == "beta"
    with pytest.raises(LedgerError, match="ambiguous"):
        ledger.resolve_run("alpha")
    with pytest.raises(LedgerError, match="no run 'zeta'") as info:
        ledger.resolve_run("zeta")
    assert str(ledger.path) in str(info.value)
    with pytest.raises(LedgerError, match="no run"):
        ledger.run("zeta")


def test_errors_and_features_are_scrubbed_before_they_are_stored(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    planted = "planted-Secret-Value-123"
    monkeypatch.setenv("ACME_API_KEY", planted)
    run = ledger.new_run(meta={"note": f"key {planted}"})
    ledger.record(
        attempt(
            run,
            "c",
            "error",
            error=f"401 for Authorization: Bearer abcdef123456 with key sk-ant-api03-AAAABBBBCCCC and {planted}",
            features={"header": f"api_key={planted}", "nested": [f"sk-proj-{'x' * 20}"]},
        )
    )
    raw = Path(ledger.path).read_bytes() + Path(f"{ledger.path}-wal").read_bytes()
    for secret in (planted, "abcdef123456", "AAAABBBBCCCC", "x" * 20):
        assert secret.encode() not in raw
    stored = ledger.entries(run)[0]
    assert stored.error is not None and "sk-ant-***" in stored.error and "Bearer ***" in stored.error
    assert "401 for Authorization" in stored.error  # the rest of the message survives


def test_unserialisable_features_are_a_ledger_error(ledger: Ledger):
    with pytest.raises(LedgerError, match="features"):
        ledger.record(attempt("r", "c", features={"obj": object()}))


def test_corrupt_file_is_a_ledger_error_naming_the_path(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(LedgerError) as info:
        Ledger(path)
    assert str(path) in str(info.value)


def test_a_database_of_another_program_with_clashing_tables_fails_cleanly(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE ledger_attempts (something_else TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="no such column") as info:
        Ledger(path)
    assert str(path) in str(info.value)


def test_closed_ledger_refuses_work(tmp_path: Path):
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.close()
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.new_run()


def test_default_ledger_lives_in_the_state_dir(tmp_path: Path):
    with default_ledger(Config(state_dir=tmp_path / "s")) as ledger:
        assert ledger.path == tmp_path / "s" / LEDGER_FILE
        ledger.new_run()
    assert (tmp_path / "s" / LEDGER_FILE).is_file()


async def test_two_hundred_concurrent_async_writers(ledger: Ledger):
    run = ledger.new_run()
    await asyncio.gather(*(ledger.arecord(attempt(run, f"c{i}", input_tokens=i)) for i in range(200)))
    totals = ledger.totals(run)
    assert (totals.calls, totals.attempts, totals.input_tokens) == (200, 200, sum(range(200)))


def _write_run(path: str, index: int) -> None:
    with Ledger(path) as ledger:
        for j in range(150):
            ledger.record(attempt(f"proc-{index}", f"c{j}", input_tokens=1, cost_usd=0.5))


def test_four_processes_write_one_ledger(tmp_path: Path):
    path = str(tmp_path / "l.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_run, args=(path, i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Ledger(path) as ledger:
        totals = ledger.totals()
        assert (totals.calls, totals.attempts, totals.input_tokens) == (600, 600, 600)
        assert totals.cost_usd == pytest.approx(300.0)
        assert sorted(r.run_id for r in ledger.runs()) == [f"proc-{i}" for i in range(4)]


def test_a_returned_record_survives_kill_9(tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "ledger.sqlite"
    code = textwrap.dedent(
        f"""
        import os, signal
        from promptkit.ledger import Ledger, LedgerEntry
        led = Ledger({str(path)!r})
        run = led.new_run("crash")
        for i in range(3):
            led.record(LedgerEntry(run_id=run, call_id=f"c{{i}}", model="m", outcome="ok"))
        print(run, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    run = done.stdout.strip()
    assert os.path.exists(f"{path}-wal")  # never checkpointed: the rows live in the WAL only
    with Ledger(path) as again:
        assert [e.call_id for e in again.entries(run)] == ["c0", "c1", "c2"]
        assert again.run(run).name == "crash"


def test_rows_into_a_known_run_and_a_run_started_elsewhere(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as one, Ledger(path) as two:
        run = one.new_run("shared")
        for i in range(3):
            one.record(attempt(run, f"a{i}"))  # the fast path: one INSERT, no run upsert
            two.record(attempt(run, f"b{i}"))  # a run this object never saw: upserted once, then fast
        two.record(attempt("never-started", "x"))
        assert one.totals(run).calls == 6
        assert [r.run_id for r in one.runs() if r.run_id == run] == [run]
        assert one.run("never-started").totals.calls == 1
        assert one.run(run).name == "shared"  # the upsert never overwrote the started run
