"""``promptkit scaffold SPEC -o DIR [--model M | --router promptkit.toml] [--planner P] [--confirm] [--resume RUN_ID] [--json]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from promptkit.cli._common import console, model_option, print_json

if TYPE_CHECKING:
    from promptkit.execution import RunReport, StepState
    from promptkit.planning import Plan, Step

__all__ = ["command"]

_FINAL = ("passed", "failed", "skipped")


def _err_console() -> Any:
    return console(stderr=True)


def _model_options(model: str | None, router_file: Path | None, no_cache: bool) -> dict[str, Any]:
    if router_file is not None:
        from promptkit.cache import default_cache
        from promptkit.config import load_config
        from promptkit.ledger import default_ledger
        from promptkit.routing import Router

        config = load_config(path=router_file)
        return {
            "router": Router.from_config(config),
            "cache": False if no_cache else default_cache(config),
            "ledger": default_ledger(config),
        }
    if model is not None:
        return {"model": model, "cache": not no_cache, "ledger": True}
    # No model: nothing is called, so nothing goes to the cache or the ledger.
    return {"cache": False, "ledger": False}


def _make_plan(spec: Path, planner: str, model: str | None, router_file: Path | None) -> Plan:
    from promptkit.planning import get_planner, load_spec

    loaded = load_spec(spec)
    options: dict[str, Any] = {}
    if planner in ("llm", "hybrid"):
        if model is None and router_file is None:
            raise click.UsageError(f"--planner {planner} needs --model or --router")
        if router_file is not None:
            from promptkit.config import load_config
            from promptkit.routing import Router

            options["router"] = Router.from_config(load_config(path=router_file))
        else:
            options["model"] = model
    return get_planner(planner, **options).plan(loaded)


def _app_tests(out_dir: Path) -> Any:
    """The generated app's whole test suite, run in the sandbox; None when it has no tests."""
    from promptkit.backends import run_sync
    from promptkit.execution import Pytest

    if not any(out_dir.glob("tests/test_*.py")):
        return None
    return run_sync(Pytest(tests=["tests"])(out_dir))


def _check_tools(plan: Plan) -> None:
    """Missing verifier tools stop the run before its first step, naming the extra that brings them."""
    from promptkit.errors import ConfigError
    from promptkit.execution import TOOLS_HINT, missing_tools

    # The app's own test suite runs under pytest at the end, whatever the steps name.
    missing = missing_tools([v for step in plan.steps for v in step.verifiers] + ["pytest"])
    if missing:
        raise ConfigError(f"scaffold verifies with {' and '.join(missing)}, not installed here: {TOOLS_HINT}")


def _confirm(out: Any) -> Any:
    def ask(step: Step, diff: str | None) -> bool:
        from rich.syntax import Syntax

        if diff is None:
            out.print(f"\n[bold]{step.id}[/] ({step.kind}): {step.title}")
            out.print(f"  files: {', '.join(step.files)}")
            if step.verifiers:
                out.print(f"  verifiers: {', '.join(str(v) for v in step.verifiers)}")
            return click.confirm(f"Run step {step.id}?", default=True, err=True)
        out.print(Syntax(diff or "(no changes)", "diff", theme="ansi_dark"))
        return click.confirm(f"Apply these changes for {step.id}?", default=True, err=True)

    return ask


@click.command("scaffold")
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The project folder to build.",
)
@model_option()
@click.option(
    "--router",
    "router_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="A promptkit.toml whose [router] table routes the model steps.",
)
@click.option(
    "--planner",
    type=click.Choice(["playbook", "llm", "hybrid"]),
    default="playbook",
    show_default=True,
    help="How the spec becomes a plan.",
)
@click.option("--confirm", "ask", is_flag=True, help="Ask before each step, and before applying its changes.")
@click.option(
    "--resume",
    "resume",
    default=None,
    metavar="RUN_ID",
    help="Continue an earlier run in DIR ('latest' works).",
)
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=4, show_default=True, help="Steps at once."
)
@click.option(
    "--budget", type=click.IntRange(min=1), default=None, help="Fit each prompt into this many tokens."
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the response cache.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
def command(
    spec: Path | None,
    out_dir: Path,
    model: str | None,
    router_file: Path | None,
    planner: str,
    ask: bool,
    resume: str | None,
    concurrency: int,
    budget: int | None,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Build an app from the spec SPEC into DIR: plan it, generate each step, verify it in a sandbox, repair.

    The model steps call the model -m/--model, or a router's cascade with --router. Without either, the
    deterministic steps still run and are verified; model steps are
    skipped with the way to configure one. Exit status 1 when a step failed.
    """
    from promptkit.backends import run_sync
    from promptkit.execution import aexecute_plan, aresume_run, load_run_plan

    if model is not None and router_file is not None:
        raise click.UsageError("give --model or --router, not both")
    if (spec is None) == (resume is None):
        raise click.UsageError("give SPEC to start a run, or --resume RUN_ID to continue one")
    err = _err_console()

    run_id = ""
    if resume is not None:
        run_id, plan = load_run_plan(out_dir, resume)
        if model is None and router_file is None:
            from promptkit.execution import RunState

            with RunState.for_workspace(out_dir) as state:
                model = state.run(run_id).options.get("model")
    else:
        assert spec is not None
        plan = _make_plan(spec, planner, model, router_file)
    _check_tools(plan)
    options = _model_options(model, router_file, no_cache)
    if not as_json:
        err.print(plan.tree(), soft_wrap=False)

    def finish(report: RunReport) -> None:
        suite = _app_tests(out_dir)
        if as_json:
            tests = None if suite is None else {"ok": suite.ok, "summary": suite.summary}
            print_json({**report.model_dump(mode="json"), "ok": report.ok, "app_tests": tests})
        else:
            console().print(report.table())
            if report.no_model:
                skipped = sum(1 for s in report.steps if s.status == "skipped")
                from rich.markup import escape

                err.print(
                    f"[yellow]{skipped} step(s) skipped, not failed: {escape(report.hint or '')}[/]\n"
                    f"Continue later with: promptkit scaffold --resume {report.run_id} -o {escape(str(out_dir))} "
                    "--model ..."
                )
            err.print(report.summary())
            if suite is not None:
                from rich.markup import escape

                colour = "green" if suite.ok else ("yellow" if report.no_model else "red")
                note = ""
                if not suite.ok and report.no_model:
                    note = " (expected: the skipped feature steps have not been written yet)"
                err.print(f"[{colour}]the app's own tests, sandboxed: {escape(suite.summary)}{note}[/]")
        # Red feature tests are the point of red-first while their model steps are skipped: not a failure.
        if not report.ok or (suite is not None and not suite.ok and not report.no_model):
            raise click.exceptions.Exit(1)

    kw: dict[str, Any] = dict(options, concurrency=concurrency, budget_tokens=budget)
    if ask:
        kw["confirm"] = _confirm(err)
    if as_json or ask:
        report = run_sync(
            aresume_run(run_id, out_dir, **kw) if resume else aexecute_plan(plan, out_dir, **kw)
        )
        finish(report)
        return

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from promptkit.backends import TokenProgress, watch_tokens

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("scaffold", total=len(plan.steps))
        counted: set[str] = set()
        current = {"step": ""}

        def on_step(step: Step, state: StepState) -> None:
            if state.status in _FINAL and step.id not in counted:
                counted.add(step.id)
                progress.advance(task)
            where = (
                f" · attempt {state.attempts} on {state.tier_name}"
                if state.attempts and state.tier_name
                else ""
            )
            current["step"] = f"{step.id}{where}"
            progress.update(task, description=f"{step.id}: {state.status}{where}")

        def on_tokens(p: TokenProgress) -> None:
            # From the model's thread, between tokens: rich's refresh thread draws it.
            progress.update(
                task,
                description=f"{current['step']} · {p.output_tokens} tokens · {p.tokens_per_s:.1f} tokens/s",
            )

        def on_start(run_id: str) -> None:
            err.print(f"run {run_id} → {out_dir}")
            if resume:
                # Steps finished before the resume count as done.
                from promptkit.execution import RunState

                with RunState.for_workspace(out_dir) as state:
                    done = [s for s, v in state.steps(run_id).items() if v.status == "passed"]
                counted.update(done)
                progress.advance(task, len(done))

        kw.update(on_step=on_step, on_start=on_start)
        with watch_tokens(on_tokens):
            if resume:
                report = run_sync(aresume_run(run_id, out_dir, **kw))
            else:
                report = run_sync(aexecute_plan(plan, out_dir, **kw))
    finish(report)
