"""``promptkit eval SUITE``: run an eval suite (datasets x prompt variants x models), scored.

Exit code: 0 when every CI gate in the suite's ``thresholds`` passes, 1 when one fails, 2 for a bad suite,
3 when the run is not a clean one (errors outnumber the successful results, or a variant has no successful
result): its scores say nothing about the prompts, whatever the gates say.
``--resume RUN_ID`` continues an interrupted run without redoing any finished result.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from promptkit.cli._common import console, print_json

if TYPE_CHECKING:
    from promptkit.evals import EvalLog

__all__ = ["command"]

GATE_FAILED = 1
RUN_ERRORED = 3


def _summary_rows(log: EvalLog) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for variant in [v.name for v in log.variants]:
        for model in log.models:
            results = [r for r in log.results if r.variant == variant and r.model == model]
            if not results:
                continue
            verdicts = [r for r in results if r.passed is not None]
            row: dict[str, object] = {
                "variant": variant,
                "model": model,
                "results": len(results),
                "pass_rate": (sum(1 for r in verdicts if r.passed) / len(verdicts)) if verdicts else None,
                "errors": sum(1 for r in results if r.error is not None),
                "cost_usd": sum(r.cost_usd for r in results),
            }
            for name in log.scorers:
                values = [s.value for r in results for s in r.scores if s.scorer == name]
                row[name] = sum(values) / len(values) if values else None
            for agg in log.aggregates:
                if agg.variant == variant and agg.model == model:
                    row[f"{agg.scorer} {agg.metric}"] = agg.value
            rows.append(row)
    return rows


def _print_table(log: EvalLog, rows: list[dict[str, object]]) -> None:
    from rich.table import Table

    table = Table(title=f"{log.suite} · run {log.run_id} · {log.status}")
    columns = list(rows[0]) if rows else ["variant", "model"]
    for name in columns:
        table.add_column(name, justify="left" if name in ("variant", "model") else "right")
    for row in rows:
        cells = []
        for name in columns:
            value = row.get(name)
            if value is None:
                cells.append("-")
            elif name == "cost_usd":
                cells.append(f"${value:.4f}")
            elif isinstance(value, float):
                cells.append(f"{value:.3f}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    console().print(table)


@click.command("eval")
@click.argument("suite", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write the EvalLog JSON here."
)
@click.option(
    "--resume", default=None, metavar="RUN_ID", help="Continue this run (a run id or its .sqlite file)."
)
@click.option(
    "--run-id", default=None, help="Name the new run (default: suite name, time and a random suffix)."
)
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    metavar="MODEL",
    help="Run on this model instead of the suite's (repeatable), e.g. litellm:openai/gpt-4o-mini.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N dataset items.")
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Read the items from this file instead of the suite's dataset path.",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the response cache.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
def command(
    suite: Path,
    out: Path | None,
    resume: str | None,
    run_id: str | None,
    models: tuple[str, ...],
    limit: int | None,
    data: str | None,
    no_cache: bool,
    no_progress: bool,
    as_json: bool,
) -> int:
    """Run the eval SUITE (YAML) and print pass rates and scores per variant and model."""
    from promptkit.evals import describe_gate, failed_gates, load_suite, run_suite
    from promptkit.evals._ab import run_problems

    log = run_suite(
        load_suite(suite).with_overrides(models=models, limit=limit, data=data),
        out=out,
        resume=resume,
        run_id=run_id,
        progress=not no_progress and not as_json,
        cache=False if no_cache else None,
    )
    failed = failed_gates(log)
    problems = run_problems(log)
    rows = _summary_rows(log)
    if as_json:
        print_json(
            {
                "run_id": log.run_id,
                "status": log.status,
                "summary": rows,
                "failed_gates": [describe_gate(c) for c in failed],
                "run_problems": problems,
                "out": str(out) if out else None,
            }
        )
    else:
        _print_table(log, rows)
        if out is not None:
            click.echo(f"log: {out}")
        for check in failed:
            click.echo(f"gate failed: {describe_gate(check)}", err=True)
    if problems:
        click.echo("run not clean: " + "; ".join(problems), err=True)
        return RUN_ERRORED
    return GATE_FAILED if failed else 0
