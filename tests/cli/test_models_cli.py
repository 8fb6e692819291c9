"""``promptkit models``: make-tiny, and the catalog and store commands (list, pull, verify, rm)."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from promptkit.cli import main
from promptkit.cli.models import command


def test_make_tiny_writes_a_loadable_model(tmp_path):
    from llama_cpp import Llama

    target = tmp_path / "sub" / "tiny.gguf"
    assert main(["models", "make-tiny", str(target), "--seed", "5", "--n-ctx", "1024"]) == 0
    llama = Llama(model_path=str(target), n_ctx=1024, verbose=False)
    try:
        assert llama.n_ctx() == 1024
        assert llama.metadata["llama.context_length"] == "1024"
        out = llama.create_chat_completion([{"role": "user", "content": "hi"}], max_tokens=4, temperature=0)
        assert out["usage"]["completion_tokens"] == 4
    finally:
        llama.close()


def test_seed_option_changes_the_weights(tmp_path):
    runner = CliRunner()
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        result = runner.invoke(command, ["make-tiny", str(tmp_path / f"{name}.gguf"), "--seed", seed])
        assert result.exit_code == 0, result.output
        assert "random" in result.output
    assert (tmp_path / "a.gguf").read_bytes() == (tmp_path / "b.gguf").read_bytes()
    assert (tmp_path / "a.gguf").read_bytes() != (tmp_path / "c.gguf").read_bytes()


def test_help_says_it_is_random(tmp_path):
    result = CliRunner().invoke(command, ["make-tiny", "--help"])
    assert result.exit_code == 0
    assert "random-weight" in result.output and "random text" in result.output


def test_bad_n_ctx_is_a_usage_error(tmp_path):
    assert main(["models", "make-tiny", str(tmp_path / "x.gguf"), "--n-ctx", "0"]) == 2
    assert not (tmp_path / "x.gguf").exists()


def test_unwritable_path_is_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["models", "make-tiny", str(blocker / "m.gguf")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(blocker / "m.gguf") in err


# --- the catalog and store: list, pull, verify, rm ---------------------------------------------------------


@pytest.fixture
def catalog_model(tmp_path, monkeypatch):
    """A 1.5 MiB model in a user catalog, a correct copy of it, and a private store."""
    data = bytes(range(256)) * 6144
    original = tmp_path / "have" / "tiny-cli.gguf"
    original.parent.mkdir()
    original.write_bytes(data)
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "tiny-cli.toml").write_text(
        'family = "test"\nparameters = "1K"\nquantization = "none"\nfile = "tiny-cli.gguf"\n'
        f'size = {len(data)}\nsha256 = "{hashlib.sha256(data).hexdigest()}"\nlicense = "MIT"\n'
        'context_length = 512\n\n[[sources]]\nkind = "huggingface"\nrepo = "org/tiny-cli"\n'
        'filename = "tiny-cli.gguf"\n'
    )
    store = tmp_path / "store"
    monkeypatch.setenv("PROMPTKIT_MODELS", str(store))
    monkeypatch.setenv("PROMPTKIT_CATALOG_PATH", str(catalog))
    return original, store


def test_list_shows_the_catalog_and_the_store(catalog_model):
    _, store = catalog_model
    result = CliRunner().invoke(command, ["list"])
    assert result.exit_code == 0, result.output
    for text in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "tiny-cli", "Q4_K_M", "Apache-2.0", "468.6 MiB"):
        assert text in result.output
    assert f"store: {store}" in result.output

    result = CliRunner().invoke(command, ["list", "--json"])
    data = json.loads(result.output)
    assert data["store"] == str(store)
    by_name = {m["name"]: m for m in data["models"]}
    assert by_name["qwen2.5-coder-0.5b"]["size"] == 491400064
    assert by_name["tiny-cli"]["installed"] is False
    assert by_name["tiny-cli"]["path"] == str(store / "tiny-cli.gguf")
    assert by_name["tiny-cli"]["model"] == "local:tiny-cli"


def test_pull_from_verify_and_rm(catalog_model):
    original, store = catalog_model
    runner = CliRunner()
    result = runner.invoke(command, ["pull", "tiny-cli", "--from", str(original), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"pulled tiny-cli from file {original}: 1,572,864 bytes in" in result.output
    assert f"path: {store / 'tiny-cli.gguf'}" in result.output
    assert 'use model="local:tiny-cli"' in result.output
    assert (store / "tiny-cli.gguf").read_bytes() == original.read_bytes()

    result = runner.invoke(command, ["pull", "tiny-cli", "--quiet"])
    assert result.exit_code == 0 and "already installed and verified" in result.output

    listed = json.loads(runner.invoke(command, ["list", "--json"]).output)
    assert {m["name"]: m["installed"] for m in listed["models"]}["tiny-cli"] is True

    result = runner.invoke(command, ["verify", "--quiet"])
    assert result.exit_code == 0 and "tiny-cli: ok" in result.output

    result = runner.invoke(command, ["rm", "tiny-cli"])
    assert result.exit_code == 0 and "removed tiny-cli" in result.output
    assert not (store / "tiny-cli.gguf").exists() and not (store / "tiny-cli.gguf.verified").exists()


def test_verify_fails_on_a_corrupted_model(catalog_model, capsys):
    original, store = catalog_model
    assert main(["models", "pull", "tiny-cli", "--from", str(original), "-q"]) == 0
    data = bytearray((store / "tiny-cli.gguf").read_bytes())
    data[100] ^= 1
    (store / "tiny-cli.gguf").write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["models", "verify", "tiny-cli", "-q"]) == 1
    captured = capsys.readouterr()
    assert "tiny-cli: BAD" in captured.out
    assert captured.err.startswith("error: ") and "failed verification: tiny-cli" in captured.err


def test_pull_of_a_wrong_file_is_one_line_error(catalog_model, tmp_path, capsys):
    _, store = catalog_model
    wrong = tmp_path / "wrong.gguf"
    wrong.write_bytes(b"x" * 1572864)
    assert main(["models", "pull", "tiny-cli", "--from", str(wrong), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"tiny-cli: file {wrong} failed: wrong bytes" in err
    assert "error: " in err and "every source failed" in err
    assert not (store / "tiny-cli.gguf").exists()


def test_not_installed_messages(catalog_model, capsys):
    assert main(["models", "rm", "tiny-cli"]) == 1
    assert "model 'tiny-cli' is not installed" in capsys.readouterr().err
    assert main(["models", "pull", "no-such-model"]) == 2
    assert "no catalog model named 'no-such-model'" in capsys.readouterr().err
    pytest.importorskip("llama_cpp")
    # A catalog model that is not pulled yet, used as a model string: the error says how to get it.
    args = ["generate", "code_review", "-m", "local:tiny-cli", "-i", "code=x = 1", "-i", "language=python"]
    assert main([*args, "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "model 'tiny-cli' is not installed; run: promptkit models pull tiny-cli" in err
