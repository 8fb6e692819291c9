"""``promptkit models make-tiny``."""

from __future__ import annotations

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
