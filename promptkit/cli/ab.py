"""``promptkit ab SUITE_OR_LOG``: compare prompt variants on the same items, with paired statistics.

Given an EvalLog JSON (``promptkit eval --out log.json``) it analyses it; given a suite YAML it runs the
suite first. ``--judge MODEL`` also asks an LLM judge which variant's output is better on every item, in
both orders, and reports its preferences next to the metric. Exit code: 0, or 1 when a CI gate in the
log's ``thresholds`` fails (2 for bad input), 3 when the run is not a clean one (errors outnumber the
successful results, or a variant has no successful result: no verdict is given for it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from promptkit.cli._common import console, model_option
from promptkit.errors import EvalError

if TYPE_CHECKING:
    from promptkit.evals import EvalLog

__all__ = ["command", "load_log", "read_rubric"]

_SUITE_SUFFIXES = {".yaml", ".yml"}
# Exit code when the analysis ran but a CI gate failed.
GATE_FAILED = 1
# Exit code when the log's errors leave nothing to compare (see promptkit.evals._ab.run_problems).
RUN_ERRORED = 3


def load_log(path: Path) -> EvalLog:
    """Read an EvalLog JSON file; errors name the file (and the field, for a log that does not validate)."""
    from pydantic import ValidationError

    from promptkit.evals import EvalLog

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalError(f"cannot read the eval log: {exc.strerror or exc}", location=str(path)) from None
    try:
        return EvalLog.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        problem = "not valid JSON" if first["type"] == "json_invalid" else first["msg"]
        where = f"{path}: {field}" if field else str(path)
        raise EvalError(
            f"not an eval log ({exc.error_count()} problem(s)): {problem}", location=where
        ) from None


def read_rubric(value: str) -> str:
    """``--rubric``: the text itself, or ``@FILE`` for a file's contents; an empty rubric is an error."""
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EvalError(f"cannot read the rubric: {exc.strerror or exc}", location=str(path)) from None
        where = str(path)
    else:
        text, where = value, "--rubric"
    if not text.strip():
        raise EvalError("the rubric is empty", location=where)
    return text.strip()


def _run_suite(path: Path, progress: bool, model: str | None = None) -> EvalLog:
    try:
        from promptkit.evals import load_suite, run_suite
    except ImportError:
        raise EvalError("cannot run a suite: the eval runner is not installed", location=str(path)) from None
    if model is None:
        return run_suite(path, progress=progress)
    # On that model alone, as `promptkit eval SUITE -m MODEL` runs it.
    return run_suite(load_suite(path).with_overrides(models=[model]), progress=progress)


@click.command("ab")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--baseline", default=None, help="Compare every other variant against this one.")
@click.option("--metric", default=None, help="`pass` (all thresholded scorers) or a scorer name.")
@model_option()
@click.option(
    "--alpha", type=float, default=0.05, show_default=True, help="Significance level (family-wise)."
)
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report."
)
@click.option(
    "--markdown", "md_path", type=click.Path(dir_okay=False, path_type=Path), help="Write Markdown."
)
@click.option("--json", "as_json", is_flag=True, help="Print the versioned ABReport JSON instead of tables.")
@click.option(
    "--judge",
    "judge_model",
    default=None,
    metavar="MODEL",
    help="Also compare the outputs pairwise with this LLM judge (both orders; a model string or alias).",
)
@click.option(
    "--rubric", default=None, metavar="TEXT|@FILE", help="What the judge should prefer (with --judge)."
)
@click.option(
    "--judge-concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Judge calls in flight at once.",
)
def command(
    source: Path,
    baseline: str | None,
    metric: str | None,
    model: str | None,
    alpha: float,
    html_path: Path | None,
    md_path: Path | None,
    as_json: bool,
    judge_model: str | None,
    rubric: str | None,
    judge_concurrency: int,
) -> int:
    """Compare prompt variants in SOURCE: an eval log (JSON) or a suite (YAML, run first).

    With -m/--model only that model's results are compared (a suite is run on that model alone, as
    `promptkit eval SUITE -m MODEL` runs it); without it, every model's, paired per item.
    """
    from promptkit.evals import (
        compare_pairwise,
        compare_variants,
        judge_pairs,
        print_report,
        to_markdown,
        write_html,
    )

    if rubric is not None and judge_model is None:
        raise click.UsageError("--rubric needs --judge MODEL")
    rubric_text = read_rubric(rubric) if rubric is not None else None
    if source.suffix.lower() in _SUITE_SUFFIXES:
        log = _run_suite(source, progress=not as_json, model=model)
    else:
        log = load_log(source)
    # The metric comparison first: a bad --metric/--baseline/--model fails before any judge call is paid for.
    report = compare_variants(log, metric=metric, baseline=baseline, alpha=alpha, model=model)
    if judge_model is not None:
        if not as_json:
            click.echo(f"judging the outputs with {judge_model} (each pair twice, in both orders)…", err=True)
        judgements = judge_pairs(
            log,
            judge_model,
            rubric=rubric_text,
            baseline=baseline,
            model=model,
            concurrency=judge_concurrency,
        )
        pairwise = compare_pairwise(judgements, alpha=alpha, baseline=baseline, model=model)
        report = report.model_copy(update={"pairwise": pairwise})

    if html_path is not None:
        # A log file's folder is one more place to find the suite its prompts are re-rendered from.
        from_log = source.suffix.lower() not in _SUITE_SUFFIXES
        write_html(report, log, html_path, log_path=source if from_log else None)
    if md_path is not None:
        try:
            md_path.parent.mkdir(parents=True, exist_ok=True)
            md_path.write_text(to_markdown(report, log), encoding="utf-8")
        except OSError as exc:
            raise EvalError(
                f"cannot write the Markdown report: {exc.strerror or exc}", location=str(md_path)
            ) from None

    if as_json:
        click.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        print_report(report, log, console())
        for path, what in ((html_path, "HTML"), (md_path, "Markdown")):
            if path is not None:
                click.echo(f"wrote {what} report to {path}")

    from promptkit.evals._ab import run_problems

    problems = run_problems(log, model=model)
    if problems:
        click.echo("run not clean: " + "; ".join(problems), err=True)
    failed = [t for t in report.thresholds if not t.passed]
    if failed:
        for t in failed:
            bound = ">=" if t.direction == "min" else "<="
            value = "no results" if t.value is None else f"{t.value:.4g}"
            click.echo(f"gate failed: {t.name} for {t.variant}: {value}, needs {bound} {t.limit:g}", err=True)
    if problems:
        return RUN_ERRORED
    return GATE_FAILED if failed else 0
