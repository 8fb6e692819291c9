"""``promptkit render NAME --input key=value ...``: the messages a template produces, and their tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml

from promptkit.cli._common import model_option, parse_key_values, print_json
from promptkit.errors import InputValidationError, TemplateError

__all__ = ["command", "coerce_inputs", "read_inputs_file"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def read_inputs_file(path: Path) -> dict[str, Any]:
    """Inputs from a JSON or YAML mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read inputs: {exc.strerror or exc}", location=str(path)) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        line = getattr(exc, "lineno", None) or getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f"{path}:{line}" if line is not None else str(path)
        raise TemplateError(f"cannot parse inputs: {exc}".splitlines()[0], location=where) from None
    if not isinstance(data, dict):
        raise TemplateError(f"inputs must be a mapping, not {type(data).__name__}", location=str(path))
    return data


def coerce_inputs(template: Any, raw: dict[str, str]) -> dict[str, Any]:
    """``--input`` strings, converted only for integer, number and boolean fields; ``@path`` reads a file."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value.startswith("@"):
            path = Path(value[1:])
            try:
                value = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InputValidationError(
                    template.name, key, f"cannot read {path}: {exc.strerror or exc}"
                ) from None
        field = template.inputs.get(key)
        kind = field.type if field is not None else "string"
        if kind == "integer":
            try:
                out[key] = int(value)
            except ValueError:
                raise InputValidationError(template.name, key, f"{value!r} is not an integer") from None
        elif kind == "number":
            try:
                out[key] = float(value)
            except ValueError:
                raise InputValidationError(template.name, key, f"{value!r} is not a number") from None
        elif kind == "boolean":
            low = value.strip().lower()
            if low not in _TRUE | _FALSE:
                raise InputValidationError(
                    template.name, key, f"{value!r} is not a boolean (use true or false)"
                )
            out[key] = low in _TRUE
        else:
            out[key] = value
    return out


def _model_string(model: str | None) -> str | None:
    """``scheme:target`` for -m/--model, an alias resolved as generate() resolves it (tokenizers go by the
    model, not the alias' name); an unknown name is the same error as on every other command."""
    if model is None:
        return None
    from promptkit.backends import parse_model

    scheme, target = parse_model(model)
    return f"{scheme}:{target}"


@click.command("render")
@click.argument("name")
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
    "--budget", type=click.IntRange(min=1), default=None, help="Fit the prompt into this many tokens."
)
@model_option()
@click.option(
    "--examples", "examples", default=None, metavar="STRATEGY[:K]", help="e.g. all, first_k:2, similar_k:3."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def command(
    name: str,
    pairs: tuple[str, ...],
    inputs_file: Path | None,
    budget: int | None,
    model: str | None,
    examples: str | None,
    as_json: bool,
) -> None:
    """Render template NAME and print its messages and token count.

    Tokens are counted with the tokenizer of the model -m/--model (default gpt-4o's); an installed local
    model counts with its own.
    """
    from promptkit.prompts import TemplateRegistry, count_tokens_detailed

    template = TemplateRegistry().get(name)
    values: dict[str, Any] = read_inputs_file(inputs_file) if inputs_file is not None else {}
    values.update(coerce_inputs(template, parse_key_values(pairs)))
    model = _model_string(model)
    rendered = template.render(values, examples=examples, budget=budget, model=model)
    count, exact = rendered.token_count, rendered.token_count_exact
    if count is None:
        count, exact = count_tokens_detailed(rendered.messages, model)
    if as_json:
        print_json(
            {
                "template": rendered.template,
                "version": rendered.version,
                "hash": rendered.hash,
                "messages": rendered.to_dicts(),
                "token_count": count,
                "token_count_exact": exact,
                "trimmed": rendered.trimmed,
                "examples_used": rendered.examples_used,
            }
        )
        return
    for message in rendered.messages:
        click.echo(f"──── {message.role} ────")
        click.echo(message.content)
        click.echo()
    approx = "" if exact else "~"
    click.echo(f"{rendered.template}@{rendered.version} ({rendered.hash[:12]}): {approx}{count} tokens")
    for note in rendered.trimmed:
        click.echo(f"trimmed: {note}")
