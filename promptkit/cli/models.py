"""``promptkit models``: model utilities. Add a subcommand with ``@command.command("name")``."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]


@click.group("models")
def command() -> None:
    """Model utilities: make a tiny test GGUF, convert an embedder."""


@command.command("make-tiny")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed; the same seed writes the same file."
)
@click.option(
    "--n-ctx",
    type=click.IntRange(min=1),
    default=2048,
    show_default=True,
    help="Context length recorded in the model; load it with an n_ctx no larger than this.",
)
def make_tiny(path: Path, seed: int, n_ctx: int) -> None:
    """Write a tiny random-weight GGUF model (about 0.5 MB) to PATH.

    The weights are random, so the model produces random text, not answers. It is for trying promptkit's
    local llama.cpp path (loading, chat templates, streaming, grammar-constrained JSON) and for tests.
    """
    from promptkit.backends._tiny_gguf import make_tiny_gguf

    written = make_tiny_gguf(path, seed=seed, n_ctx=n_ctx)
    click.echo(
        f'wrote {written} ({written.stat().st_size:,} bytes): random weights, random text; use model="local:{written}"'
    )
