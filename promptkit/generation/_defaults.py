"""Process-wide memos so a call never reloads config, templates or databases: the hot path stays cheap.

Keys include the current folder and the environment variables that change where things live, so a test
(or a program) that changes them gets fresh objects.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from promptkit.backends import Backend
from promptkit.cache import (
    ExactCache,
    SemanticCache,
    default_cache,
    default_semantic_cache,
    semantic_settings,
)
from promptkit.config import STATE_ENV, TEMPLATE_PATH_ENV, Config, load_config
from promptkit.errors import ConfigError
from promptkit.ledger import Ledger, default_ledger
from promptkit.routing import Router

if TYPE_CHECKING:
    from promptkit.prompts import Template

__all__ = [
    "current_config",
    "resolve_cache",
    "resolve_ledger",
    "resolve_semantic_cache",
    "router_for_model",
    "template_for",
    "reset_defaults",
]

_lock = threading.RLock()
T = TypeVar("T")

_configs: dict[tuple[Any, ...], Config] = {}
_caches: dict[str, ExactCache] = {}
_ledgers: dict[str, Ledger] = {}
_semantic: dict[str, SemanticCache] = {}
_templates: OrderedDict[tuple[Any, ...], tuple[Template, tuple[int, int] | None]] = OrderedDict()
_routers: OrderedDict[tuple[Any, ...], tuple[Any, Router]] = OrderedDict()
_MAX_TEMPLATES = 256
_MAX_ROUTERS = 64


# os.environ decodes every value it returns; its raw table answers the same question for less, per call.
_RAW_ENV = getattr(os.environ, "_data", None) if os.name == "posix" else None
_RAW_KEYS = (os.fsencode(STATE_ENV), os.fsencode(TEMPLATE_PATH_ENV))


def _env_key() -> tuple[Any, ...]:
    """What the defaults depend on: the folder and the two environment variables."""
    if isinstance(_RAW_ENV, dict):
        return (os.getcwd(), _RAW_ENV.get(_RAW_KEYS[0]), _RAW_ENV.get(_RAW_KEYS[1]))
    return (os.getcwd(), os.environ.get(STATE_ENV, ""), os.environ.get(TEMPLATE_PATH_ENV, ""))


def _once(store: dict[Any, T], key: Any, make: Callable[[], T]) -> T:
    """``store[key]``, made by ``make()`` the first time: one per process even when threads race."""
    found = store.get(key)
    if found is None:
        with _lock:
            found = store.get(key)
            if found is None:
                found = store[key] = make()
    return found


def current_config() -> Config:
    """``load_config()`` for the current folder and environment, loaded once."""
    return _once(_configs, _env_key(), load_config)


def resolve_cache(cache: ExactCache | bool | None) -> ExactCache | None:
    """True → the project's default cache (opened once); an ExactCache as is; False/None → no cache."""
    if cache is None or cache is False:
        return None
    if cache is True:
        config = current_config()
        return _once(_caches, str(config.state_dir), lambda: default_cache(config))
    if isinstance(cache, ExactCache):
        return cache
    raise ConfigError(f"cache= must be an ExactCache, True, False or None, got {type(cache).__name__}")


# --- semantic cache (opt-in; see promptkit.cache.SemanticCache) ------------------------------------------
def resolve_semantic_cache(
    semantic_cache: SemanticCache | bool | None, template: str, namespace: str | None = None
) -> SemanticCache | None:
    """A SemanticCache as is; True → the project's one; False → none; None → the project's one only when
    ``[cache.semantic]`` opts this template (or namespace) in. Nothing is loaded unless it is used."""
    if semantic_cache is False:
        return None
    if isinstance(semantic_cache, SemanticCache):
        return semantic_cache
    if semantic_cache is not None and semantic_cache is not True:
        raise ConfigError(
            f"semantic_cache= must be a SemanticCache, True, False or None, got {type(semantic_cache).__name__}"
        )
    config = current_config()
    if semantic_cache is None:
        if "semantic" not in config.cache:
            return None  # the common case: no opt-in at all, decided without validating anything
        namespace = namespace or config.cache.get("namespace", "default")
        if not semantic_settings(config).enabled_for(template, namespace):
            return None
    return _once(_semantic, str(config.state_dir), lambda: default_semantic_cache(config))


def resolve_ledger(ledger: Ledger | bool | None) -> Ledger | None:
    """True → the project's default ledger (opened once); a Ledger as is; False/None → no ledger."""
    if ledger is None or ledger is False:
        return None
    if ledger is True:
        config = current_config()
        return _once(_ledgers, str(config.state_dir), lambda: default_ledger(config))
    if isinstance(ledger, Ledger):
        return ledger
    raise ConfigError(f"ledger= must be a Ledger, True, False or None, got {type(ledger).__name__}")


def _stamp(path: str | None) -> tuple[int, int] | None:
    if not path:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def template_for(template: str | Template) -> Template:
    """A Template as is; a name looked up once per folder/environment, reloaded when its file changes.

    The registry's lookup scans the search path on every call; here a hit costs one ``stat``.
    """
    if not isinstance(template, str):
        return template
    key = (template, *_env_key())
    entry = _templates.get(key)
    if entry is not None and _stamp(entry[0].source) == entry[1]:
        return entry[0]
    from promptkit.prompts import load_template

    found = load_template(template)
    with _lock:
        _templates[key] = (found, _stamp(found.source))
        while len(_templates) > _MAX_TEMPLATES:
            _templates.popitem(last=False)
    return found


def router_for_model(model: str | Backend, max_attempts: int) -> Router:
    """The one-tier router for ``generate(model=...)``, reused across calls with the same model."""
    if isinstance(model, str):
        key: tuple[Any, ...] = ("spec", model, max_attempts, *_env_key())
    else:
        key = ("backend", id(model), max_attempts)
    entry = _routers.get(key)
    # The entry holds the backend itself, so a matching id is the same live object.
    if entry is not None and (isinstance(model, str) or entry[0] is model):
        return entry[1]
    config = current_config() if isinstance(model, str) else None
    router = Router.for_model(model, max_attempts=max_attempts, config=config)
    with _lock:
        _routers[key] = (model, router)
        while len(_routers) > _MAX_ROUTERS:
            _routers.popitem(last=False)
    return router


def reset_defaults() -> None:
    """Forget every memo (closing the default cache and ledger); for tests and long-lived processes."""
    with _lock:
        for cache in _caches.values():
            cache.close()
        for ledger in _ledgers.values():
            ledger.close()
        for semantic in _semantic.values():
            semantic.close()
        _semantic.clear()
        _configs.clear()
        _caches.clear()
        _ledgers.clear()
        _templates.clear()
        _routers.clear()
