"""Router.from_config: the [router] table of promptkit.toml, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.config import load_config
from promptkit.errors import ConfigError
from promptkit.routing import RouteFeatures, Router

MODELS = """
[models.cheap]
model = "litellm:openai/cheap-model"
tier = 0
input_cost_per_token = 0.0000001
output_cost_per_token = 0.0000004
concurrency = 7

[models.strong]
model = "litellm:openai/strong-model"
tier = 1
api_base = "http://127.0.0.1:9/v1"

[models.strong-backup]
model = "litellm:openai/backup-model"
tier = 1
"""


def config_from(tmp_path: Path, text: str):
    path = tmp_path / "promptkit.toml"
    path.write_text(MODELS + text, encoding="utf-8")
    return load_config(path=path), path


def test_full_router_table(tmp_path):
    config, _ = config_from(
        tmp_path,
        """
[router]
tiers = ["cheap", "strong"]
max_attempts_per_tier = 3

[router.budget]
max_usd = 2.5
max_tokens = 100000

[[router.rules]]
kind = "plan"
start_tier = "strong"

[[router.rules]]
min_input_tokens = 4000
model = "strong-backup"

[router.fallbacks]
strong = ["strong-backup"]

[router.retry]
max_retries = 4
base_delay_s = 0.25
max_delay_s = 5
""",
    )
    router = Router.from_config(config)
    assert [t.name for t in router.tiers] == ["cheap", "strong"]
    assert [d.name for d in router.tiers[1].deployments] == ["strong", "strong-backup"]
    assert router.max_attempts_per_tier == 3
    assert (router.budget.max_usd, router.budget.max_tokens) == (2.5, 100000)
    assert (router.retry.max_retries, router.retry.base_delay_s, router.retry.max_delay_s) == (4, 0.25, 5)
    assert [r.index for r in router.route(RouteFeatures(kind="plan"))] == [1]
    pinned = router.route(RouteFeatures(input_tokens=5000))
    assert pinned[0].index is None and pinned[0].tier.primary.name == "strong-backup"
    assert router.needs_input_tokens


def test_deployments_take_prices_and_concurrency_from_their_alias(tmp_path):
    config, _ = config_from(tmp_path, '[router]\ntiers = ["cheap"]\n')
    cheap = Router.from_config(config).tiers[0].primary
    assert cheap.prices == (0.0000001, 0.0000004)
    assert cheap.limit == 7
    assert cheap.cache_id == "litellm:openai/cheap-model"


def test_without_tiers_aliases_are_grouped_by_their_tier_number(tmp_path):
    config, _ = config_from(tmp_path, "")
    router = Router.from_config(config)
    assert [t.name for t in router.tiers] == ["cheap", "strong"]
    assert [d.name for d in router.tiers[1].deployments] == ["strong", "strong-backup"]


def test_overrides_win_over_the_file(tmp_path):
    config, _ = config_from(tmp_path, '[router]\ntiers = ["cheap"]\nmax_attempts_per_tier = 3\n')
    assert Router.from_config(config, max_attempts_per_tier=1).max_attempts_per_tier == 1


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ('[router]\ntiers = ["cheap"]\nmax_attempt = 2\n', "[router].max_attempt", "unknown key"),
        ('[router]\ntiers = ["cheap", "gold"]\n', "[router].tiers[1]", "not a configured alias"),
        ("[router]\ntiers = []\n", "[router].tiers", "non-empty list"),
        (
            '[router]\ntiers = ["cheap"]\nmax_attempts_per_tier = 0\n',
            "[router].max_attempts_per_tier",
            ">= 1",
        ),
        (
            '[router]\ntiers = ["cheap"]\n[router.budget]\nmax_dollars = 1\n',
            "[router.budget].max_dollars",
            "unknown",
        ),
        (
            '[router]\ntiers = ["cheap"]\n[router.budget]\nmax_usd = "lots"\n',
            "[router.budget].max_usd",
            "int or float",
        ),
        (
            '[router]\ntiers = ["cheap"]\n[router.retry]\nmax_retries = true\n',
            "[router.retry].max_retries",
            "int",
        ),
        (
            '[router]\ntiers = ["cheap"]\n[router.fallbacks]\ngold = ["strong"]\n',
            "[router.fallbacks]",
            "not tiers",
        ),
        (
            '[router]\ntiers = ["cheap"]\n[router.fallbacks]\ncheap = ["nope"]\n',
            "[router.fallbacks].cheap[0]",
            "nope",
        ),
        (
            '[router]\ntiers = ["cheap"]\n[[router.rules]]\nkind = "x"\nstart = 1\n',
            "[[router.rules]][0].start",
            "unknown",
        ),
        (
            '[router]\ntiers = ["cheap"]\n[[router.rules]]\nkind = "x"\n',
            "[[router.rules]][0]",
            "exactly one action",
        ),
        (
            '[router]\ntiers = ["cheap"]\n[[router.rules]]\nkind = "x"\nstart_tier = "gold"\n',
            "[router]",
            "gold",
        ),
    ],
)
def test_bad_config_names_the_key(tmp_path, table, key, problem):
    config, path = config_from(tmp_path, table)
    with pytest.raises(ConfigError) as info:
        Router.from_config(config)
    message = str(info.value)
    assert key in message and problem in message
    assert str(path) in message


def test_no_models_and_no_tiers(tmp_path):
    path = tmp_path / "promptkit.toml"
    path.write_text("[router]\nmax_attempts_per_tier = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no tiers"):
        Router.from_config(load_config(path=path))
