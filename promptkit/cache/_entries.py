"""What the cache stores and what it reports."""

from __future__ import annotations

from pydantic import BaseModel, Field

from promptkit.backends import GenerateResponse

__all__ = ["CacheEntry", "CacheStats"]


class CacheEntry(BaseModel):
    """One stored answer. ``cost_usd`` is what the original call cost, so a hit knows the money it saved."""

    key: str
    namespace: str
    response: GenerateResponse
    created_at: float
    expires_at: float | None = None
    template: str | None = None
    model: str | None = None
    cost_usd: float | None = None


class CacheStats(BaseModel):
    """Counts over the whole file. ``bytes`` is the size on disk (database plus write-ahead log)."""

    entries: int = 0
    namespaces: dict[str, int] = Field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    exact_hits: int = 0
    semantic_hits: int = 0  # filled by the semantic cache; always 0 for the exact cache
    bytes: int = 0
    saved_usd: float = 0.0

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0
