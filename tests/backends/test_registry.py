"""Model strings, aliases from promptkit.toml, plugins, the backend cache and the package's public surface."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import promptkit.backends as backends
from promptkit.backends import (
    FunctionBackend,
    GenerateRequest,
    ScriptedBackend,
    _registry,
    parse_model,
    register_backend,
    resolve_model,
)
from promptkit.config import Config, ModelAlias, load_config
from promptkit.errors import BackendUnavailable, ConfigError
from promptkit.types import Message

REPO = Path(__file__).resolve().parents[2]


class PluginBackend(ScriptedBackend):
    """A third-party backend as an entry point would name it."""

    built: list[tuple[str, dict[str, Any]]] = []

    @classmethod
    def from_spec(cls, target: str, options: dict[str, Any]) -> PluginBackend:
        cls.built.append((target, options))
        backend = cls(default=f"plugin:{target}", name=f"plugin:{target}")
        return backend


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_registry, "_cache", {})
    PluginBackend.built.clear()
    with _registry.BACKENDS.isolated():  # schemes registered by a test, and patched entry points, stay in it
        yield


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "promptkit.toml").write_text(
        textwrap.dedent(
            """
            [models.cheap]
            model = "litellm:openai/stub"
            tier = 1
            input_cost_per_token = 0.000001
            api_base = "http://127.0.0.1:9/v1"
            api_key_env = "PROMPTKIT_TEST_KEY"
            timeout_s = 5

            [models.small]
            model = "local:models/small.gguf"
            n_ctx = 1024

            [models.bogus]
            model = "nosuch:thing"
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _req() -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content="hi")])


def test_parse_scheme_strings() -> None:
    empty = Config()
    assert parse_model("local:/models/qwen.gguf", empty) == ("local", "/models/qwen.gguf")
    assert parse_model("litellm:openai/gpt-4o-mini", empty) == ("litellm", "openai/gpt-4o-mini")
    assert parse_model("litellm:anthropic/claude-3-5-haiku:beta", empty) == (
        "litellm",
        "anthropic/claude-3-5-haiku:beta",
    )


def test_parse_alias_from_promptkit_toml(project: Path) -> None:
    assert parse_model("cheap") == ("litellm", "openai/stub")
    assert parse_model("small") == ("local", "models/small.gguf")


def test_unknown_scheme_lists_known_schemes() -> None:
    with pytest.raises(ConfigError) as info:
        parse_model("nosuch:model", Config())
    assert "'nosuch'" in str(info.value)
    assert "local" in str(info.value) and "litellm" in str(info.value)


def test_unknown_alias_lists_aliases(project: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model("expensive")
    message = str(info.value)
    assert "'expensive'" in message and "bogus, cheap, small" in message and "litellm" in message
    assert str(project / "promptkit.toml") in message


def test_bare_litellm_string_needs_a_scheme() -> None:
    with pytest.raises(ConfigError, match="litellm:openai/gpt-4o-mini"):
        parse_model("openai/gpt-4o-mini", Config())


def test_alias_with_unknown_scheme_names_the_alias(project: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_model("bogus")
    assert "[models.bogus]" in str(info.value) and "'nosuch'" in str(info.value)


def test_resolve_alias_builds_litellm_backend_with_options(project: Path) -> None:
    from promptkit.backends import LiteLLMBackend

    resolved = resolve_model("cheap")
    assert isinstance(resolved.backend, LiteLLMBackend)
    assert resolved.backend.api_base == "http://127.0.0.1:9/v1"
    assert resolved.backend.api_key_env == "PROMPTKIT_TEST_KEY"
    assert resolved.backend.timeout_s == 5
    assert resolved.alias.name == "cheap" and resolved.alias.tier == 1
    assert resolved.alias.input_cost_per_token == 0.000001
    assert resolved.backend_model == "openai/stub"
    assert resolve_model("cheap").backend is resolved.backend  # cached


def test_raw_string_gets_a_synthesised_alias() -> None:
    resolved = resolve_model("litellm:openai/gpt-4o-mini", Config())
    assert resolved.alias == ModelAlias(
        name="litellm:openai/gpt-4o-mini", model="litellm:openai/gpt-4o-mini", tier=0
    )
    assert resolved.alias.input_cost_per_token is None and resolved.alias.output_cost_per_token is None
    assert resolved.backend_model == "openai/gpt-4o-mini"


def test_backend_cache_same_spec_same_instance() -> None:
    register_backend("fake", lambda target, **options: ScriptedBackend(default=target, name=f"fake:{target}"))
    first = resolve_model("fake:a", Config()).backend
    assert resolve_model("fake:a", Config()).backend is first
    assert resolve_model("fake:b", Config()).backend is not first
    assert resolve_model("fake:a", Config(), cache=False).backend is not first
    cleared = _registry.clear_backend_cache()
    assert first in cleared
    assert resolve_model("fake:a", Config()).backend is not first


def test_register_backend_passes_alias_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def factory(target: str, **options: Any) -> FunctionBackend:
        seen.append((target, options))
        return FunctionBackend(lambda r: target, name="fn")

    register_backend("fn", factory)
    (tmp_path / "promptkit.toml").write_text(
        '[models.mine]\nmodel = "fn:echo"\ncolour = "blue"\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    resolved = resolve_model("mine")
    assert seen == [("echo", {"colour": "blue"})]
    assert resolved.backend.generate_sync(_req()).text == "echo"  # type: ignore[attr-defined]
    assert "fn" in _registry.known_schemes()


def test_register_backend_rejects_bad_scheme_names() -> None:
    with pytest.raises(ConfigError):
        register_backend("a:b", ScriptedBackend)
    with pytest.raises(ConfigError):
        register_backend("", ScriptedBackend)


def test_factory_that_rejects_options_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_backend("strict", lambda target: ScriptedBackend())
    (tmp_path / "promptkit.toml").write_text('[models.s]\nmodel = "strict:x"\nwhat = 1\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"\[models\.s\]"):
        resolve_model("s")


def test_factory_that_builds_a_non_backend_is_a_config_error() -> None:
    register_backend("junk", lambda target, **options: object())
    with pytest.raises(ConfigError, match="not a Backend"):
        resolve_model("junk:x", Config())


def test_relative_local_path_is_relative_to_the_config_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tuple[str, dict[str, Any]]] = []

    def fake_local(target: str, **options: Any) -> ScriptedBackend:
        built.append((target, options))
        return ScriptedBackend(name="local")

    register_backend("local", fake_local)
    elsewhere = project / "sub" / "dir"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # the config is found upward; the path stays relative to it
    resolved = resolve_model("small")
    assert built == [(str(project / "models" / "small.gguf"), {"n_ctx": 1024})]
    assert resolved.backend_model == str(project / "models" / "small.gguf")


def test_entry_point_plugin_is_discovered_and_built_with_from_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = metadata.EntryPoint(name="plug", value=f"{__name__}:PluginBackend", group="promptkit.backends")

    def fake_entry_points(**kwargs: Any) -> list[metadata.EntryPoint]:
        assert kwargs == {"group": "promptkit.backends"}
        return [plugin]

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    assert "plug" in _registry.reload_plugins()
    resolved = resolve_model("plug:model-x", Config())
    assert isinstance(resolved.backend, PluginBackend)
    assert PluginBackend.built == [("model-x", {})]
    assert resolved.backend.generate_sync(_req()).text == "plugin:model-x"


def test_entry_point_that_cannot_import_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = metadata.EntryPoint(name="broken", value="no_such_module_xyz:Thing", group="promptkit.backends")
    monkeypatch.setattr(metadata, "entry_points", lambda **kw: [broken])
    _registry.reload_plugins()
    with pytest.raises(BackendUnavailable, match="broken") as info:
        resolve_model("broken:x", Config())
    # The error names the reference and where it was declared.
    assert "no_such_module_xyz:Thing" in str(info.value) and "promptkit.backends" in str(info.value)


def test_builtin_schemes_are_lazy_and_listed_once() -> None:
    code = textwrap.dedent(
        """
        import sys
        from promptkit.backends import _registry
        assert {"local", "litellm", "openai"} <= set(_registry.known_schemes())
        assert set(_registry.BACKENDS.builtins) == {"local", "litellm", "openai"}
        print("promptkit.backends._openai_compat" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"  # listing the schemes imported no backend


def test_unknown_scheme_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown backend scheme 'litelm' \(did you mean 'litellm'\?\)"):
        parse_model("litelm:openai/gpt-4o-mini", Config())


def test_builtins_work_without_installed_entry_points(
    monkeypatch: pytest.MonkeyPatch, tiny_gguf: Path
) -> None:
    if importlib.util.find_spec("llama_cpp") is None:  # find_spec: do not pay for importing litellm here
        pytest.skip("llama-cpp-python is not installed")
    from promptkit.backends import LiteLLMBackend, LlamaBackend

    monkeypatch.setattr(metadata, "entry_points", lambda **kw: [])
    _registry.reload_plugins()
    assert {"local", "litellm"} <= set(_registry.known_schemes())
    remote = resolve_model("litellm:openai/gpt-4o-mini", Config()).backend
    assert isinstance(remote, LiteLLMBackend) and remote.model == "openai/gpt-4o-mini"
    local = resolve_model(f"local:{tiny_gguf}", Config())
    assert isinstance(local.backend, LlamaBackend)
    assert resolve_model(f"local:{tiny_gguf}", Config()).backend is local.backend  # a loaded GGUF is reused


def test_backend_instance_is_wrapped() -> None:
    backend = ScriptedBackend(name="mine")
    resolved = resolve_model(backend)
    assert resolved.backend is backend
    assert resolved.alias.name == "mine" and resolved.alias.tier == 0
    with pytest.raises(ConfigError):
        resolve_model(42)  # type: ignore[arg-type]


def test_api_key_is_never_stored_in_config_or_backend(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-PLANTED-registry-987654"
    monkeypatch.setenv("PROMPTKIT_TEST_KEY", secret)
    resolved = resolve_model("cheap")
    assert secret not in repr(load_config()) and secret not in repr(resolved)
    assert secret not in repr(vars(resolved.backend))


def test_public_api() -> None:
    assert sorted(backends.__all__) == sorted(
        [
            "Backend",
            "BaseBackend",
            "Capabilities",
            "GenerateRequest",
            "GenerateResponse",
            "run_sync",
            "prefill_as_instruction",
            "ScriptedBackend",
            "ScriptedReply",
            "FunctionBackend",
            "StubOpenAIServer",
            "Fault",
            "LiteLLMBackend",
            "LlamaBackend",
            "TokenProgress",
            "watch_tokens",
            "auto_threads",
            "bench_local_model",
            "LocalBenchResult",
            "OpenAICompatBackend",
            "make_tiny_gguf",
            "start_llama_server",
            "parse_model",
            "resolve_model",
            "register_backend",
            "ResolvedModel",
            "map_exception",
        ]
    )
    with pytest.raises(AttributeError):
        _ = backends.NoSuchThing  # type: ignore[attr-defined]


def test_import_is_lazy_and_every_public_name_resolves() -> None:
    code = textwrap.dedent(
        """
        import sys
        import promptkit.backends as b
        heavy = [m for m in ("litellm", "llama_cpp", "gguf", "instructor", "openai") if m in sys.modules]
        assert not heavy, heavy
        for name in ("ScriptedBackend", "StubOpenAIServer", "parse_model", "resolve_model", "ResolvedModel"):
            getattr(b, name)
        heavy = [m for m in ("litellm", "llama_cpp", "gguf", "instructor", "openai") if m in sys.modules]
        assert not heavy, heavy
        for name in b.__all__:
            assert getattr(b, name) is not None, name
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
