"""``promptkit templates list|show|lint``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from promptkit.cli._common import console, print_json

__all__ = ["command", "template_summary"]


def template_summary(template: Any) -> dict[str, Any]:
    """The JSON shape of one template in ``templates list --json``."""
    return {
        "name": template.name,
        "version": template.version,
        "hash": template.hash,
        "tags": {kind: list(values) for kind, values in template.tags.items()},
        "inputs": [
            {"name": f.name, "type": f.type, "required": f.required, "description": f.description}
            for f in template.inputs.values()
        ],
        "description": template.description,
        "path": template.source,
    }


@click.group("templates")
def command() -> None:
    """List, show and lint prompt templates."""


@command.command("list")
@click.option("--tag", default=None, help="Only templates with this tag (value, or kind:value).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(tag: str | None, as_json: bool) -> None:
    """Every template on the search path (shadowed ones left out)."""
    from promptkit.prompts import TemplateRegistry

    templates = TemplateRegistry().list(tag)
    if as_json:
        print_json([template_summary(t) for t in templates])
        return
    from rich.table import Table

    table = Table(show_lines=False)
    table.add_column("name", no_wrap=True)
    table.add_column("version", no_wrap=True)
    for column in ("tags", "inputs", "description"):
        table.add_column(column, overflow="fold")
    for t in templates:
        inputs = ", ".join(f"{n}{'' if f.required else '?'}" for n, f in t.inputs.items())
        table.add_row(t.name, t.version, ", ".join(t.all_tags), inputs, _first_sentence(t.description))
    console().print(table)
    click.echo(f"{len(templates)} templates")


@command.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_command(name: str, as_json: bool) -> None:
    """Everything about one template, including its message source."""
    from promptkit.prompts import TemplateRegistry

    template = TemplateRegistry().get(name)
    data = template_summary(template)
    data["inputs"] = [f.summary() for f in template.inputs.values()]
    data.update(
        {
            "id": template.id,
            "short_hash": template.short_hash,
            "must_match": list(template.must_match),
            "output_schema": template.output_schema,
            "examples": [{"inputs": e.inputs, "output": e.output} for e in template.examples],
            "example_selection": template.example_selection.model_dump(exclude_none=True),
            "examples_trim_priority": template.examples_trim_priority,
            "messages": template.messages,
        }
    )
    if as_json:
        print_json(data)
        return
    out = console()
    out.print(f"[bold]{template.id}[/bold]  hash {template.short_hash}  {template.source or ''}")
    if template.description:
        out.print(template.description, markup=False)
    if template.tags:
        out.print(
            "tags: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in template.tags.items()), markup=False
        )
    out.print("[bold]inputs[/bold]")
    for f in template.inputs.values():
        extra = "" if f.required else f" (optional, default {f.default!r})"
        trim = f" trim_priority={f.trim_priority}" if f.trim_priority is not None else ""
        out.print(f"  {f.name}: {f.type}{extra}{trim}  {f.description}", markup=False)
    if template.output_schema is not None:
        out.print("[bold]output schema[/bold]")
        out.print(template.output_schema_text, markup=False)
    out.print(f"[bold]examples[/bold]: {len(template.examples)} ({template.example_selection.strategy})")
    out.print("[bold]messages[/bold]")
    for message in template.messages:
        if "examples" in message:
            out.print("  -- examples block (once per selected example) --")
            for item in message["examples"]:
                out.print(f"  [{item.get('role')}]", markup=False)
                out.print(_indent(str(item.get("content", ""))), markup=False)
            out.print("  -- end of examples block --")
        else:
            out.print(f"  [{message.get('role')}]", markup=False)
            out.print(_indent(str(message.get("content", ""))), markup=False)


def _first_sentence(text: str) -> str:
    head, sep, _ = text.partition(". ")
    return head + "." if sep else text


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())


@command.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@click.pass_context
def lint_command(ctx: click.Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Check template files (default: everything on the search path); exit 1 on any error."""
    from promptkit.prompts import TemplateRegistry

    registry = TemplateRegistry()
    targets = list(paths) if paths else None
    problems = registry.lint(targets)
    count = registry.lint_count(targets)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        print_json({"templates": count, "problems": [p.to_dict() for p in problems]})
    else:
        for problem in problems:
            click.echo(str(problem))
        if not errors:
            warnings = len(problems)
            suffix = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
            click.echo(f"{count} templates OK{suffix}")
        else:
            click.echo(f"{len(errors)} error{'s' if len(errors) != 1 else ''} in {count} templates", err=True)
    if errors:
        ctx.exit(1)
