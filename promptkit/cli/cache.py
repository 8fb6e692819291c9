"""``promptkit cache``: show the response cache's statistics, clear it, or calibrate the semantic cache."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from promptkit.cache import CACHE_FILE, SEMANTIC_FILE, CacheStats, SemanticStats, default_cache
from promptkit.cli._common import console, print_json
from promptkit.config import Config, load_config

__all__ = ["command"]

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding cache.sqlite (default: the configured state folder, or $PROMPTKIT_HOME).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _config(state_dir: Path | None) -> Config:
    config = load_config()
    if state_dir is not None:
        config.state_dir = state_dir
    return config


@click.group("cache")
def command() -> None:
    """Inspect and clear the response cache."""


@command.command("stats")
@state_dir_option
@json_option
def stats(state_dir: Path | None, as_json: bool) -> None:
    """Entries per namespace, hits, misses, size and the money hits saved."""
    config = _config(state_dir)
    path = config.state_dir / CACHE_FILE
    if path.exists():
        with default_cache(config) as cache:
            result = cache.stats()
    else:  # nothing cached yet; do not create a file just to say so
        result = CacheStats()
    semantic = _semantic_stats(config)
    if as_json:
        print_json(
            {
                "path": str(path),
                **result.model_dump(),
                "hit_rate": result.hit_rate,
                "semantic": None
                if semantic is None
                else {**semantic.model_dump(), "hit_rate": semantic.hit_rate},
            }
        )
        return
    from rich.table import Table

    out = console()
    out.print(f"cache [bold]{path}[/bold]")
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="dim")
    summary.add_column(justify="right")
    summary.add_row("entries", f"{result.entries:,}")
    summary.add_row("hits", f"{result.hits:,} ({result.hit_rate:.1%})")
    summary.add_row("misses", f"{result.misses:,}")
    summary.add_row("exact hits", f"{result.exact_hits:,}")
    summary.add_row("semantic hits", f"{result.semantic_hits + (semantic.hits if semantic else 0):,}")
    summary.add_row("size", _size(result.bytes))
    summary.add_row("saved", f"${result.saved_usd:.4f}")
    out.print(summary)
    if semantic is not None:
        out.print(f"semantic cache [bold]{config.state_dir / SEMANTIC_FILE}[/bold]")
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="dim")
        table.add_column(justify="right")
        table.add_row("entries", f"{semantic.entries:,}")
        table.add_row("lookups", f"{semantic.lookups:,}")
        table.add_row("hits", f"{semantic.hits:,} ({semantic.hit_rate:.1%})")
        table.add_row("missed: below threshold", f"{semantic.below_threshold:,}")
        table.add_row("missed: ambiguous", f"{semantic.ambiguous:,}")
        table.add_row("missed: guard", f"{semantic.guarded:,}")
        table.add_row("hits failing accept", f"{semantic.rejected:,}")
        if semantic.mean_hit_similarity is not None:
            table.add_row("mean hit similarity", f"{semantic.mean_hit_similarity:.3f}")
        table.add_row("saved", f"${semantic.saved_usd:.4f}")
        out.print(table)
    if result.namespaces:
        table = Table(title="namespaces", title_justify="left")
        table.add_column("namespace", no_wrap=True)
        table.add_column("entries", justify="right")
        for namespace, count in result.namespaces.items():
            table.add_row(namespace, f"{count:,}")
        out.print(table)


@command.command("clear")
@click.option("--namespace", default=None, help="Clear only this namespace (default: all of them).")
@state_dir_option
@json_option
def clear(namespace: str | None, state_dir: Path | None, as_json: bool) -> None:
    """Remove cached answers; prints how many were removed."""
    config = _config(state_dir)
    path = config.state_dir / CACHE_FILE
    removed = 0
    if path.exists():
        with default_cache(config) as cache:
            removed = cache.clear(namespace)
    if as_json:
        print_json({"path": str(path), "namespace": namespace, "removed": removed})
        return
    where = f"namespace {namespace!r}" if namespace is not None else "all namespaces"
    click.echo(f"removed {removed} {'entry' if removed == 1 else 'entries'} from {where} of {path}")


class _StatsOnly:
    """Stands in for the embedder when only counts are read: ``stats`` never embeds."""

    model_id = "stats-only"

    def embed(self, texts: list[str]) -> list[list[float]]:
        from promptkit.errors import CacheError

        raise CacheError("this semantic cache was opened to read statistics only", location="cache stats")


def _semantic_stats(config: Config) -> SemanticStats | None:
    path = config.state_dir / SEMANTIC_FILE
    if not path.exists():
        return None
    from promptkit.cache import SemanticCache

    with SemanticCache(path, embedder=_StatsOnly()) as cache:
        return cache.stats()


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


@command.command("calibrate")
@click.argument("pairs_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--target-false-hit",
    type=click.FloatRange(0.0, 1.0),
    default=0.01,
    show_default=True,
    help="Highest acceptable share of false hits.",
)
@click.option(
    "--embedder",
    "embedder_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A GGUF embedding model (default: the converted all-MiniLM-L6-v2).",
)
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also draw the threshold curve into this PNG.",
)
@click.option(
    "--write-config",
    is_flag=True,
    help="Write the threshold (and margin, or the learned scorer and its confidence) into [cache.semantic].",
)
@click.option(
    "--scorer/--no-scorer",
    "learn_scorer",
    default=False,
    show_default=True,
    help="Also fit a learned scorer: on labelled pairs the match classifier, whose probability that two"
    " questions ask the same replaces the blended similarity; on GPTCache-style data the pair scorer that ranks"
    " the candidates (it then writes scorer and confidence instead of margin). Either is calibrated on scores"
    " of data its fit did not see (cross-fitted).",
)
@click.option(
    "--held-out",
    type=click.FloatRange(0.0, 0.9),
    default=0.3,
    show_default=True,
    help="Labelled pairs: the share kept out of calibration (split by a hash of each pair) to report precision,"
    " hit rate and false-hit rate on; 0 reports on the pairs it fitted.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Threads for the embedding model (one is fastest for MiniLM on a busy machine).",
)
@state_dir_option
@json_option
def calibrate(
    pairs_file: Path,
    target_false_hit: float,
    embedder_path: Path | None,
    png: Path | None,
    write_config: bool,
    learn_scorer: bool,
    held_out: float,
    threads: int,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Pick the lowest semantic-cache threshold whose false-hit rate meets the target.

    PAIRS_FILE holds labelled pairs (JSONL/CSV/JSON with a, b, label; optionally gzipped) or GPTCache's
    mock_data.json ({origin, similar}). Labelled pairs are split by a hash of each pair: the threshold is
    calibrated on one part and precision, hit rate (the share of same-question pairs that hit) and false-hit
    rate are reported on the other (--held-out). GPTCache's data is run as its protocol (cache the origins,
    query the paraphrases; a hit on another origin is a false hit), which also calibrates the ambiguity margin,
    or with --scorer fits the learned pair scorer and its minimum confidence. Progress goes to stderr.
    """
    from promptkit.cache import (
        calibrate_pairs,
        calibrate_protocol,
        cross_fitted_outcome,
        load_pairs,
        protocol_candidates,
        protocol_outcome,
        semantic_settings,
        write_semantic_config,
    )
    from promptkit.embeddings import EmbeddingCache, LlamaEmbedder, load_default_embedder

    config = _config(state_dir)
    settings = semantic_settings(config)
    pairs = load_pairs(pairs_file)
    vectors = EmbeddingCache(config.state_dir / "embeddings.sqlite")
    embedder = (
        LlamaEmbedder(embedder_path, cache=vectors, n_threads=threads)
        if embedder_path is not None
        else load_default_embedder(config, cache=vectors, n_threads=threads)
    )
    with _progress() as progress:
        if pairs.kind == "gptcache":
            origins = list(dict.fromkeys(pairs.a))
            row = {text: i for i, text in enumerate(origins)}
            origin_vectors = _embed_with_progress(embedder, origins, progress, "embedding origins")
            query_vectors = _embed_with_progress(embedder, pairs.b, progress, "embedding queries")
            top, cosines = protocol_candidates(origin_vectors, query_vectors, settings.candidates)
            expected = [row[o] for o in pairs.a]
            progress("scoring", 0, 1)
            if learn_scorer:
                # Calibrated on confidences of queries each scorer never saw; the scorer written is fitted on all.
                outcome = cross_fitted_outcome(
                    origins, pairs.b, expected, top, cosines,
                    lexical_weight=settings.lexical_weight, guards=settings.guards,
                )  # fmt: skip
            else:
                outcome = protocol_outcome(
                    origins, pairs.b, expected, top, cosines,
                    lexical_weight=settings.lexical_weight, guards=settings.guards,
                )  # fmt: skip
            progress("scoring", 1, 1)
            result = calibrate_protocol(
                outcome, target_false_hit=target_false_hit, lexical_weight=settings.lexical_weight
            )
        else:
            result = calibrate_pairs(
                pairs, embedder, target_false_hit=target_false_hit, lexical_weight=settings.lexical_weight,
                guards=settings.guards, held_out=held_out, learn=learn_scorer, progress=progress,
            )  # fmt: skip
    written = None
    if write_config and result.threshold is not None:
        target = config.source if config.source is not None else Path.cwd() / "promptkit.toml"
        written = write_semantic_config(target, result.config_values())
    if png is not None:
        _plot(result, png)
    if as_json:
        print_json(
            {**result.model_dump(), "pairs_file": str(pairs_file), "config_written": written, "png": png}
        )
        return
    _print_calibration(result, pairs_file, written, png)


def _embed_with_progress(
    embedder: Any, texts: list[str], progress: Any, stage: str, chunk: int = 1000
) -> Any:
    import numpy as np

    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(embedder.embed_array(texts[start : start + chunk]))
        progress(stage, min(start + chunk, len(texts)), len(texts))
    return np.vstack(parts)


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """``progress(stage, done, total)`` on stderr: a rich bar per stage on a terminal, else a line per stage
    every 10% (or 30 s), so a log shows that a long calibration is moving."""
    import sys
    import time

    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bars = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console(stderr=True), transient=True,
        )  # fmt: skip
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        with bars:
            yield update
        return
    started = time.monotonic()
    shown: dict[str, tuple[int, float]] = {}

    def line(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        last_done, last_time = shown.get(stage, (-1, 0.0))
        step = max(1, total // 10)
        if done == total or last_done < 0 or done - last_done >= step or now - last_time >= 30:
            if (done, total) == (last_done, total):
                return
            shown[stage] = (done, now)
            click.echo(f"{stage}: {done:,}/{total:,} ({now - started:.0f} s)", err=True)

    yield line


def _print_calibration(result: Any, pairs_file: Path, written: Path | None, png: Path | None) -> None:
    from rich.table import Table

    out = console()
    out.print(f"calibrated on [bold]{pairs_file}[/bold] ({result.method}: {result.positives} positives, "
              f"{result.negatives} negatives)")  # fmt: skip
    table = Table(title="threshold curve (calibration part)", title_justify="left")
    for name in ("threshold", "hits", "true hits", "false hits", "precision", "recall", "false-hit rate"):
        table.add_column(name, justify="right")
    chosen = result.threshold
    for point in result.curve:
        if round(point.threshold * 200) % 5 and point.threshold != chosen:
            continue  # every 0.025, and the chosen threshold
        style = "bold green" if point.threshold == chosen else None
        table.add_row(
            f"{point.threshold:.3f}", str(point.hits), str(point.true_hits), str(point.false_hits),
            f"{point.precision:.3f}", f"{point.recall:.3f}", f"{point.false_hit_rate:.4f}", style=style,
        )  # fmt: skip
    out.print(table)
    if chosen is None:
        out.print(f"[red]no threshold meets a false-hit rate of {result.target_false_hit}[/red]")
    else:
        margin = f", margin {result.margin:.3f}" if result.margin is not None else ""
        if result.scorer is not None:
            margin = f", learned scorer, confidence {result.confidence:.2f}"
        if result.classifier is not None:
            margin = ", learned match classifier (the threshold is its probability)"
        out.print(
            f"threshold [bold]{chosen:.3f}[/bold]{margin}: precision {result.precision:.3f}, recall "
            f"{result.recall:.3f}, false-hit rate {result.false_hit_rate:.4f} (target {result.target_false_hit})"
        )
    held = result.held_out
    if held is not None:
        out.print(
            f"held out ({held.pairs} pairs never used to calibrate: {held.positives} same, {held.negatives} "
            f"different): precision [bold]{held.precision:.3f}[/bold], hit rate [bold]{held.hit_rate:.3f}[/bold]"
            f" ({held.true_hits} of the same-question pairs), false-hit rate [bold]{held.false_hit_rate:.4f}[/bold]"
            f" ({held.false_hits} of the different ones)"
        )
    elif result.method.startswith("pairs"):
        out.print("[yellow]no pairs held out: these figures are on the pairs it was calibrated on[/yellow]")
    # Not markup: "[cache.semantic]" (and a path with brackets) would be read as a style tag and vanish.
    if written is not None:
        out.print(f"wrote [cache.semantic] to {written}", markup=False)
    if png is not None:
        out.print(f"curve drawn to {png}", markup=False)


def _plot(result: Any, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p.threshold for p in result.curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(xs, [p.precision for p in result.curve], label="precision")
    ax.plot(xs, [p.recall for p in result.curve], label="recall")
    ax.plot(xs, [p.false_hit_rate for p in result.curve], label="false-hit rate")
    if result.held_out is not None:
        held = result.held_out.curve
        ax.plot([p.threshold for p in held], [p.precision for p in held], "--", label="held-out precision")
        ax.plot([p.threshold for p in held], [p.recall for p in held], "--", label="held-out hit rate")
    ax.axhline(result.target_false_hit, color="grey", linestyle=":", label="target false-hit rate")
    if result.threshold is not None:
        ax.axvline(result.threshold, color="black", linestyle="--", label=f"threshold {result.threshold:.3f}")
    ax.set_xlabel("similarity threshold")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
