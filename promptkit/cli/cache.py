"""``promptkit cache``: show the response cache's statistics, or clear it."""

from __future__ import annotations

from pathlib import Path

import click

from promptkit.cache import CACHE_FILE, CacheStats, default_cache
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
    if as_json:
        print_json({"path": str(path), **result.model_dump(), "hit_rate": result.hit_rate})
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
    summary.add_row("semantic hits", f"{result.semantic_hits:,}")
    summary.add_row("size", _size(result.bytes))
    summary.add_row("saved", f"${result.saved_usd:.4f}")
    out.print(summary)
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


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns
