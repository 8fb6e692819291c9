"""Issue 16, item 6: a wrongly typed promptkit.toml is one clear error naming the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.config import load_config
from promptkit.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[state]\ndir = 42\n", "promptkit.toml:2: state.dir: must be a string, got 42"),
        (
            '[templates]\npaths = ["prompts", 7]\n',
            "promptkit.toml:2: templates.paths[1]: must be a string, got 7",
        ),
        ("models = 5\n", "promptkit.toml:1: models: must be a table, got 5"),
        (
            '# cheap local model\n[models.cheap]\nmodel = "local:m.gguf"\ntimeout_s = "fast"\n',
            "promptkit.toml:4: models.cheap.timeout_s: must be a number, got 'fast'",
        ),
        ("[models.b]\ntier = 1\n", "promptkit.toml:1: models.b.model: is required"),
        ('[models.c]\nmodel = "x"\ntier = "top"\n', "promptkit.toml:3: models.c.tier: must be an integer"),
        ('[cache]\nttl_s = "soon"\n', "promptkit.toml:2: cache.ttl_s: must be a number, got 'soon'"),
        ("templates = []\n", "promptkit.toml:1: templates: must be a table"),
        ('[playbooks]\npaths = "mine"\n', "promptkit.toml:2: playbooks.paths: must be a list"),
        (
            '[tracing]\notlp_endpont = "http://localhost:4318"\n',
            "promptkit.toml:2: tracing.otlp_endpont: unknown key; expected one of otlp_endpoint, enabled,"
            " service_name, record_content",
        ),
        ('[tracing]\nenabled = "no"\n', "promptkit.toml:2: tracing.enabled: must be true or false"),
        (
            "[cache.semantic]\nthreshold = 0.9\ntreshold = 0.95\n",
            "promptkit.toml:3: cache.semantic.treshold: unknown key; expected one of threshold, margin,",
        ),
    ],
)
def test_wrong_types_name_the_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "promptkit.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}/") and expected in str(info.value)


def test_pyproject_lines_are_found_under_tool_promptkit(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.promptkit.state]\ndir = 42\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml:5: state.dir: must be a string"):
        load_config(tmp_path)


def test_a_valid_file_still_loads_with_its_backend_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMPTKIT_HOME", raising=False)
    (tmp_path / "promptkit.toml").write_text(
        '[templates]\npaths = ["p"]\n[state]\ndir = "st"\n'
        '[models.cheap]\nmodel = "local:m.gguf"\ntier = 0\ninput_cost_per_token = 0\n'
        "timeout_s = 30\nn_ctx = 4096\nn_threads = 2\n[router]\nstrategy = 'cascade'\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path)
    assert config.template_paths == [tmp_path / "p"] and config.state_dir == tmp_path / "st"
    alias = config.models["cheap"]
    assert alias.input_cost_per_token == 0.0
    assert alias.options == {"timeout_s": 30, "n_ctx": 4096, "n_threads": 2}
    assert config.router == {"strategy": "cascade"}


def test_the_semantic_table_knows_exactly_the_settings_keys() -> None:
    from promptkit.cache import SemanticSettings
    from promptkit.config import _SemanticTable

    assert list(_SemanticTable.model_fields) == list(SemanticSettings.model_fields)


def test_known_tracing_and_semantic_keys_load(tmp_path: Path) -> None:
    text = (
        '[tracing]\notlp_endpoint = "http://localhost:4318"\nenabled = false\nservice_name = "x"\n'
        "record_content = true\n\n[cache.semantic]\nthreshold = 0.9\ntemplates = ['faq']\n"
    )
    (tmp_path / "promptkit.toml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path)
    assert config.cache["semantic"]["templates"] == ["faq"] and config.raw["tracing"]["enabled"] is False
