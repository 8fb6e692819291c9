"""``promptkit plan SPEC [--planner playbook|llm|hybrid] [-m MODEL] [--playbook P] [--json]``."""

from __future__ import annotations

from pathlib import Path

import click

from promptkit.cli._common import console, model_option
from promptkit.errors import ConfigError

__all__ = ["command"]


@click.command("plan")
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--planner",
    type=click.Choice(["playbook", "llm", "hybrid"]),
    default="playbook",
    show_default=True,
    help="playbook: deterministic; llm: a model plans; hybrid: playbook skeleton + model-planned features.",
)
@model_option()
@click.option(
    "--playbook", default=None, help="Playbook name or file (default: the one for the spec's stack)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def command(spec: Path, planner: str, model: str | None, playbook: str | None, as_json: bool) -> None:
    """Turn the app spec SPEC (YAML or JSON) into a typed plan of verified steps.

    The llm and hybrid planners ask the model -m/--model for the plan (or its features).
    """
    from promptkit.planning import get_planner, load_spec

    loaded = load_spec(spec)
    options: dict[str, object] = {}
    if planner in ("llm", "hybrid"):
        if not model:
            raise ConfigError(f"--planner {planner} needs --model", location="promptkit plan")
        options["model"] = model
    elif model:
        raise ConfigError("--model only applies to --planner llm or hybrid", location="promptkit plan")
    if playbook:
        if planner == "llm":
            raise ConfigError("--playbook does not apply to --planner llm", location="promptkit plan")
        options["playbook"] = playbook
    plan = get_planner(planner, **options).plan(loaded)
    if as_json:
        click.echo(plan.to_json(), nl=False)
        return
    # Wrap long lines inside the tree instead of cropping them (the shared console soft-wraps text).
    console().print(plan.tree(), soft_wrap=False)
