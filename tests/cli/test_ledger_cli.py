"""``promptkit ledger show``: the runs table, one run's attempts, JSON, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptkit.cli import main
from promptkit.ledger import LEDGER_FILE, Ledger, LedgerEntry


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTKIT_HOME", raising=False)
    monkeypatch.setenv("COLUMNS", "250")


def fill(state: Path) -> tuple[str, str]:
    with Ledger(state / LEDGER_FILE) as ledger:
        first = ledger.new_run("baseline")
        ledger.record(
            LedgerEntry(
                run_id=first,
                call_id="c1",
                model="cheap",
                template="summarise",
                tier=0,
                input_tokens=1200,
                output_tokens=80,
                cost_usd=0.0012,
                latency_s=0.8,
                outcome="invalid",
            )
        )
        ledger.record(
            LedgerEntry(
                run_id=first,
                call_id="c1",
                attempt=2,
                model="smart",
                template="summarise",
                tier=1,
                input_tokens=1300,
                output_tokens=90,
                cost_usd=0.013,
                latency_s=2.25,
                reason="escalation",
                outcome="ok",
            )
        )
        second = ledger.new_run("cached rerun")
        ledger.record(
            LedgerEntry(
                run_id=second,
                call_id="c1",
                model="smart",
                cache="exact",
                saved_usd=0.013,
                outcome="cache_hit",
            )
        )
    return first, second


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_table_lists_recent_runs_with_totals(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    first, second = fill(tmp_path / "st")
    code, out, _ = run(capsys, "ledger", "show", "--state-dir", str(tmp_path / "st"))
    assert code == 0
    assert first in out and second in out and "baseline" in out and "cached rerun" in out
    assert out.index(second) < out.index(first)  # newest first
    assert "2,500/170" in out and "$0.0142" in out


def test_runs_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    first, second = fill(tmp_path / "st")
    code, out, _ = run(
        capsys, "ledger", "show", "--state-dir", str(tmp_path / "st"), "--json", "--limit", "1"
    )
    assert code == 0
    runs = json.loads(out)["runs"]
    assert [r["run_id"] for r in runs] == [second]
    assert runs[0]["totals"]["cache_hits"] == 1


def test_one_run_json_has_totals_and_entries(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    first, _ = fill(tmp_path / "st")
    code, out, _ = run(capsys, "ledger", "show", first, "--state-dir", str(tmp_path / "st"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["run_id"] == first
    assert (
        data["totals"]["attempts"] == 2
        and data["totals"]["escalations"] == 1
        and data["totals"]["calls"] == 1
    )
    assert [e["model"] for e in data["entries"]] == ["cheap", "smart"]
    assert [e["outcome"] for e in data["entries"]] == ["invalid", "ok"]


def test_latest_run_table_shows_attempts_and_totals(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    fill(tmp_path / "st")
    _, second = fill(tmp_path / "st")
    code, out, _ = run(capsys, "ledger", "show", "latest", "--state-dir", str(tmp_path / "st"))
    assert code == 0
    assert f"run {second}" in out and "cache_hit" in out and "exact" in out
    assert "cache hits 1 (saved $0.0130)" in out


def test_one_run_table_shows_each_attempt(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    first, _ = fill(tmp_path / "st")
    code, out, _ = run(capsys, "ledger", "show", first, "--state-dir", str(tmp_path / "st"))
    assert code == 0
    for text in (
        "summarise",
        "cheap",
        "smart",
        "escalation",
        "invalid",
        "1,200/80",
        "2.25s",
        "escalations 1",
    ):
        assert text in out, text


def test_unknown_run_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    fill(tmp_path / "st")
    code, out, err = run(capsys, "ledger", "show", "nope", "--state-dir", str(tmp_path / "st"))
    assert code != 0 and out == ""
    assert err.startswith("error: ") and "no run 'nope'" in err and err.count("\n") == 1


def test_missing_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "ledger", "show", "--state-dir", str(tmp_path / "none"), "--json")
    assert code == 0 and json.loads(out) == {"runs": []}
    code, _, err = run(capsys, "ledger", "show", "latest", "--state-dir", str(tmp_path / "none"))
    assert code != 0 and "no run 'latest'" in err
    assert not (tmp_path / "none").exists()


def test_promptkit_home_is_the_default_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    first, _ = fill(tmp_path / "home")
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "home"))
    code, out, _ = run(capsys, "ledger", "show", first, "--json")
    assert code == 0 and json.loads(out)["run_id"] == first


def test_a_cascade_run_shows_each_tier_and_what_it_saved(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / ".promptkit"
    state.mkdir()
    rows = [  # three calls: two answered by the small tier, one escalated after a failed repair
        ("a", 1, "small", 0, 1.0, "ok", None),
        ("b", 1, "small", 0, 1.0, "ok", None),
        ("c", 1, "small", 0, 1.0, "invalid", None),
        ("c", 2, "small", 0, 1.5, "invalid", "reask"),
        ("c", 3, "large", 1, 4.0, "ok", "escalation"),
    ]
    with Ledger(state / LEDGER_FILE) as ledger:
        run = ledger.new_run("cascade")
        for call, attempt, model, tier, compute, outcome, reason in rows:
            ledger.record(
                LedgerEntry(
                    run_id=run,
                    call_id=call,
                    attempt=attempt,
                    model=model,
                    tier=tier,
                    input_tokens=100,
                    output_tokens=10,
                    compute_s=compute,
                    outcome=outcome,
                    reason=reason,
                    accepted=outcome == "ok",
                )
            )
    assert main(["ledger", "show", run]) == 0
    out = capsys.readouterr().out
    assert "tier 0 (small): 4 attempts, 2 accepted, tokens 400 in / 40 out, compute 4.5s" in out
    assert "tier 1 (large): 1 attempts, 1 accepted, tokens 100 in / 10 out, compute 4.0s" in out
    # All three calls on the large tier: 3 x 4.0 s = 12.0 s; the cascade spent 8.5 s.
    assert "cascade: 3 calls, 1 reached tier 1; all on tier 1 would take about 12.0s (4.00s a call), " in out
    assert "this run took 8.5s (0.71x)" in out
    assert main(["ledger", "show", run, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [t["answered"] for t in data["tiers"]] == [2, 1]
    assert data["cascade"]["ratio"] == pytest.approx(8.5 / 12.0)
