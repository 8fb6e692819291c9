"""Loading outcome matrices: RouterBench's wide layout, the long layout, column mapping, errors naming the cell."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from promptkit.errors import EvalError
from promptkit.evals.routing import (
    ROUTELLM_PRICES_PER_MTOK,
    STRONG_MODEL,
    WEAK_MODEL,
    RouteLLMData,
    load_outcomes,
    outcomes_from_routellm,
)
from tests.evals.routing.routerbench_fixture import MODELS, PRICE_PER_CHAR, rows, write_long, write_wide


def test_wide_folder_reads_every_benchmark_with_prices(tmp_path: Path) -> None:
    folder = write_wide(tmp_path / "rb", n=30)
    m = load_outcomes(folder)
    assert m.models == list(MODELS) and len(m) == 60
    assert sorted(set(m.domains)) == ["arith", "trivia"]
    expected = rows("arith", 30, 0)
    assert m.prompts[0] == expected[0]["prompt"] and m.ids[0] == "arith:arith.0"
    for j, model in enumerate(MODELS):
        assert m.scores[0, j] == expected[0][model]
        assert m.costs[0, j] == pytest.approx(PRICE_PER_CHAR[model] * (len(m.prompts[0]) + 40))
    assert m.answers is not None and m.answers[0][2] == "answer from big/large"
    assert m.binary and m.cost_note == "recorded"
    summary = m.summary()
    assert summary["domains"] == {"arith": 30, "trivia": 30}
    assert (
        summary["models"][2]["cost_usd"] > summary["models"][1]["cost_usd"] > summary["models"][0]["cost_usd"]
    )


def test_long_layout_and_column_mapping(tmp_path: Path) -> None:
    path = write_long(tmp_path / "long.jsonl", n=20, prompt_key="question")
    with pytest.raises(EvalError) as info:
        load_outcomes(path)
    assert "long.jsonl:1" in str(info.value) and "'prompt'" in str(info.value)
    m = load_outcomes(path, columns={"prompt": "question"})
    assert m.models == list(MODELS) and len(m) == 40 and set(m.domains) == {"arith", "trivia"}
    wide = load_outcomes(write_wide(tmp_path / "rb", n=20))
    order = {p: i for i, p in enumerate(wide.prompts)}
    same = [order[p] for p in m.prompts]
    assert np.array_equal(wide.scores[same], m.scores) and np.allclose(wide.costs[same], m.costs)
    sample = m.sample(10, seed=1)
    assert len(sample) == 10 and sample.prompts == m.sample(10, seed=1).prompts


def test_a_bad_cell_names_file_line_and_column(tmp_path: Path) -> None:
    folder = write_wide(tmp_path / "rb", n=5)
    path = folder / "trivia.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("mid/medium|total_cost")] = "cheap"
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(EvalError) as info:
        load_outcomes(folder)
    assert info.value.location == f"{path}:4: mid/medium|total_cost"
    assert "cost must be a number" in str(info.value)


def test_missing_columns_and_outcomes_are_named(tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("prompt,answer\nq,a\n", encoding="utf-8")
    with pytest.raises(EvalError, match="neither layout") as info:
        load_outcomes(odd)
    assert str(odd) in str(info.value)
    folder = write_wide(tmp_path / "rb", n=5)
    with pytest.raises(EvalError) as info:
        load_outcomes(folder, columns={"domain": "task"})
    assert "arith.csv:1: task" in str(info.value)
    with pytest.raises(EvalError, match="unknown column role"):
        load_outcomes(folder, columns={"flavour": "x"})
    gap = tmp_path / "gap.jsonl"
    gap.write_text(
        '{"prompt": "q1", "model": "a", "score": 1, "cost": 0.1}\n'
        '{"prompt": "q1", "model": "b", "score": 0, "cost": 0.2}\n'
        '{"prompt": "q2", "model": "a", "score": 1, "cost": 0.1}\n',
        encoding="utf-8",
    )
    with pytest.raises(EvalError, match=r"no outcome for model\(s\) \['b'\]") as info:
        load_outcomes(gap)
    assert info.value.location == f"{gap}:3"
    with pytest.raises(EvalError, match="not found"):
        load_outcomes(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalError, match="no outcome files"):
        load_outcomes(tmp_path / "empty")


@pytest.mark.skipif(
    importlib.util.find_spec("pyarrow") is not None or importlib.util.find_spec("pandas") is not None,
    reason="pyarrow or pandas is installed, so Parquet is readable",
)
def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path) -> None:
    path = tmp_path / "bench.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(EvalError, match="pip install pyarrow") as info:
        load_outcomes(path)
    assert str(path) in str(info.value)


def test_routellm_data_is_one_source_with_estimated_dollars(tmp_path: Path) -> None:
    data = RouteLLMData(
        benchmark="gsm8k",
        prompts=["a" * 400, "b" * 40],
        weak=np.array([1.0, 0.0]),
        strong=np.array([1.0, 1.0]),
        weak_answers=["x" * 400, ""],
        groups=["gsm8k", "gsm8k"],
        graded=False,
        total=2,
        excluded=0,
        source=tmp_path,
        ids=["0", "1"],
    )
    m = outcomes_from_routellm(data)
    assert m.models == [WEAK_MODEL, STRONG_MODEL]
    assert m.scores.tolist() == [[1.0, 1.0], [0.0, 1.0]]
    # 800 characters at 4 per token = 200 tokens at RouteLLM's price per million tokens.
    assert m.costs[0, 1] == pytest.approx(200 * ROUTELLM_PRICES_PER_MTOK[STRONG_MODEL] / 1e6)
    assert m.costs[1, 0] == pytest.approx(10 * ROUTELLM_PRICES_PER_MTOK[WEAK_MODEL] / 1e6)
    assert m.cost_note.startswith("estimated")
