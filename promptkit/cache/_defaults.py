"""The project's cache file: ``<state_dir>/cache.sqlite``, with ``[cache]`` settings from the config."""

from __future__ import annotations

import math

from promptkit.cache._exact import ExactCache
from promptkit.config import Config, load_config
from promptkit.errors import CacheError, ConfigError

__all__ = ["CACHE_FILE", "default_cache"]

CACHE_FILE = "cache.sqlite"


def default_cache(config: Config | None = None) -> ExactCache:
    """Open the cache in the configured state folder (created if missing).

    ``[cache] ttl_s`` (seconds) and ``[cache] namespace`` set the defaults for every entry.
    """
    config = config or load_config()
    where = str(config.source) if config.source else "config"
    ttl = config.cache.get("ttl_s")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0):
        raise ConfigError(f"[cache] ttl_s must be a positive number of seconds, got {ttl!r}", location=where)
    namespace = config.cache.get("namespace", "default")
    if not isinstance(namespace, str) or not namespace:
        raise ConfigError(f"[cache] namespace must be a non-empty string, got {namespace!r}", location=where)
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(
            f"cannot create the state folder: {exc.strerror}", location=str(config.state_dir)
        ) from None
    return ExactCache(
        config.state_dir / CACHE_FILE,
        namespace=namespace,
        ttl_s=None if ttl is None or math.isinf(ttl) else float(ttl),
    )
