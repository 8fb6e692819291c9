"""``promptkit init``: a commented promptkit.toml for a new project, with local models as the first tiers."""

from __future__ import annotations

from pathlib import Path

import click

from promptkit.config import CONFIG_FILE
from promptkit.errors import ConfigError

__all__ = ["command", "DEFAULT_CONFIG"]

DEFAULT_CONFIG = """\
# promptkit configuration. Every key is optional; see the README for the rest.

# Two local models from promptkit's catalog, cheapest first. Install them once:
#   promptkit models pull qwen2.5-coder-0.5b
#   promptkit models pull qwen2.5-coder-1.5b
[models.small]
model = "local:qwen2.5-coder-0.5b"   # Qwen2.5-Coder-0.5B-Instruct Q4_K_M, 0.5 GB, ~22 tokens/s on 2 cores
tier = 0
n_ctx = 8192                          # context window: prompt and answer together; prompts are fitted to it
max_tokens = 1536                     # answer cap when a call sets none
timeout_s = 300                       # wall-clock limit per attempt; a timeout is a failed attempt
sampling = { repeat_penalty = 1.05 }  # Qwen's own setting: keeps a greedy small model out of loops

[models.medium]
model = "local:qwen2.5-coder-1.5b"   # Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB, ~13 tokens/s on 2 cores
tier = 1
n_ctx = 8192
max_tokens = 1536
timeout_s = 480
sampling = { repeat_penalty = 1.05 }

# A remote tier for what both local models fail (the key is read from the environment, never stored):
# [models.remote]
# model = "litellm:openai/gpt-4o-mini"
# tier = 2
# api_key_env = "OPENAI_API_KEY"
# input_cost_per_token = 0.00000015
# output_cost_per_token = 0.0000006

[router]
tiers = ["small", "medium"]          # add "remote" to escalate further
max_attempts_per_tier = 2            # the answer plus one repair with the errors fed back, then escalate

# [router.budget]
# max_usd = 2.0

# [templates]
# paths = ["prompts"]                # your own templates, searched before the built-in library
"""


@click.command("init")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The project folder.",
)
@click.option("--force", is_flag=True, help=f"Overwrite an existing {CONFIG_FILE}.")
def command(folder: Path, force: bool) -> None:
    """Write a commented promptkit.toml: the two catalog models as router tiers 0 and 1, a remote tier to
    uncomment, and the models' context, answer and time limits."""
    target = folder / CONFIG_FILE
    if target.exists() and not force:
        raise ConfigError(f"{CONFIG_FILE} already exists; use --force to overwrite it", location=str(target))
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(DEFAULT_CONFIG, encoding="utf-8")
    click.echo(f"wrote {target}")
    click.echo("next: promptkit models pull qwen2.5-coder-0.5b && promptkit models pull qwen2.5-coder-1.5b")
