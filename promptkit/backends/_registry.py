"""Model strings -> backends: schemes, aliases from the config, entry-point plugins and a backend cache.

    local:/models/qwen.gguf            the llama.cpp backend on a GGUF file
    litellm:openai/gpt-4o-mini         any model litellm knows; api_base/api_key_env come from the alias
    openai:http://host:8000/v1#model   any OpenAI-compatible server, without litellm (or openai:model + api_base)
    cheap                              an alias from promptkit.toml ([models.cheap] model = "...")

Third-party backends register a scheme through the ``promptkit.backends`` entry-point group (value
``package.module:Class``), or with :func:`register_backend` at run time; the built-in schemes go through the
same registry (``BACKENDS``, see ``promptkit._plugins``). A class is built with
``cls.from_spec(target, options)`` when it has that classmethod, else ``cls(target, **options)``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptkit._plugins import Registry, did_you_mean
from promptkit.backends._base import Backend
from promptkit.config import Config, ModelAlias, load_config
from promptkit.errors import BackendUnavailable, ConfigError
from promptkit.models import catalog_entry

__all__ = [
    "ENTRY_POINT_GROUP",
    "BACKENDS",
    "BackendFactory",
    "ResolvedModel",
    "parse_model",
    "resolve_model",
    "register_backend",
    "known_schemes",
    "clear_backend_cache",
    "reload_plugins",
]

ENTRY_POINT_GROUP = "promptkit.backends"

BackendFactory = Callable[..., Backend]

# Built-ins are imported when first used, and work without the package's metadata (a plain checkout).
BACKENDS: Registry[BackendFactory] = Registry(
    "backend scheme",
    group=ENTRY_POINT_GROUP,
    builtins={
        "local": "promptkit.backends._llama:LlamaBackend",
        "litellm": "promptkit.backends._litellm:LiteLLMBackend",
        "openai": "promptkit.backends._openai_compat:OpenAICompatBackend",
    },
    error=ConfigError,
    unavailable=BackendUnavailable,
)

_lock = threading.RLock()
_cache: dict[str, Backend] = {}


@dataclass(frozen=True)
class ResolvedModel:
    """A backend ready to call, the alias it came from (synthesised for raw strings) and its model target."""

    backend: Backend
    alias: ModelAlias
    backend_model: str


def register_backend(scheme: str, factory: BackendFactory) -> None:
    """Make ``scheme:target`` resolve through ``factory`` (a class or a callable ``(target, **options)``)."""
    if not scheme or ":" in scheme or not scheme.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"invalid backend scheme {scheme!r}: use letters, digits, '-' and '_'")
    with _lock:
        BACKENDS.register(scheme, factory)
        stale = [key for key in _cache if key.startswith(f"{scheme}\x00")]
        for key in stale:
            del _cache[key]


def reload_plugins() -> list[str]:
    """Read the ``promptkit.backends`` entry points again (after installing a plugin); returns the schemes."""
    return BACKENDS.reload()


def known_schemes() -> list[str]:
    """Every scheme that can be resolved: built-in, installed plugins and registered at run time."""
    return BACKENDS.names()


def _split(spec: str, where: str | None) -> tuple[str, str]:
    scheme, sep, target = spec.partition(":")
    schemes = known_schemes()
    if not sep or scheme not in schemes:
        hint = (
            f"unknown backend scheme {scheme!r}{did_you_mean(scheme, schemes)}"
            if sep
            else f"{spec!r} has no scheme"
        )
        raise ConfigError(
            f"{hint}; write '<scheme>:<model>' with a scheme from: {', '.join(schemes)}", location=where
        )
    if not target:
        raise ConfigError(f"{spec!r} names no model after '{scheme}:'", location=where)
    return scheme, target


def _unknown(spec: str, config: Config) -> ConfigError:
    aliases = ", ".join(sorted(config.models)) or "none configured"
    where = str(config.source) if config.source else None
    scheme, sep, _ = spec.partition(":")
    schemes = known_schemes()
    problem = (
        f"unknown backend scheme {scheme!r}{did_you_mean(scheme, schemes)}"
        if sep
        else "no '<scheme>:' prefix"
    )
    return ConfigError(
        f"unknown model {spec!r}: not an alias{did_you_mean(spec, sorted(config.models))} (aliases: {aliases}) "
        f"and {problem} (schemes: {', '.join(schemes)}); write e.g. 'litellm:openai/gpt-4o-mini'",
        location=where,
    )


def parse_model(spec: str, config: Config | None = None) -> tuple[str, str]:
    """``(scheme, target)`` for a model string or an alias from the configuration."""
    config = config if config is not None else load_config()
    alias = config.alias(spec)
    if alias is not None:
        return _split(alias.model, _alias_location(config, alias.name))
    scheme, sep, _ = spec.partition(":")
    if not sep or scheme not in known_schemes():
        raise _unknown(spec, config)
    return _split(spec, None)


def _alias_location(config: Config, name: str) -> str:
    return f"{config.source}: [models.{name}]" if config.source else f"[models.{name}]"


def _build(scheme: str, target: str, options: dict[str, Any], where: str | None) -> Backend:
    factory = BACKENDS.get(scheme, location=where)
    try:
        from_spec = getattr(factory, "from_spec", None)
        backend = from_spec(target, dict(options)) if callable(from_spec) else factory(target, **options)
    except TypeError as exc:
        raise ConfigError(
            f"backend {scheme!r} rejected the options {sorted(options)}: {exc}", location=where
        ) from exc
    if not isinstance(backend, Backend):
        raise ConfigError(
            f"backend {scheme!r} built a {type(backend).__name__}, which is not a Backend "
            "(needs name, capabilities and async generate())",
            location=where,
        )
    return backend


def _cache_key(scheme: str, target: str, options: dict[str, Any]) -> str:
    return f"{scheme}\x00{target}\x00{json.dumps(options, sort_keys=True, default=str)}"


def resolve_model(spec: str | Backend, config: Config | None = None, *, cache: bool = True) -> ResolvedModel:
    """Build (or reuse) the backend for a model string, an alias or a ready backend.

    The same scheme, target and options give the same backend instance, so a loaded GGUF is loaded once.
    """
    if not isinstance(spec, str):
        if not isinstance(spec, Backend):
            raise ConfigError(f"expected a model string or a Backend, got {type(spec).__name__}")
        model = str(getattr(spec, "model", "") or spec.name)
        return ResolvedModel(backend=spec, alias=ModelAlias(name=spec.name, model=model), backend_model=model)

    config = config if config is not None else load_config()
    alias = config.alias(spec)
    if alias is not None:
        where = _alias_location(config, alias.name)
        scheme, target = _split(alias.model, where)
        options = dict(alias.options)
        if (
            scheme == "local"
            and config.source is not None
            and not Path(target).expanduser().is_absolute()
            and catalog_entry(target) is None  # a catalog name is not a path
        ):
            # Relative model paths are relative to the config file, not to wherever the command runs.
            target = str(config.source.parent / Path(target).expanduser())
    else:
        where = None
        scheme, target = parse_model(spec, config)
        options = {}
        alias = ModelAlias(name=spec, model=spec, tier=0)

    if not cache:
        return ResolvedModel(
            backend=_build(scheme, target, options, where), alias=alias, backend_model=target
        )
    key = _cache_key(scheme, target, options)
    with _lock:
        backend = _cache.get(key)
        if backend is None:
            backend = _build(scheme, target, options, where)
            _cache[key] = backend
    return ResolvedModel(backend=backend, alias=alias, backend_model=target)


def clear_backend_cache() -> list[Backend]:
    """Forget cached backends and return them (the caller may ``await backend.aclose()``)."""
    with _lock:
        backends = list(_cache.values())
        _cache.clear()
    return backends
