"""``promptkit cache stats`` and ``promptkit cache clear``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptkit.backends import GenerateResponse
from promptkit.cache import CACHE_FILE, ExactCache
from promptkit.cli import main


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTKIT_HOME", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def fill(state: Path) -> None:
    with ExactCache(state / CACHE_FILE) as cache:
        for i in range(3):
            cache.set(f"a{i}", GenerateResponse(text="x", cost_usd=0.5), namespace="alpha")
        cache.set("b", GenerateResponse(text="y"), namespace="beta")
        cache.get("a0", namespace="alpha")
        cache.get("missing")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_stats_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    fill(tmp_path / "st")
    code, out, _ = run(capsys, "cache", "stats", "--state-dir", str(tmp_path / "st"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["path"] == str(tmp_path / "st" / CACHE_FILE)
    assert (data["entries"], data["namespaces"]) == (4, {"alpha": 3, "beta": 1})
    assert (data["hits"], data["misses"], data["saved_usd"]) == (1, 1, 0.5)
    assert data["hit_rate"] == 0.5 and data["bytes"] > 0


def test_stats_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    fill(tmp_path / "st")
    code, out, _ = run(capsys, "cache", "stats", "--state-dir", str(tmp_path / "st"))
    assert code == 0
    assert "alpha" in out and "beta" in out and "$0.5000" in out and "50.0%" in out


def test_stats_on_a_missing_cache_reports_zero_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code, out, _ = run(capsys, "cache", "stats", "--state-dir", str(tmp_path / "none"), "--json")
    assert code == 0 and json.loads(out)["entries"] == 0
    assert not (tmp_path / "none").exists()


def test_clear_one_namespace_then_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    state = tmp_path / "st"
    fill(state)
    code, out, _ = run(capsys, "cache", "clear", "--namespace", "alpha", "--state-dir", str(state), "--json")
    assert code == 0 and json.loads(out) == {
        "path": str(state / CACHE_FILE),
        "namespace": "alpha",
        "removed": 3,
    }
    code, out, _ = run(capsys, "cache", "clear", "--state-dir", str(state))
    assert code == 0 and out.startswith("removed 1 entry from all namespaces")
    with ExactCache(state / CACHE_FILE) as cache:
        assert cache.stats().entries == 0


def test_promptkit_home_is_the_default_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    fill(tmp_path / "home")
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "home"))
    code, out, _ = run(capsys, "cache", "stats", "--json")
    assert code == 0 and json.loads(out)["entries"] == 4


def test_config_state_dir_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "promptkit.toml").write_text('[state]\ndir = "my-state"\n')
    fill(tmp_path / "my-state")
    code, out, _ = run(capsys, "cache", "clear", "--json")
    assert code == 0 and json.loads(out)["removed"] == 4


def test_corrupt_cache_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / CACHE_FILE).write_bytes(b"garbage!" * 512)
    code, out, err = run(capsys, "cache", "stats", "--state-dir", str(tmp_path / "st"))
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert str(tmp_path / "st" / CACHE_FILE) in err
