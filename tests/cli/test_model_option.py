"""``-m/--model`` is one option with one meaning on every command that takes a model."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from promptkit.cli import COMMANDS, cli, main
from promptkit.cli._common import MODEL_HELP

TAKE_A_MODEL = {"generate", "render", "eval", "ab", "plan", "scaffold"}


def _commands() -> dict[str, click.Command]:
    """Every command and subcommand, by its path (``route train``)."""
    ctx = click.Context(cli)
    out: dict[str, click.Command] = {}
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        out[name] = command
        if isinstance(command, click.Group):
            for sub, subcommand in command.commands.items():
                out[f"{name} {sub}"] = subcommand
    return out


def test_every_model_option_is_the_shared_one() -> None:
    found = set()
    for path, command in _commands().items():
        for param in command.params:
            names = set(getattr(param, "opts", [])) | set(getattr(param, "secondary_opts", []))
            if not names & {"-m", "--model"}:
                continue
            found.add(path)
            assert sorted(param.opts) == ["--model", "-m"], f"{path}: {param.opts}"
            assert param.metavar == "MODEL", path
            assert isinstance(param, click.Option) and param.help is not None
            assert param.help.startswith(MODEL_HELP), f"{path}: its own help text for --model"
            assert "local:" in param.help and "litellm:" in param.help and "alias" in param.help
    assert TAKE_A_MODEL <= found, TAKE_A_MODEL - found  # and any new command that takes a model


def test_render_counts_tokens_with_an_alias_like_with_its_model(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "promptkit.toml").write_text(
        f'[models.tiny]\nmodel = "local:{tiny_gguf}"\n', encoding="utf-8"
    )
    args = [
        "render",
        "judge_grade",
        "-i",
        "rubric=Correct.",
        "-i",
        "task=Add 2 and 2.",
        "-i",
        "answer=4",
        "--json",
    ]

    def count(*extra: str) -> tuple[int, bool]:
        assert main([*args, *extra]) == 0
        data = json.loads(capsys.readouterr().out)
        return data["token_count"], data["token_count_exact"]

    by_model = count("-m", f"local:{tiny_gguf}")
    assert by_model[1] is True  # the GGUF's own tokenizer
    assert count("--model", "tiny") == by_model
    assert main([*args, "-m", "no-such-alias"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'no-such-alias'" in err and "tiny" in err  # the same error generate gives
