"""``promptkit ledger show``: tokens, cost, retries and escalations per run, or one run's attempts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from promptkit.cli._common import console, print_json
from promptkit.config import load_config
from promptkit.errors import LedgerError
from promptkit.ledger import (
    LEDGER_FILE,
    Ledger,
    LedgerEntry,
    LedgerTotals,
    RunSummary,
    cascade_savings,
    tier_usage,
)

__all__ = ["command"]


@click.group("ledger")
def command() -> None:
    """Show tokens, cost, retries and escalations per run."""


@command.command("show")
@click.argument("run", required=False)
@click.option("--limit", default=20, show_default=True, help="How many recent runs to list.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding ledger.sqlite (default: the configured state folder, or $PROMPTKIT_HOME).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def show(run: str | None, limit: int, state_dir: Path | None, as_json: bool) -> None:
    """Recent runs with their totals; with RUN (an id, a unique prefix of one, or `latest`), its attempts."""
    folder = state_dir if state_dir is not None else load_config().state_dir
    path = folder / LEDGER_FILE
    if not path.exists():
        # Reading must not create a ledger: report the absence instead.
        if run is not None:
            raise LedgerError(f"no run {run!r}: the ledger is empty", location=str(path))
        if as_json:
            print_json({"runs": []})
        else:
            click.echo(f"no runs yet in {path}")
        return
    with Ledger(path) as ledger:
        if run is None:
            _show_runs(ledger.runs(limit), as_json)
            return
        summary = ledger.run(ledger.resolve_run(run))
        entries = ledger.entries(summary.run_id)
    if as_json:
        print_json(
            {
                "run_id": summary.run_id,
                "name": summary.name,
                "started_at": summary.started_at,
                "totals": summary.totals.model_dump(),
                "tiers": [t.model_dump() for t in tier_usage(entries)],
                "cascade": savings.model_dump() if (savings := cascade_savings(entries)) else None,
                "entries": [e.model_dump() for e in entries],
            }
        )
        return
    _show_run(summary, entries)


def _show_runs(runs: list[RunSummary], as_json: bool) -> None:
    if as_json:
        print_json({"runs": [r.model_dump() for r in runs]})
        return
    if not runs:
        click.echo("no runs yet")
        return
    table = _table("recent runs")
    for name, justify in [
        ("run", "left"),
        ("name", "left"),
        ("calls", "right"),
        ("tries", "right"),
        ("tokens in/out", "right"),
        ("cost", "right"),
        ("retry", "right"),
        ("esc", "right"),
        ("fallbk", "right"),
        ("hits", "right"),
        ("saved", "right"),
        ("fail", "right"),
    ]:
        table.add_column(name, justify=justify, no_wrap=name == "run")  # type: ignore[arg-type]
    for r in runs:
        t = r.totals
        table.add_row(
            r.run_id,
            r.name or "",
            str(t.calls),
            str(t.attempts),
            f"{t.input_tokens:,}/{t.output_tokens:,}",
            _usd(t.cost_usd),
            str(t.retries),
            str(t.escalations),
            str(t.fallbacks),
            str(t.cache_hits),
            _usd(t.saved_usd),
            str(t.failures),
        )
    _print(table)


def _show_run(summary: RunSummary, entries: list[LedgerEntry]) -> None:
    title = f"run {summary.run_id}" + (f" ({summary.name})" if summary.name else "")
    table = _table(title)
    for name, justify in [
        ("time", "left"),  # the run id carries the date
        ("template", "left"),
        ("model", "left"),
        ("tier", "right"),
        ("#", "right"),
        ("tokens in/out", "right"),
        ("cost", "right"),
        ("latency", "right"),
        ("cache", "left"),
        ("reason", "left"),
        ("outcome", "left"),
    ]:
        table.add_column(name, justify=justify, no_wrap=name == "time")  # type: ignore[arg-type]
    for e in entries:
        table.add_row(
            dt.datetime.fromtimestamp(e.ts).strftime("%H:%M:%S"),
            e.template or "",
            e.model,
            "" if e.tier is None else str(e.tier),
            str(e.attempt),
            f"{e.input_tokens:,}/{e.output_tokens:,}",
            _usd(e.cost_usd),
            f"{e.latency_s:.2f}s",
            _cache(e),
            e.reason or "",
            e.outcome,
        )
    _print(table, _totals_line(summary.totals), *_tier_lines(entries))


def _table(title: str) -> Any:
    from rich import box
    from rich.table import Table

    return Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )


def _print(table: Any, *after: str) -> None:
    """Print a table whole: a terminal wraps it to fit, a pipe or file gets every column at full width."""
    from rich.measure import Measurement

    out = console()
    if not out.is_terminal:
        out.width = max(out.width, Measurement.get(out, out.options.update_width(10_000), table).maximum)
    out.print(table)
    for line in after:
        out.print(line)


def _totals_line(t: LedgerTotals) -> str:
    parts = [
        f"calls {t.calls}",
        f"attempts {t.attempts}",
        f"tokens {t.input_tokens:,} in / {t.output_tokens:,} out",
        f"cost {_usd(t.cost_usd)}",
        f"compute {t.compute_s:.2f}s",
        f"retries {t.retries}",
        f"escalations {t.escalations}",
        f"fallbacks {t.fallbacks}",
        f"cache hits {t.cache_hits} (saved {_usd(t.saved_usd)})",
        f"failures {t.failures}",
    ]
    return "totals: " + ", ".join(parts)


def _tier_lines(entries: list[LedgerEntry]) -> list[str]:
    """Per tier, and for a cascade what it saved against its last tier answering every call."""
    tiers = tier_usage(entries)
    if len(tiers) < 2:
        return []
    lines = [
        f"tier {t.tier} ({', '.join(t.models)}): {t.attempts} attempts, {t.answered} accepted, tokens "
        f"{t.input_tokens:,} in / {t.output_tokens:,} out, compute {t.compute_s:.1f}s"
        for t in tiers
    ]
    s = cascade_savings(entries)
    if s is not None:
        lines.append(
            f"cascade: {s.calls} calls, {s.reached_last} reached tier {s.last_tier}; all on tier "
            f"{s.last_tier} would take about {s.all_last_tier_s:.1f}s ({s.last_tier_mean_s:.2f}s a call), "
            f"this run took {s.compute_s:.1f}s ({s.ratio:.2f}x)"
        )
    return lines


def _cache(e: LedgerEntry) -> str:
    if e.cache is None:
        return ""
    return e.cache if e.cache_similarity is None else f"{e.cache} {e.cache_similarity:.2f}"


def _usd(value: float) -> str:
    return f"${value:.4f}"
