"""Per-backend in-flight limits: a local model serves one call at a time, a remote API its alias' concurrency."""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

__all__ = ["Limiter"]


class Limiter:
    """One asyncio semaphore per (event loop, backend).

    Semaphores belong to a loop, and the sync ``generate()`` runs each call in a fresh loop, so they are kept
    per loop (weakly, so finished loops are forgotten). The backend object is held with its semaphore, so its
    ``id`` cannot be reused while the entry exists.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[int, tuple[Any, asyncio.Semaphore]]
        ]
        self._by_loop = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def semaphore(self, backend: Any, limit: int) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        table = self._by_loop.get(loop)
        if table is None:
            with self._lock:
                table = self._by_loop.setdefault(loop, {})
        entry = table.get(id(backend))
        if entry is None:
            entry = table.setdefault(id(backend), (backend, asyncio.Semaphore(limit)))
        return entry[1]


# Shared by every router in the process: the limit is about the backend, not about who calls it.
LIMITER = Limiter()
