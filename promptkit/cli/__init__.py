"""The ``promptkit`` command: a thin layer over the public API, one module per command.

Each command module defines ``command`` (a click command or group); ``COMMANDS`` lists the modules, which are
imported only when their command runs, so ``promptkit --help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from promptkit.cli._common import run_cli as _run_cli

__all__ = ["main", "cli", "COMMANDS"]

# command name -> (module, short help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("promptkit.cli.init", "Write a commented promptkit.toml with local models as the first tiers."),
    "templates": ("promptkit.cli.templates", "List, show and lint prompt templates."),
    "render": ("promptkit.cli.render", "Render a template to messages, with their token count."),
    "generate": ("promptkit.cli.generate", "Render, call a model, validate and print the answer."),
    "models": (
        "promptkit.cli.models",
        "Pull, verify, list and benchmark local models; make a tiny test GGUF.",
    ),
    "ledger": ("promptkit.cli.ledger", "Show tokens, cost, retries and escalations per run."),
    "cache": ("promptkit.cli.cache", "Inspect and clear the response cache."),
    "plan": ("promptkit.cli.plan", "Turn an app spec into a typed plan of verified steps."),
    "scaffold": ("promptkit.cli.scaffold", "Build an app from a spec: plan, generate, verify, repair."),
    "eval": ("promptkit.cli.eval", "Run an eval suite: datasets x prompt variants x models, scored."),
    "route": ("promptkit.cli.route", "Evaluate and train routers on recorded outcomes."),
    "distill": (
        "promptkit.cli.distill",
        "Build a few-shot bank from verified answers on a suite's dev items.",
    ),
    "ab": ("promptkit.cli.ab", "Compare prompt variants on the same items, with paired statistics."),
    "view": ("promptkit.cli.view", "Browse eval runs, A/B reports, scaffold runs and the ledger locally."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _) in COMMANDS.items() if importlib.util.find_spec(module))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name][0])
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="promptkit")
def cli() -> None:
    """promptkit: typed prompts, verified generation, cost-aware routing and real A/B statistics."""
    from promptkit.tracing import setup_for_cli

    # OTLP export when [tracing] otlp_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT asks for it (docs/tracing.md).
    setup_for_cli()


def main(argv: list[str] | None = None) -> int:
    return _run_cli(cli, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
