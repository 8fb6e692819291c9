"""``promptkit cache calibrate`` on labelled pairs and on GPTCache's format, and semantic figures in stats."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from promptkit.backends import GenerateResponse
from promptkit.cache import SEMANTIC_FILE, SemanticCache, semantic_settings
from promptkit.cli import main
from promptkit.config import load_config
from tests.cache._semantic_support import HashEmbedder, minilm

MOCK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gptcache" / "mock_data.json"
NEEDS_MOCK = pytest.mark.skipif(
    not MOCK.is_file(), reason=f"{MOCK} is missing (shared/data is not beside the repository)"
)

PARAPHRASES = [
    ("How do I reset my password?", "I forgot my password, how can I reset it?"),
    ("What is the capital of France?", "Which city is France's capital?"),
    ("How do I install numpy?", "What is the way to install numpy?"),
    ("How can I sort a list in Python?", "Sorting a Python list: how?"),
    ("When was the Eiffel Tower built?", "In what year was the Eiffel Tower constructed?"),
    ("How do I make pancakes?", "What's a recipe for pancakes?"),
]
DIFFERENT = [
    ("How do I reset my password?", "What is the capital of France?"),
    ("How do I install numpy?", "When was the Eiffel Tower built?"),
    ("How do I enable dark mode?", "How do I disable dark mode?"),
    ("How do I make pancakes?", "How can I sort a list in Python?"),
    ("Is Python faster than Ruby?", "Is Ruby faster than Python?"),
    ("What time is it in Tokyo?", "How do I bake bread?"),
]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_calibrate_pairs_writes_config_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"a": a, "b": b, "label": 1} for a, b in PARAPHRASES] + [
        {"a": a, "b": b, "label": 0} for a, b in DIFFERENT
    ]
    pairs.write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "promptkit.toml").write_text(
        '[state]\ndir = "state"\n\n[cache.semantic]\ntemplates = ["explain"]\n'
    )
    embedder = str(minilm().model_path)
    code, out, err = run(
        capsys, "cache", "calibrate", str(pairs), "--target-false-hit", "0", "--embedder", embedder,
        "--png", str(tmp_path / "curve.png"), "--write-config", "--json", "--held-out", "0",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["method"] == "pairs" and (result["positives"], result["negatives"]) == (6, 6)
    assert result["false_hit_rate"] == 0.0 and result["recall"] > 0.5
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    settings = semantic_settings(load_config(path=tmp_path / "promptkit.toml"))
    assert settings.threshold == pytest.approx(result["threshold"], abs=1e-4)
    assert settings.templates == ("explain",)  # the rest of the table is kept
    # Human output: a table and the chosen threshold.
    png = tmp_path / "[plots]" / "curve.png"
    png.parent.mkdir()
    code, out, _ = run(
        capsys, "cache", "calibrate", str(pairs), "--target-false-hit", "0", "--embedder", embedder,
        "--png", str(png), "--write-config", "--held-out", "0",
    )  # fmt: skip
    assert code == 0 and "threshold curve" in out and f"threshold {result['threshold']:.3f}" in out
    assert "no pairs held out" in out  # said plainly when the figures are on the fitted pairs
    flat = " ".join(out.split())  # the console may wrap long paths
    assert f"wrote [cache.semantic] to {tmp_path / 'promptkit.toml'}" in flat
    assert f"curve drawn to {png}" in flat


@NEEDS_MOCK
def test_calibrate_on_gptcache_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subset = tmp_path / "mock_data.json"
    subset.write_text(json.dumps(json.loads(MOCK.read_text())[:60]))
    code, out, err = run(
        capsys, "cache", "calibrate", str(subset), "--embedder", str(minilm().model_path), "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["method"] == "gptcache-protocol" and result["positives"] == 60
    assert result["threshold"] is not None and result["margin"] is not None
    assert result["false_hit_rate"] <= 0.01


def test_bad_pairs_file_is_one_line_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": "x", "b": "y", "label": 1}\n{"a": "x"}\n')
    code, _, err = run(capsys, "cache", "calibrate", str(bad), "--embedder", str(minilm().model_path))
    assert code != 0 and "bad.jsonl:2" in err and "Traceback" not in err


def test_labelled_pairs_report_held_out_figures_with_progress_and_threads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    from tests.cache.test_calibrate import _lexical_pairs

    pairs = tmp_path / "pairs.jsonl.gz"
    pairs.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in _lexical_pairs(300)).encode()))
    (tmp_path / "promptkit.toml").write_text('[state]\ndir = "state"\n')
    code, out, err = run(
        capsys, "cache", "calibrate", str(pairs), "--embedder", str(minilm().model_path), "--threads", "1",
        "--scorer", "--write-config", "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    held = result["held_out"]
    assert result["method"] == "pairs+classifier" and result["classifier"]["version"] == "match-v1"
    assert held["pairs"] + result["positives"] + result["negatives"] == 300 and held["pairs"] > 50
    assert set(held) >= {"precision", "hit_rate", "false_hit_rate"} and held["curve"]
    # Progress: lines on stderr (not a terminal) for each stage, ending at the total.
    for stage in ("embedding", "features", "fitting", "scoring"):
        lines = [line for line in err.splitlines() if line.startswith(f"{stage}: ")]
        assert lines, err
        done, total = lines[-1].split()[1].split("/")
        assert done == total, lines  # the last line of each stage is its end
    settings = semantic_settings(load_config(path=tmp_path / "promptkit.toml"))
    assert settings.classifier is not None and settings.threshold == pytest.approx(
        result["threshold"], abs=1e-4
    )
    # Human output names the held-out figures.
    code, out, err = run(capsys, "cache", "calibrate", str(pairs), "--embedder", str(minilm().model_path))
    assert code == 0, err
    assert "held out (" in " ".join(out.split()) and "hit rate" in out


def test_stats_shows_semantic_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "st"
    with SemanticCache(state / SEMANTIC_FILE, embedder=HashEmbedder(), threshold=0.9) as cache:
        cache.store("one two three", GenerateResponse(text="x", cost_usd=0.25))
        cache.lookup("one two three")
        cache.lookup("nine ten")
    code, out, _ = run(capsys, "cache", "stats", "--state-dir", str(state), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["semantic"]["hits"] == 1 and data["semantic"]["lookups"] == 2
    assert data["semantic"]["saved_usd"] == pytest.approx(0.25)
    code, out, _ = run(capsys, "cache", "stats", "--state-dir", str(state))
    assert "semantic cache" in out and "missed: below threshold" in out


def test_cli_module_import_stays_light() -> None:
    import subprocess

    code = "import sys, promptkit.cli.cache; print(','.join(m for m in ('numpy', 'faiss', 'matplotlib', 'llama_cpp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
