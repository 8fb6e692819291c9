"""The exact response cache: one SQLite file (WAL), keyed by the canonical hash of a request.

with default_cache() as cache:
    key = ExactCache.key_for(request, template_hash=template.hash, model=resolved)
    if (hit := cache.get(key)) is not None:
        return hit.response                      # cached=True
    cache.set(key, response, template=template.name, model=resolved)
"""

from promptkit.cache._defaults import CACHE_FILE, default_cache
from promptkit.cache._exact import ExactCache
from promptkit.cache._models import CacheEntry, CacheStats

__all__ = ["CACHE_FILE", "CacheEntry", "CacheStats", "ExactCache", "default_cache"]
