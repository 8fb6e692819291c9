"""Per-tier attempts in the [router] table: `attempts` on a [[router.tiers]] entry, checked field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.config import load_config
from promptkit.errors import ConfigError
from promptkit.routing import Router

MODELS = """
[models.cheap]
model = "litellm:openai/cheap-model"
[models.strong]
model = "litellm:openai/strong-model"
[models.backup]
model = "litellm:openai/backup-model"
"""


def router_from(tmp_path: Path, text: str) -> Router:
    path = tmp_path / "promptkit.toml"
    path.write_text(MODELS + text, encoding="utf-8")
    return Router.from_config(load_config(path=path))


def test_a_tier_table_sets_its_own_attempts_and_the_rest_keep_the_default(tmp_path):
    router = router_from(
        tmp_path,
        """
[router]
max_attempts_per_tier = 3
[[router.tiers]]
model = "cheap"
attempts = 1
[[router.tiers]]
model = "strong"
[router.fallbacks]
strong = ["backup"]
""",
    )
    assert [t.name for t in router.tiers] == ["cheap", "strong"]
    assert [router.attempts_for(t) for t in router.tiers] == [1, 3]
    assert [d.name for d in router.tiers[1].deployments] == ["strong", "backup"]


def test_strings_and_tables_mix_in_one_tiers_list(tmp_path):
    router = router_from(tmp_path, '[router]\ntiers = [{ model = "cheap", attempts = 2 }, "strong"]\n')
    assert [(t.name, t.max_attempts) for t in router.tiers] == [("cheap", 2), ("strong", None)]
    assert router.attempts_for(router.tiers[1]) == 2  # the router-wide default


@pytest.mark.parametrize(
    ("entry", "key", "problem"),
    [
        ('model = "cheap"\nattempts = 0', "[[router.tiers]][0].attempts", ">= 1"),
        ('model = "cheap"\nattempts = "one"', "[[router.tiers]][0].attempts", "must be int"),
        ('model = "cheap"\nattempts = true', "[[router.tiers]][0].attempts", "must be int"),
        ('model = "cheap"\ntries = 1', "[[router.tiers]][0].tries", "unknown key"),
        ("attempts = 1", "[[router.tiers]][0]", "needs model"),
        ('model = "gold"', "[[router.tiers]][0].model", "not a configured alias"),
    ],
)
def test_a_bad_tier_entry_names_its_field(tmp_path, entry, key, problem):
    with pytest.raises(ConfigError) as info:
        router_from(tmp_path, f"[[router.tiers]]\n{entry}\n")
    assert key in str(info.value) and problem in str(info.value)
    assert "promptkit.toml" in str(info.value)
