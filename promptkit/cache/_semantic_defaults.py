"""``[cache.semantic]`` in promptkit.toml → settings, and the project's semantic cache beside the exact one.

[cache.semantic]
templates = ["explain"]     # opt-in: generate() uses the semantic cache for these templates only
namespaces = []             # ...or for every template whose cache namespace is listed
threshold = 0.9             # written by `promptkit cache calibrate --write-config`
margin = 0.03
# With a learned scorer (calibrated on GPTCache-style data), these replace the margin:
# confidence = 0.76
# scorer = { version = "pair-v2", weights = [...] }   # one weight per promptkit.cache._score.FEATURES
# Calibrated with --scorer on labelled pairs: the threshold is then this classifier's probability:
# classifier = { version = "match-v1", bias = ..., weights = [...] }   # one per _score.MATCH_FEATURES
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from promptkit.cache._semantic import SEMANTIC_FILE, SemanticCache, SemanticSettings
from promptkit.config import Config, load_config
from promptkit.errors import CacheError, ConfigError

__all__ = ["default_semantic_cache", "semantic_settings"]


def semantic_settings(config: Config | None = None) -> SemanticSettings:
    """The ``[cache.semantic]`` table as settings (defaults where it is missing); a bad value names the key."""
    config = config or load_config()
    where = str(config.source) if config.source else "config"
    table: Any = config.cache.get("semantic", {})
    if not isinstance(table, dict):
        raise ConfigError("[cache.semantic] must be a table", location=where)
    try:
        return SemanticSettings.model_validate(table)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"[cache.semantic] {field}: {err['msg']}", location=where) from None


def default_semantic_cache(config: Config | None = None, *, embedder: Any = None) -> SemanticCache:
    """``<state_dir>/semantic.sqlite`` with the configured settings and (unless given) the default MiniLM
    embedder, whose vectors are cached in ``<state_dir>/embeddings.sqlite``."""
    config = config or load_config()
    settings = semantic_settings(config)
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(
            f"cannot create the state folder: {exc.strerror}", location=str(config.state_dir)
        ) from None
    if embedder is None:
        from promptkit.embeddings import EmbeddingCache, load_default_embedder

        embedder = load_default_embedder(config, cache=EmbeddingCache(config.state_dir / "embeddings.sqlite"))
    namespace = config.cache.get("namespace", "default")
    return SemanticCache(
        config.state_dir / SEMANTIC_FILE,
        embedder=embedder,
        settings=settings,
        namespace=namespace if isinstance(namespace, str) and namespace else "default",
    )
