"""``promptkit generate NAME --model M | --router promptkit.toml``: render, call, validate, print the answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from promptkit.cli._common import model_option, parse_key_values, print_json
from promptkit.cli.render import coerce_inputs, read_inputs_file

__all__ = ["command"]


def _answer_text(output: Any) -> str:
    """Free text as it is; a typed answer (a model, a list of models, an enum, a number) as JSON."""
    if isinstance(output, str):
        return output
    from pydantic_core import to_jsonable_python

    return json.dumps(to_jsonable_python(output), indent=2, ensure_ascii=False)


@click.command("generate")
@click.argument("name")
@model_option()
@click.option(
    "--router",
    "router_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="A promptkit.toml whose [router] table routes the call.",
)
@click.option(
    "--input", "-i", "pairs", multiple=True, metavar="KEY=VALUE", help="An input; KEY=@FILE reads a file."
)
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A JSON or YAML file of inputs.",
)
@click.option(
    "--max-attempts", type=click.IntRange(min=1), default=None, help="Attempts (per tier with --router)."
)
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Cap on the answer's tokens.")
@click.option("--temperature", type=float, default=None)
@click.option("--kind", default=None, help="A step-kind hint for routing rules.")
@click.option(
    "--budget", type=click.IntRange(min=1), default=None, help="Fit the prompt into this many tokens."
)
@click.option(
    "--examples",
    default=None,
    metavar="STRATEGY[:K]",
    help="Few-shot selection, e.g. all, first_k:1, similar_k:2.",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the response cache.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
def command(
    name: str,
    model: str | None,
    router_file: Path | None,
    pairs: tuple[str, ...],
    inputs_file: Path | None,
    max_attempts: int | None,
    max_tokens: int | None,
    temperature: float | None,
    kind: str | None,
    budget: int | None,
    examples: str | None,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Render template NAME, call the model -m/--model (or a router's cascade), validate, print the answer.

    The answer goes to stdout (pretty JSON for structured templates); a one-line summary (model, tier,
    tokens, cost, attempts, cached) goes to stderr.
    """
    if (model is None) == (router_file is None):
        raise click.UsageError("give exactly one of --model or --router")
    from promptkit.generation import generate
    from promptkit.prompts import load_template

    template = load_template(name)
    values: dict[str, Any] = read_inputs_file(inputs_file) if inputs_file is not None else {}
    values.update(coerce_inputs(template, parse_key_values(pairs)))

    options: dict[str, Any] = {}
    if router_file is not None:
        from promptkit.cache import default_cache
        from promptkit.config import load_config
        from promptkit.ledger import default_ledger
        from promptkit.routing import Router

        config = load_config(path=router_file)
        options["router"] = Router.from_config(config)
        # The router's file also says where its state lives.
        options["cache"] = False if no_cache else default_cache(config)
        options["ledger"] = default_ledger(config)
    else:
        options["model"] = model
        options["cache"] = not no_cache
    result = generate(
        template,
        values,
        max_attempts=max_attempts,
        max_tokens=max_tokens,
        temperature=temperature,
        kind=kind,
        budget_tokens=budget,
        examples=examples,
        **options,
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    click.echo(_answer_text(result.output))
    click.echo(result.summary(), err=True)
