"""``promptkit distill SUITE --out BANK``: a few-shot bank of verified answers from a suite's dev items.

A suite variant then uses the bank with ``example_bank: BANK`` (and ``examples: similar_k:3`` to pick the
examples most like each item). ``-m`` answers with that model (the strong tier, usually); ``--reference
COLUMN`` takes the answers from a dataset column instead. Either way only answers that pass the suite's
scorers are kept, and a killed run resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import click

from promptkit.cli._common import console, model_option

__all__ = ["command"]


@click.command("distill")
@click.argument("suite", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bank file to write (JSONL).",
)
@click.option("--variant", default=None, help="The variant whose template answers (default: the first).")
@model_option()
@click.option(
    "--reference",
    default=None,
    metavar="COLUMN",
    help="Use this dataset column as the answers instead of a model (they are verified too).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(
    suite: Path, out: Path, variant: str | None, model: str | None, reference: str | None, quiet: bool
) -> None:
    """Answer the suite's dev items, keep what its scorers pass, and write a few-shot bank."""
    from promptkit.evals import distill

    result = distill(suite, out=out, variant=variant, model=model, reference=reference, progress=not quiet)
    console().print(
        f"{result.bank}: {result.kept} verified example(s) of {result.tried} dev item(s), from {result.source}"
    )
