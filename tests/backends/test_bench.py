"""bench_local_model and ``promptkit models bench``, on the tiny random-weight model only (fast settings).

Random weights give random text; the bench bans end-of-generation tokens, so every decode runs to the tokens
asked for. Timings on a tiny model say nothing about speed: these tests check that each measure is there, has
the right sign and units, and that errors name the fix.
"""

from __future__ import annotations

import json
import math
import os

import pytest
from click.testing import CliRunner

from promptkit.backends import LocalBenchResult, bench_local_model
from promptkit.backends._bench import build_prompt, cpu_features
from promptkit.cli import cli, main
from promptkit.errors import BackendUnavailable, ConfigError

FAST = {"prompt_tokens": 64, "output_tokens": 8, "repeats": 1}


@pytest.fixture(scope="module")
def result(tiny_gguf) -> LocalBenchResult:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    out = bench_local_model(tiny_gguf, n_threads=1, progress=lines.append, **FAST)
    assert len(lines) >= 4 and lines[0].startswith("loading ")  # one line before each phase
    return out


def test_result_fields_are_sane(result, tiny_gguf):  # type: ignore[no-untyped-def]
    assert result.model == tiny_gguf.name and result.path == str(tiny_gguf)
    assert result.weights_bytes == tiny_gguf.stat().st_size
    assert result.n_threads == 1 and result.n_ctx == 4096 and result.repeats == 1
    assert abs(result.prompt_tokens - 64) <= 0.2 * 64
    assert result.output_tokens == 8  # end-of-generation is banned: exactly what was asked
    for seconds in (result.load_s, result.ttft_s, result.tpot_s, result.raw_chat_s, result.promptkit_chat_s):
        assert 0 < seconds < 60
    assert result.prefix_first_ttft_s > 0 and result.prefix_second_ttft_s > 0
    assert result.prefix_prompt_tokens > result.prompt_tokens  # system prompt + chat template
    assert result.overhead_ratio > 0 and result.prefix_ttft_ratio > 0
    assert math.isclose(result.prefill_tokens_per_s, result.prompt_tokens / result.ttft_s)
    assert math.isclose(result.decode_tokens_per_s, 1 / result.tpot_s)
    assert math.isclose(result.decode_gb_per_s, result.decode_tokens_per_s * result.weights_bytes / 1e9)
    assert result.peak_rss_mb > 10
    assert result.llama_cpp_version and all(isinstance(name, str) for name in result.cpu_features)


def test_as_dict_and_lines(result):  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(result.as_dict()))
    assert data["decode_gb_per_s"] == pytest.approx(result.decode_gb_per_s)
    assert data["cpu_features"] == list(result.cpu_features)
    assert data["overhead_ratio"] == result.overhead_ratio
    text = "\n".join(result.lines())
    for label in ("load", "prefill", "decode", "weights read", "peak RSS", "promptkit / raw", "prefix reuse"):
        assert label in text
    assert "GB/s" in text and "TPOT" in text and "TTFT" in text


def test_auto_threads_resolves_to_a_number(tiny_gguf):  # type: ignore[no-untyped-def]
    out = bench_local_model(tiny_gguf, n_threads="auto", **FAST)
    assert isinstance(out.n_threads, int) and 1 <= out.n_threads <= (os.cpu_count() or 1)


def test_cli_json(tiny_gguf):  # type: ignore[no-untyped-def]
    args = ["models", "bench", str(tiny_gguf), "--json", "--prompt-tokens", "64", "--output-tokens", "8"]
    result = CliRunner().invoke(cli, [*args, "--repeats", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # progress lines go to stderr
    assert data["model"] == tiny_gguf.name and data["output_tokens"] == 8 and data["repeats"] == 1
    assert abs(data["prompt_tokens"] - 64) <= 13
    assert data["ttft_s"] > 0 and data["tpot_s"] > 0 and data["decode_gb_per_s"] > 0


def test_cli_table_names_the_bandwidth_limit(tiny_gguf):  # type: ignore[no-untyped-def]
    args = ["models", "bench", str(tiny_gguf), "--prompt-tokens", "64", "--output-tokens", "8"]
    result = CliRunner().invoke(cli, [*args, "--repeats", "1", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "GB/s of weights" in result.stdout and "memory bandwidth is the limit" in result.stdout
    assert "prefix reuse" in result.stdout


def test_uninstalled_catalog_model_names_the_pull_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROMPTKIT_MODELS", str(tmp_path / "store"))
    with pytest.raises(BackendUnavailable, match="promptkit models pull qwen2.5-coder-0.5b"):
        bench_local_model("qwen2.5-coder-0.5b", **FAST)
    assert main(["models", "bench", "qwen2.5-coder-0.5b", "--repeats", "1"]) == 1
    assert "run: promptkit models pull qwen2.5-coder-0.5b" in capsys.readouterr().err


def test_missing_file_and_bad_settings(tiny_gguf, tmp_path, capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(BackendUnavailable, match="not found"):
        bench_local_model(tmp_path / "nope.gguf", **FAST)
    with pytest.raises(ConfigError, match="output_tokens"):
        bench_local_model(tiny_gguf, prompt_tokens=64, output_tokens=1)
    with pytest.raises(ConfigError, match="n_ctx"):
        bench_local_model(tiny_gguf, n_ctx=64, **FAST)
    with pytest.raises(ConfigError, match="n_threads"):
        bench_local_model(tiny_gguf, n_threads=0, **FAST)
    assert main(["models", "bench", str(tiny_gguf), "--threads", "many"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_prompt_is_deterministic_and_close_to_the_target():
    def count(text: str) -> int:  # a stand-in tokenizer: about four characters a token
        return (len(text) + 3) // 4

    for target in (64, 512, 2000):
        prompt = build_prompt(count, target)
        assert prompt == build_prompt(count, target)
        assert target - 2 <= count(prompt) <= target
        assert prompt.rstrip().endswith("Write pytest tests for orders.py.")
        assert "   1 " in prompt
    short = build_prompt(count, 1)  # never less than the header and the request
    assert "Write pytest tests" in short


def test_cpu_features_parses_system_info():
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 0 | AVX512_VNNI = 1 | OPENMP = 1 | "
    assert cpu_features(info) == ("SSE3", "AVX", "AVX2", "AVX512_VNNI", "OPENMP")
