"""The exact cache: a request's canonical hash → the answer it got, in one SQLite file."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import pydantic_core
from pydantic import ValidationError

import promptkit.tracing as tracing
from promptkit._sqlite import BatchWriter, SQLiteFile, current_pid
from promptkit.backends import GenerateRequest, GenerateResponse
from promptkit.cache._entries import CacheEntry, CacheStats
from promptkit.errors import CacheError

__all__ = ["ExactCache"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_entries (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    response   TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    template   TEXT,
    model      TEXT,
    cost_usd   REAL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS cache_entries_expiry ON cache_entries (expires_at, namespace)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS cache_stats (
    namespace     TEXT PRIMARY KEY,
    hits          INTEGER NOT NULL DEFAULT 0,
    misses        INTEGER NOT NULL DEFAULT 0,
    exact_hits    INTEGER NOT NULL DEFAULT 0,
    semantic_hits INTEGER NOT NULL DEFAULT 0,
    saved_usd     REAL NOT NULL DEFAULT 0
)
"""

_GET = (
    "SELECT response, created_at, expires_at, template, model, cost_usd FROM cache_entries"
    " WHERE namespace = ? AND key = ?"
)
_PUT = (
    "INSERT INTO cache_entries (namespace, key, response, created_at, expires_at, template, model, cost_usd)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (namespace, key) DO UPDATE SET response = excluded.response, created_at = excluded.created_at,"
    " expires_at = excluded.expires_at, template = excluded.template, model = excluded.model,"
    " cost_usd = excluded.cost_usd"
)
_FLUSH = (
    "INSERT INTO cache_stats (namespace, hits, misses, exact_hits, semantic_hits, saved_usd)"
    " VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (namespace) DO UPDATE SET hits = hits + excluded.hits, misses = misses + excluded.misses,"
    " exact_hits = exact_hits + excluded.exact_hits, semantic_hits = semantic_hits + excluded.semantic_hits,"
    " saved_usd = saved_usd + excluded.saved_usd"
)

# Request params that change how a call travels, not what comes back; secrets above all.
_TRANSPORT_PARAMS = frozenset(
    {
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "organization",
        "headers",
        "extra_headers",
        "timeout",
        "request_timeout",
        "num_retries",
        "max_retries",
        "retries",
        "metadata",
    }
)
_SECRET_SUFFIXES = ("_key", "_token", "_secret", "password", "authorization")

# Lookups share a read snapshot at most this old: other processes' writes show within it (a miss meanwhile
# costs only a model call); this process's own are served from memory or renew it.
_SNAPSHOT_S = 0.01

# Counters are kept in memory and written every so often: a `get` must not be a write transaction.
_FLUSH_EVERY_OPS = 512
_FLUSH_EVERY_S = 5.0


# GenerateRequest fields that change the answer, in sorted order (messages and params are handled apart).
_KEY_FIELDS = ("max_tokens", "model", "seed", "stop", "temperature", "top_p")
_JSON_SCALARS = (str, int, float, bool, type(None))


def _message_payload(message: Any) -> dict[str, Any]:
    if message.name is None:
        return {"content": message.content, "role": message.role}
    return {"content": message.content, "name": message.name, "role": message.role}


def _canonical(value: Any, where: str) -> Any:
    """``value`` with every dict's keys sorted; anything JSON cannot hold is a CacheError."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise CacheError("must hold JSON values to be cached; got a non-string key", location=where)
        return {k: _canonical(value[k], where) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, where) for v in value]
    if isinstance(value, _JSON_SCALARS):
        return value
    raise CacheError(f"must hold JSON values to be cached; got {type(value).__name__}", location=where)


def _excluded_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRANSPORT_PARAMS or lowered.endswith(_SECRET_SUFFIXES)


class _Counters:
    """Hits and misses not yet written, per namespace: [hits, misses, exact_hits, semantic_hits, saved_usd]."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, list[float]] = {}
        self.ops = 0
        self.last_flush = time.monotonic()
        self.pid = current_pid()

    def _forget_parent(self) -> None:
        if current_pid() != self.pid:
            # A forked child inherited the parent's pending counts; they are the parent's to write.
            self.pid, self.pending, self.ops = current_pid(), {}, 0

    def add(self, namespace: str, *, hit: bool, saved: float) -> bool:
        """Count one lookup; True when it is time to flush."""
        with self.lock:
            self._forget_parent()
            row = self.pending.setdefault(namespace, [0, 0, 0, 0, 0.0])
            if hit:
                row[0] += 1
                row[2] += 1
                row[4] += saved
            else:
                row[1] += 1
            self.ops += 1
            return self.ops >= _FLUSH_EVERY_OPS or time.monotonic() - self.last_flush >= _FLUSH_EVERY_S

    def take(self) -> dict[str, list[float]]:
        with self.lock:
            self._forget_parent()
            pending, self.pending = self.pending, {}
            self.ops = 0
            self.last_flush = time.monotonic()
            return pending

    def give_back(self, pending: dict[str, list[float]]) -> None:
        with self.lock:
            for namespace, row in pending.items():
                mine = self.pending.setdefault(namespace, [0, 0, 0, 0, 0.0])
                for i, value in enumerate(row):
                    mine[i] += value

    def flush(self, db: SQLiteFile) -> None:
        pending = self.take()
        if not pending or db.closed:
            return
        rows = [(ns, int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4]) for ns, r in pending.items()]
        try:
            with db.write("record hit/miss counts") as conn:
                conn.executemany(_FLUSH, rows)
        except BaseException:
            self.give_back(pending)
            raise


class _WriteBehind(BatchWriter):
    """Cache writes committed by a background thread, many per transaction. Until the commit (a few
    milliseconds) this process serves the entry from memory; a crash loses at most that last batch, which
    costs a cache miss later and nothing else: a cache is never the only copy of anything."""

    def write(self, conn: sqlite3.Connection, items: list[Any], token: Any) -> None:
        conn.executemany(_PUT, items)


def _flush_at_exit(counters: _Counters, writer: _WriteBehind | None, db: SQLiteFile) -> None:
    """Last chance for the writes and counts of a cache nobody closed; a failure has no one to report to."""
    try:
        if writer is not None:
            writer.flush()
        counters.flush(db)
        db.close()
    except Exception:  # noqa: BLE001 - interpreter shutdown or garbage collection
        pass


class ExactCache:
    """Answers keyed by the exact request, shared safely by threads, asyncio tasks and processes.

    Only ``GenerateResponse`` objects can be stored: there is no way to cache an exception, so a failed call
    is never served from here. A served hit comes back with ``cached=True``.

    ``set`` hands the entry to a background writer and returns (this process sees it at once; other
    processes within a few milliseconds); ``flush()`` waits until everything is on disk. ``write_behind=False``
    commits inside ``set`` instead.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        namespace: str = "default",
        ttl_s: float | None = None,
        clock: Callable[[], float] = time.time,
        write_behind: bool = True,
    ) -> None:
        self.path = Path(path)
        self.namespace = self._check_namespace(namespace)
        self.ttl_s = self._check_ttl(ttl_s)
        self._clock = clock
        self._db = SQLiteFile(
            self.path, error=CacheError, what="cache", schema=_SCHEMA, version=_SCHEMA_VERSION
        )
        self._counters = _Counters()
        self._writer = _WriteBehind(self._db, name="promptkit-cache-writer") if write_behind else None
        # Opening now turns a corrupt or unopenable file into a CacheError here, not at the first lookup.
        self._db.connection()
        self._finalizer = weakref.finalize(self, _flush_at_exit, self._counters, self._writer, self._db)

    # -- keys -------------------------------------------------------------------------------------------

    @staticmethod
    def key_for(
        request: GenerateRequest,
        *,
        template_hash: str | None = None,
        model: str | None = None,
        include_schema: bool = True,
    ) -> str:
        """sha256 of the canonical request (JSON, keys sorted, compact, UTF-8): messages, model,
        output-changing params, the output schema (unless ``include_schema=False``: a template hash already
        covers it), the template's hash and the resolved model id. Timeouts, retries and secrets are left out."""
        values = request.__dict__
        payload: dict[str, Any] = {}
        for name in _KEY_FIELDS:  # sorted, so that the payload's keys are too
            value = values[name]
            if value is not None:
                payload[name] = value
        payload["messages"] = [_message_payload(m) for m in request.messages]
        if include_schema and request.output_model is not None:
            payload["output_schema"] = _canonical(request.output_schema(), "output_schema")
        params = {k: v for k, v in request.params.items() if not _excluded_param(k)}
        if params:
            payload["params"] = _canonical(params, "GenerateRequest.params")
        payload["resolved_model"] = model
        payload["template_hash"] = template_hash
        blob = pydantic_core.to_json(dict(sorted(payload.items())))
        return hashlib.sha256(blob).hexdigest()

    # -- reads ------------------------------------------------------------------------------------------

    def get(self, key: str, *, namespace: str | None = None) -> CacheEntry | None:
        """The live entry for ``key``, or None. An expired entry is deleted and counts as a miss."""
        if not tracing.enabled():
            return self._get(key, namespace)
        with tracing.span("promptkit.cache.lookup", {"promptkit.cache.kind": "exact"}) as span:
            entry = self._get(key, namespace)
            span.set({"promptkit.cache.hit": entry is not None})
            return entry

    def _get(self, key: str, namespace: str | None) -> CacheEntry | None:
        ns = self._ns(namespace)
        writer = self._writer
        row = writer.find_in_family((ns, key)) if writer is not None else None
        if row is not None:
            row = row[2:]
        else:
            generation = writer.generation if writer is not None else 0
            conn = self._db.snapshot(_SNAPSHOT_S, generation)
            try:  # the hot path: a plain try is cheaper than the errors() context manager
                row = conn.execute(_GET, (ns, key)).fetchone()
            except sqlite3.Error as exc:
                raise self._db.fail(f"cache: cannot read an entry: {exc}") from exc
        entry = self._entry(ns, key, row) if row is not None else None
        if entry is None:
            self._count(ns, hit=False, saved=0.0)
            return None
        self._count(ns, hit=True, saved=entry.cost_usd or 0.0)
        return entry

    def _entry(self, ns: str, key: str, row: tuple[Any, ...]) -> CacheEntry | None:
        text, created_at, expires_at, template, model, cost_usd = row
        if expires_at is not None and expires_at <= self._clock():
            self._delete_where(ns, key, "AND expires_at IS NOT NULL AND expires_at <= ?", (self._clock(),))
            return None
        try:
            response = GenerateResponse.model_validate_json(text)
        except ValidationError:
            # Written by an incompatible version: unusable for us, so it is a miss, and it goes.
            self._delete_where(ns, key, "AND response = ?", (text,))
            return None
        response.cached = True  # a fresh object, ours to mark
        # The columns were validated on the way in; skip a second validation on the hot path.
        return CacheEntry.model_construct(
            key=key,
            namespace=ns,
            response=response,
            created_at=created_at,
            expires_at=expires_at,
            template=template,
            model=model,
            cost_usd=cost_usd,
        )

    async def aget(self, key: str, *, namespace: str | None = None) -> CacheEntry | None:
        return await asyncio.to_thread(self.get, key, namespace=namespace)

    # -- writes -----------------------------------------------------------------------------------------

    def set(
        self,
        key: str,
        response: GenerateResponse,
        *,
        namespace: str | None = None,
        ttl_s: float | None = None,
        template: str | None = None,
        model: str | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """Store a successful answer. ``ttl_s`` overrides the cache's default (``math.inf``: never expires);
        ``cost_usd`` defaults to the response's own cost."""
        row = self._row(key, response, self._ns(namespace), ttl_s, template, model, cost_usd, self._clock())
        if self._writer is not None:
            self._db.check_open()
            self._writer.add((row[0], row[1]), row)
            return
        conn = self._db.connection()
        with self._db.errors("store an entry"):
            conn.execute(_PUT, row)

    def flush(self) -> None:
        """Wait until every entry given to ``set`` is committed; raises the writer's error, if it had one."""
        if self._writer is not None:
            self._writer.flush_and_report("store entries")

    async def aset(
        self,
        key: str,
        response: GenerateResponse,
        *,
        namespace: str | None = None,
        ttl_s: float | None = None,
        template: str | None = None,
        model: str | None = None,
        cost_usd: float | None = None,
    ) -> None:
        await asyncio.to_thread(
            self.set,
            key,
            response,
            namespace=namespace,
            ttl_s=ttl_s,
            template=template,
            model=model,
            cost_usd=cost_usd,
        )

    def set_many(
        self,
        items: Iterable[tuple[str, GenerateResponse]],
        *,
        namespace: str | None = None,
        ttl_s: float | None = None,
        template: str | None = None,
        model: str | None = None,
        batch_size: int = 20_000,
    ) -> int:
        """Store many answers, ``batch_size`` per transaction (for warming a cache). Returns how many."""
        self.flush()  # an older single set() of the same key must not land after these
        ns = self._ns(namespace)
        now = self._clock()
        total = 0
        batch: list[tuple[Any, ...]] = []
        for key, response in items:
            batch.append(self._row(key, response, ns, ttl_s, template, model, None, now))
            if len(batch) >= batch_size:
                total += self._write_batch(batch)
                batch = []
        if batch:
            total += self._write_batch(batch)
        self._db.checkpoint()  # leave no big WAL behind: reads through one are several times slower
        return total

    def _write_batch(self, rows: list[tuple[Any, ...]]) -> int:
        with self._db.write("store entries") as conn:
            conn.executemany(_PUT, rows)
        return len(rows)

    def _row(
        self,
        key: str,
        response: GenerateResponse,
        ns: str,
        ttl_s: float | None,
        template: str | None,
        model: str | None,
        cost_usd: float | None,
        now: float,
    ) -> tuple[Any, ...]:
        if not isinstance(response, GenerateResponse):
            raise CacheError(
                f"only a GenerateResponse can be cached, not {type(response).__name__}",
                location=str(self.path),
            )
        if not isinstance(key, str) or not key:
            raise CacheError("a cache key must be a non-empty string", location=str(self.path))
        ttl = self.ttl_s if ttl_s is None else self._check_ttl(ttl_s)
        expires_at = None if ttl is None or math.isinf(ttl) else now + ttl
        cost = cost_usd if cost_usd is not None else response.cost_usd
        # Stored as not-cached; copying only when it must change keeps the write path cheap.
        stored = response.model_copy(update={"cached": False}) if response.cached else response
        text = stored.model_dump_json()
        return (ns, key, text, now, expires_at, template, model or response.model or None, cost)

    def delete(self, key: str, *, namespace: str | None = None) -> bool:
        """Remove one entry; True if it was there."""
        return self._delete_where(self._ns(namespace), key, "", ()) > 0

    def _delete_where(self, ns: str, key: str, extra: str, args: tuple[Any, ...]) -> int:
        self.flush()
        conn = self._db.connection()
        with self._db.errors("delete an entry"):
            cur = conn.execute(
                f"DELETE FROM cache_entries WHERE namespace = ? AND key = ? {extra}", (ns, key, *args)
            )
        return cur.rowcount

    def clear(self, namespace: str | None = None) -> int:
        """Remove every entry of ``namespace`` (None: of every namespace). Returns how many rows went.
        Hit and miss counts are history and stay."""
        self.flush()
        conn = self._db.connection()
        with self._db.errors("clear"):
            if namespace is None:
                cur = conn.execute("DELETE FROM cache_entries")
            else:
                cur = conn.execute("DELETE FROM cache_entries WHERE namespace = ?", (namespace,))
        return cur.rowcount

    def purge_expired(self) -> int:
        """Delete every expired entry now (get() deletes them lazily). Returns how many."""
        self.flush()
        conn = self._db.connection()
        with self._db.errors("purge expired entries"):
            cur = conn.execute(
                "DELETE FROM cache_entries WHERE expires_at IS NOT NULL AND expires_at <= ?", (self._clock(),)
            )
        return cur.rowcount

    # -- stats ------------------------------------------------------------------------------------------

    def _count(self, ns: str, *, hit: bool, saved: float) -> None:
        if self._counters.add(ns, hit=hit, saved=saved):
            self._counters.flush(self._db)

    def flush_stats(self) -> None:
        """Write the hit/miss counts kept in memory (done every few hundred lookups and on close)."""
        self._counters.flush(self._db)

    def stats(self) -> CacheStats:
        """Live entries per namespace, and hits/misses of every process that used this file."""
        self.flush()
        self.flush_stats()
        conn = self._db.connection()
        now = self._clock()
        with self._db.errors("read statistics"):
            # Two index-only counts: all rows, minus the expired ones still waiting for deletion.
            counts = dict(
                conn.execute("SELECT namespace, COUNT(*) FROM cache_entries GROUP BY namespace").fetchall()
            )
            expired = conn.execute(
                "SELECT namespace, COUNT(*) FROM cache_entries WHERE expires_at <= ? GROUP BY namespace",
                (now,),
            ).fetchall()
            totals = conn.execute(
                "SELECT COALESCE(SUM(hits), 0), COALESCE(SUM(misses), 0), COALESCE(SUM(exact_hits), 0),"
                " COALESCE(SUM(semantic_hits), 0), COALESCE(SUM(saved_usd), 0.0) FROM cache_stats"
            ).fetchone()
        for ns, n in expired:
            counts[ns] = counts.get(ns, 0) - n
        namespaces = {ns: n for ns, n in sorted(counts.items()) if n > 0}
        return CacheStats(
            entries=sum(namespaces.values()),
            namespaces=namespaces,
            hits=totals[0],
            misses=totals[1],
            exact_hits=totals[2],
            semantic_hits=totals[3],
            bytes=self._size_on_disk(),
            saved_usd=totals[4],
        )

    def _size_on_disk(self) -> int:
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.path.getsize(f"{self.path}{suffix}")
            except OSError:
                pass
        return size

    # -- lifecycle --------------------------------------------------------------------------------------

    def close(self) -> None:
        """Write pending counts and close every connection. Safe to call twice."""
        if self._db.closed:
            return
        try:
            try:
                self.flush()
            finally:
                self._counters.flush(self._db)
        finally:
            self._db.close()
            self._finalizer.detach()

    def __enter__(self) -> ExactCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ExactCache({str(self.path)!r}, namespace={self.namespace!r}, ttl_s={self.ttl_s!r})"

    # -- checks -----------------------------------------------------------------------------------------

    def _ns(self, namespace: str | None) -> str:
        return self.namespace if namespace is None else self._check_namespace(namespace)

    def _check_namespace(self, namespace: str) -> str:
        if not isinstance(namespace, str) or not namespace:
            raise CacheError(
                f"namespace must be a non-empty string, got {namespace!r}", location=str(self.path)
            )
        return namespace

    def _check_ttl(self, ttl_s: float | None) -> float | None:
        if ttl_s is not None and not (isinstance(ttl_s, (int, float)) and ttl_s > 0):
            raise CacheError(
                f"ttl_s must be a positive number of seconds, got {ttl_s!r}", location=str(self.path)
            )
        return ttl_s
