"""docs/config.md lists every key the configuration's validators and readers accept, each under its table's
heading, so the reference cannot silently go stale when a key is added."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def _sections() -> dict[str, str]:
    """``## `[table]` `` heading -> the text under it."""
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## `(\[\[?[^`]+\]\]?)`\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _fields(model: type) -> set[str]:
    return set(model.model_fields)  # type: ignore[attr-defined]


def _accepted() -> dict[str, set[str]]:
    """Heading -> the keys the code accepts there, read from the validators themselves."""
    from promptkit import config, tracing
    from promptkit.backends import _litellm, _llama, _openai_compat
    from promptkit.cache._semantic import SemanticSettings
    from promptkit.routing import _config as router_config

    local = {
        name
        for name, p in inspect.signature(_llama.LlamaBackend.__init__).parameters.items()
        if p.kind is p.KEYWORD_ONLY
    }
    model_keys = (
        _fields(config._ModelTable)
        | local
        | set(_llama._SAMPLING_KEYS)
        | set(_litellm._OWN_OPTIONS)
        | set(_openai_compat._OWN_OPTIONS)
        | {"extra_params"}
    )
    # [tracing] has no schema class: its keys are the ones setup() reads off the table.
    source = inspect.getsource(tracing.setup)
    tracing_keys = set(re.findall(r'table\.get\(\s*"(\w+)"', source)) | set(
        re.findall(r'"(\w+)" in table', source)
    )
    assert {"otlp_endpoint", "enabled", "record_content"} <= tracing_keys, "the tracing reader changed shape"
    return {
        "[templates]": _fields(config._TemplatesTable),
        "[state]": _fields(config._StateTable),
        "[models.NAME]": model_keys,
        "[router]": set(router_config._TOP),
        "[router.budget]": set(router_config._BUDGET),
        "[[router.rules]]": set(router_config._RULE),
        "[router.retry]": set(router_config._RETRY),
        "[router.learned]": set(router_config._LEARNED),
        "[cache]": _fields(config._CacheTable),
        "[cache.semantic]": _fields(SemanticSettings),
        "[playbooks]": _fields(config._PlaybooksTable),
        "[tracing]": tracing_keys,
    }


def test_every_top_level_table_has_a_section() -> None:
    from promptkit import config

    sections = _sections()
    tables = set(config._ConfigFile.model_fields) | {"tracing"}
    for table in tables:
        heading = "[models.NAME]" if table == "models" else f"[{table}]"
        assert heading in sections, f"docs/config.md has no '## `{heading}`' section"


@pytest.mark.parametrize("heading", sorted(_accepted()))
def test_every_accepted_key_is_documented_in_its_table(heading: str) -> None:
    sections = _sections()
    assert heading in sections, f"docs/config.md has no '## `{heading}`' section"
    text = sections[heading]
    missing = sorted(key for key in _accepted()[heading] if f"`{key}`" not in text)
    assert not missing, f"docs/config.md, {heading}: undocumented key(s) {missing}"


def test_every_documented_key_of_a_checked_table_is_accepted() -> None:
    # The reverse, for the tables that refuse unknown keys: a key in the doc that the code would reject.
    sections = _sections()
    accepted = _accepted()
    for heading in ("[router]", "[router.budget]", "[[router.rules]]", "[router.retry]", "[router.learned]"):
        rows = re.findall(r"^\| `(\w+)` \|", sections[heading], flags=re.MULTILINE)
        assert rows, heading
        extra = sorted(set(rows) - accepted[heading])
        assert not extra, f"docs/config.md, {heading}: documents {extra}, which promptkit refuses"
