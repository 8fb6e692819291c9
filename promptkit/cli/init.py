"""``promptkit init``: a commented promptkit.toml for a new project, with local models as the first tiers, and a
sample bug (bug.yaml, my_module.py) that the README's first commands run on."""

from __future__ import annotations

from pathlib import Path

import click

from promptkit.config import CONFIG_FILE
from promptkit.errors import ConfigError

__all__ = ["command", "DEFAULT_CONFIG", "SAMPLE_INPUTS", "SAMPLE_MODULE"]

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
# prompt_lookup = 10                  # drafts tokens copied from the prompt: 1.5x faster whole-file edits

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
# The 0.5B gets one attempt: its repairs of its own answer almost never pass (on HumanEval, 48 of 48 greedy
# repairs repeated the failing answer), so a failed check escalates at once. The 1.5B gets the answer plus
# one repair with the errors fed back. Add "remote" to escalate further.
tiers = [{ model = "small", attempts = 1 }, "medium"]
max_attempts_per_tier = 2

# After a few runs, start each call where the ledger says it is worth it (the 0.5B is skipped for calls it
# keeps failing; local tiers' cost is their compute seconds):
#   promptkit route train --out tier-policy.json
# [router.learned]
# policy = "tier-policy.json"
# explore = 0.05                       # still try the cheapest tier on 5% of the calls it would skip

# [router.budget]
# max_usd = 2.0

# [templates]
# paths = ["prompts"]                # your own templates, searched before the built-in library
"""


# The README's first commands use these: `render debug --input code=@my_module.py ...` and
# `generate debug --router promptkit.toml --inputs bug.yaml`.
SAMPLE_MODULE = """\
def average(values):
    \"\"\"The mean of values; 0.0 for an empty list.\"\"\"
    return sum(values) / len(values)


if __name__ == "__main__":
    print(average([]))
"""

SAMPLE_INPUTS = """\
# Inputs for the `debug` template: promptkit generate debug --router promptkit.toml --inputs bug.yaml
# (`promptkit templates show debug` lists every input.)
language: python
code: |
  def average(values):
      \"\"\"The mean of values; 0.0 for an empty list.\"\"\"
      return sum(values) / len(values)
error: "ZeroDivisionError: division by zero"
expected: returns 0.0 for an empty list
actual: raises ZeroDivisionError
reproduction: average([])
"""

# file name -> contents; promptkit.toml first.
FILES = {CONFIG_FILE: DEFAULT_CONFIG, "bug.yaml": SAMPLE_INPUTS, "my_module.py": SAMPLE_MODULE}


@click.command("init")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The project folder.",
)
@click.option("--force", is_flag=True, help=f"Overwrite an existing {CONFIG_FILE} and sample files.")
@click.option("--no-samples", is_flag=True, help="Write only promptkit.toml, not bug.yaml and my_module.py.")
def command(folder: Path, force: bool, no_samples: bool) -> None:
    """Write a commented promptkit.toml: the two catalog models as router tiers 0 and 1, a remote tier to
    uncomment, and the models' context, answer and time limits. Also a sample bug to try them on:
    bug.yaml (inputs for the debug template) and my_module.py (the code it is about)."""
    target = folder / CONFIG_FILE
    if target.exists() and not force:
        raise ConfigError(f"{CONFIG_FILE} already exists; use --force to overwrite it", location=str(target))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in FILES.items():
            path = folder / name
            if name != CONFIG_FILE and (no_samples or (path.exists() and not force)):
                if path.exists() and not no_samples:
                    click.echo(f"kept {path} (--force overwrites it)")
                continue
            path.write_text(text, encoding="utf-8")
            click.echo(f"wrote {path}")
    except OSError as exc:
        raise ConfigError(
            f"cannot write: {exc.strerror or exc}", location=str(exc.filename or folder)
        ) from None
    click.echo("next: promptkit models pull qwen2.5-coder-0.5b && promptkit models pull qwen2.5-coder-1.5b")
    if not no_samples:
        click.echo(f"then: promptkit generate debug --router {target} --inputs {folder / 'bug.yaml'}")
