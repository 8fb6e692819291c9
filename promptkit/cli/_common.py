"""What every command shares: one-line errors, JSON output, a console."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from promptkit.errors import PromptkitError

__all__ = ["run_cli", "print_json", "console", "parse_key_values", "model_option", "MODEL_HELP"]


F = TypeVar("F", bound=Callable[..., Any])

# What -m/--model takes on every command; each command's own help says what it does with the model.
MODEL_HELP = (
    "A model: an alias from promptkit.toml ([models.NAME]), local:NAME (a catalog model) or "
    "local:PATH.gguf, litellm:PROVIDER/MODEL (e.g. litellm:openai/gpt-4o-mini), or openai:URL#MODEL."
)


def model_option(dest: str = "model", *, multiple: bool = False) -> Callable[[F], F]:
    """The one ``-m/--model MODEL`` option: the same flags, value and help text on every command."""
    return click.option(
        "--model",
        "-m",
        dest,
        default=None,
        multiple=multiple,
        metavar="MODEL",
        help=MODEL_HELP + (" Repeat it for several models." if multiple else ""),
    )


def console(*, stderr: bool = False) -> Any:
    """A rich console; when output goes to a file or a pipe, tables get 120 columns instead of rich's 80."""
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 120
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def parse_key_values(pairs: tuple[str, ...], option: str = "--input") -> dict[str, str]:
    """``key=value`` pairs from repeated options; a pair without ``=`` is a usage error naming it."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"{option} {pair!r}: expected key=value")
        out[key] = value
    return out


def run_cli(group: click.Group, argv: list[str]) -> int:
    """Run the click group; a PromptkitError becomes one red line on stderr and its exit code."""
    try:
        # With standalone_mode=False click returns ctx.exit()'s code instead of calling sys.exit.
        result = group.main(args=argv, prog_name="promptkit", standalone_mode=False)
    except PromptkitError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:  # `promptkit ... | head`
        sys.stderr.close()
        return 0
    return result if isinstance(result, int) else 0
