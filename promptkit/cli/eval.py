"""``promptkit eval SUITE``: run an eval suite (datasets x prompt variants x models), scored.

Exit code: 0 when every CI gate in the suite's ``thresholds`` passes, 1 when one fails, 2 for a bad suite,
3 when the run is not a clean one (errors outnumber the successful results, or a variant has no successful
result): its scores say nothing about the prompts, whatever the gates say.
``--resume RUN_ID`` continues an interrupted run without redoing any finished result: it finds the run log
where ``--out`` put it and reuses the run's ``--model``/``--limit``/``--data``/``--variant`` and ``--out``.
``--ray [ADDRESS]`` runs the items on a Ray cluster (a local one without ADDRESS); see docs/ray.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from promptkit.cli._common import console, model_option, print_json

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


def _written(log: EvalLog) -> Path | None:
    """Where a resumed run rewrote its log (the --out it was started with)."""
    from promptkit.config import load_config
    from promptkit.errors import EvalError
    from promptkit.evals import RunLog
    from promptkit.evals._runlog import find_run_log

    try:
        with RunLog(find_run_log(log.run_id, state_dir=load_config().state_dir)) as run_log:
            out = run_log.options().get("out")
    except EvalError:
        return None
    return Path(out) if out else None


@click.command("eval")
@click.argument("suite", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write the EvalLog JSON here."
)
@click.option(
    "--resume",
    default=None,
    metavar="RUN_ID",
    help="Continue this run (a run id or its .sqlite file), with the --model/--limit/--data/--variant and "
    "--out it was started with.",
)
@click.option(
    "--run-id", default=None, help="Name the new run (default: suite name, time and a random suffix)."
)
@model_option("models", multiple=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N dataset items.")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    metavar="NAME",
    help="Run only this variant of the suite (repeat it for several).",
)
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Read the items from this file instead of the suite's dataset path.",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Run the items on Ray: a local instance, or the cluster at ADDRESS ('auto', 'ray://host:10001').",
)
@click.option(
    "--ray-replicas",
    type=click.IntRange(min=1),
    default=None,
    help="With --ray: actors per local model, each loading it once (default: one per node).",
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
    variants: tuple[str, ...],
    data: str | None,
    ray_address: str | None,
    ray_replicas: int | None,
    no_cache: bool,
    no_progress: bool,
    as_json: bool,
) -> int:
    """Run the eval SUITE (YAML) and print pass rates and scores per variant and model."""
    from promptkit.evals import describe_gate, failed_gates, load_suite, run_suite
    from promptkit.evals._ab import run_problems

    given = {"models": list(models), "limit": limit, "data": data, "variants": list(variants)}
    ray = None
    if ray_address is not None:
        from promptkit.evals import RayOptions

        ray = RayOptions(address=None if ray_address == "local" else ray_address, replicas=ray_replicas)
    elif ray_replicas is not None:
        raise click.UsageError("--ray-replicas needs --ray")
    log = run_suite(
        load_suite(suite),
        out=out,
        resume=resume,
        run_id=run_id,
        progress=not no_progress and not as_json,
        cache=False if no_cache else None,
        # A resume without them reuses the ones the run was started with.
        overrides=given if any(given.values()) else None,
        ray=ray,
    )
    written = out if out is not None or resume is None else _written(log)
    if ray is not None and ray.stats is not None:
        click.echo(f"ray: {ray.stats.summary()}", err=True)
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
                "out": str(written) if written else None,
            }
        )
    else:
        _print_table(log, rows)
        if written is not None:
            click.echo(f"log: {written}")
        for check in failed:
            click.echo(f"gate failed: {describe_gate(check)}", err=True)
    if problems:
        click.echo("run not clean: " + "; ".join(problems), err=True)
        return RUN_ERRORED
    return GATE_FAILED if failed else 0
