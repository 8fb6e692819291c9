"""The semantic cache: serve the stored answer of a *similar* question, but only when it is safe to.

A hit needs all of: the same scope (namespace, template hash, model class, the values of the template's
``must_match`` inputs and the embedder), a similarity at or above the calibrated threshold, a clear lead over
the nearest cached question with a different answer (``margin``: an ambiguous query is a miss), and no guard
seeing opposite meanings (negation, numbers, antonyms, swapped operands). ``generate()`` adds one more rule:
with ``accept=``, the cached answer must pass that check for the new request.

SQLite (``semantic.sqlite`` beside the exact cache) is the source of truth; the vector index of each scope is
kept in memory, saved under ``semantic_index/`` and rebuilt from SQLite when its file is missing or stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError, field_validator

import promptkit.tracing as tracing
from promptkit._sqlite import SQLiteFile
from promptkit.backends import GenerateResponse
from promptkit.cache._index import BruteForceIndex, HNSWIndex, IndexKind, load_index, make_index
from promptkit.cache._match import GUARDS, guard_conflict
from promptkit.cache._score import PairClassifier, PairScorer, choose
from promptkit.errors import CacheError

if TYPE_CHECKING:
    import numpy as np

    from promptkit.types import Embedder

__all__ = [
    "SEMANTIC_FILE",
    "SEMANTIC_INDEX_DIR",
    "SemanticCache",
    "SemanticDecision",
    "SemanticHit",
    "SemanticSettings",
    "SemanticStats",
    "semantic_scope",
]

SEMANTIC_FILE = "semantic.sqlite"
SEMANTIC_INDEX_DIR = "semantic_index"

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS semantic_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    question   TEXT NOT NULL,
    vector     BLOB NOT NULL,
    response   TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    template   TEXT,
    model      TEXT,
    cost_usd   REAL
);
CREATE INDEX IF NOT EXISTS semantic_entries_scope ON semantic_entries (scope, id);
CREATE TABLE IF NOT EXISTS semantic_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO semantic_meta (key, value) VALUES ('generation', 0);
INSERT OR IGNORE INTO semantic_meta (key, value) VALUES ('file_id', abs(random()));
CREATE TABLE IF NOT EXISTS semantic_stats (
    namespace      TEXT PRIMARY KEY,
    lookups        INTEGER NOT NULL DEFAULT 0,
    hits           INTEGER NOT NULL DEFAULT 0,
    below          INTEGER NOT NULL DEFAULT 0,
    ambiguous      INTEGER NOT NULL DEFAULT 0,
    guarded        INTEGER NOT NULL DEFAULT 0,
    rejected       INTEGER NOT NULL DEFAULT 0,
    similarity_sum REAL NOT NULL DEFAULT 0,
    saved_usd      REAL NOT NULL DEFAULT 0
)
"""
_STAT_COLUMNS = (
    "lookups",
    "hits",
    "below",
    "ambiguous",
    "guarded",
    "rejected",
    "similarity_sum",
    "saved_usd",
)
_FLUSH = (
    f"INSERT INTO semantic_stats (namespace, {', '.join(_STAT_COLUMNS)}) VALUES (?, {', '.join('?' * 8)})"
    " ON CONFLICT (namespace) DO UPDATE SET " + ", ".join(f"{c} = {c} + excluded.{c}" for c in _STAT_COLUMNS)
)
_FLUSH_EVERY = 256


class SemanticSettings(BaseModel):
    """How strict the semantic cache is; ``[cache.semantic]`` in promptkit.toml sets the same names.

    ``threshold`` applies to the blended similarity ``(cosine + w * trigram) / (1 + w)`` with
    ``w = lexical_weight``; calibrate it with ``promptkit cache calibrate``. ``margin``: the best candidate must
    beat the nearest cached question with a different answer by this much. ``templates``/``namespaces`` name
    where generate() uses it when not given one explicitly (opt-in: empty means nowhere).

    ``scorer``: a learned pair scorer written by ``promptkit cache calibrate --write-config``; it ranks the
    candidates, and ``confidence`` (its minimum share of the best answer) replaces ``margin``. Without one
    (the default) the blended similarity ranks them and ``margin`` applies.

    ``classifier``: a learned match scorer fitted on labelled pairs (``promptkit cache calibrate --scorer`` on
    ``a, b, label`` data); its probability that two questions ask the same replaces the blended similarity,
    so ``threshold`` is then a minimum probability (and ``margin`` a lead in probability).
    """

    threshold: float = Field(default=0.85, ge=-1.0, le=1.0)
    margin: float = Field(default=0.03, ge=0.0, le=1.0)
    lexical_weight: float = Field(default=0.25, ge=0.0)
    scorer: PairScorer | None = None
    classifier: PairClassifier | None = None
    confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    guards: tuple[str, ...] = GUARDS
    candidates: int = Field(default=10, ge=1, le=1000)
    index: IndexKind = "auto"
    ttl_s: float | None = Field(default=None, gt=0)
    templates: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()

    @field_validator("guards")
    @classmethod
    def _known_guards(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(GUARDS))
        if unknown:
            raise ValueError(f"unknown guard(s) {unknown}; known: {list(GUARDS)}")
        return value

    @property
    def min_lead(self) -> float:
        """What a hit's lead must reach: the scorer's confidence, or the margin without a scorer."""
        return self.confidence if self.scorer is not None else self.margin

    def enabled_for(self, template: str | None, namespace: str | None) -> bool:
        return (template is not None and template in self.templates) or (
            namespace is not None and namespace in self.namespaces
        )


@dataclass(frozen=True)
class SemanticHit:
    """A cached answer served for a similar question."""

    id: int
    response: GenerateResponse
    similarity: float
    cosine: float
    question: str
    cost_usd: float | None
    template: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class SemanticDecision:
    """Why a lookup hit or missed: ``reason`` is hit, empty, below_threshold, ambiguous or guard:<name>.
    ``confidence`` is the learned scorer's share of the best answer (None without a scorer)."""

    reason: str
    hit: SemanticHit | None = None
    similarity: float | None = None
    runner_up: float | None = None
    candidates: int = 0
    confidence: float | None = None


class SemanticStats(BaseModel):
    """Counts over the whole file (every process), plus the live entries per namespace."""

    entries: int = 0
    namespaces: dict[str, int] = Field(default_factory=dict)
    lookups: int = 0
    hits: int = 0
    below_threshold: int = 0
    ambiguous: int = 0
    guarded: int = 0
    rejected: int = 0
    saved_usd: float = 0.0
    mean_hit_similarity: float | None = None
    bytes: int = 0

    @property
    def misses(self) -> int:
        return self.lookups - self.hits

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0


def semantic_scope(
    *,
    namespace: str,
    template_hash: str | None,
    model_class: str | None,
    must_match: Mapping[str, Any] | None,
    embedder_id: str,
) -> str:
    """The key of everything that must be equal before similarity is even considered."""

    def refuse(value: object) -> object:
        raise CacheError(
            f"must_match values must be JSON values to be compared; got {type(value).__name__}",
            location="must_match",
        )

    payload = [namespace, template_hash, model_class, dict(must_match or {}), embedder_id]
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=refuse)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class _Scope:
    index: BruteForceIndex | HNSWIndex
    synced_id: int = 0  # highest entry id of this scope already in the index
    generation: int = 0
    dirty: bool = False


@dataclass
class _Pending:
    rows: dict[str, list[float]] = field(default_factory=dict)
    ops: int = 0


def _embedder_id(embedder: Any) -> str:
    model_id = getattr(embedder, "model_id", None)
    return str(model_id) if model_id else f"{type(embedder).__module__}.{type(embedder).__qualname__}"


class SemanticCache:
    """Answers of similar questions, opt-in per template or namespace (see ``SemanticSettings``).

    ``path`` is the SQLite file (``<state_dir>/semantic.sqlite`` by default); the index files go in
    ``semantic_index/`` beside it. Threads share one instance safely; processes share the files.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        embedder: Embedder,
        settings: SemanticSettings | None = None,
        namespace: str = "default",
        index_dir: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.time,
        **overrides: Any,
    ) -> None:
        self.path = Path(path)
        try:
            base = settings or SemanticSettings()
            self.settings = base.model_copy(update=overrides) if overrides else base
            if overrides:
                self.settings = SemanticSettings.model_validate(self.settings.model_dump())
        except ValidationError as exc:
            err = exc.errors()[0]
            raise CacheError(
                f"{'.'.join(map(str, err['loc']))}: {err['msg']}", location="SemanticCache"
            ) from None
        if not isinstance(namespace, str) or not namespace:
            raise CacheError(
                f"namespace must be a non-empty string, got {namespace!r}", location=str(self.path)
            )
        self.namespace = namespace
        self.embedder = embedder
        self.embedder_id = _embedder_id(embedder)
        self.index_dir = Path(index_dir) if index_dir is not None else self.path.parent / SEMANTIC_INDEX_DIR
        self._clock = clock
        self._db = SQLiteFile(
            self.path, error=CacheError, what="semantic cache", schema=_SCHEMA, version=_SCHEMA_VERSION
        )
        self._db.connection()
        self._lock = threading.RLock()
        self._scopes: dict[str, _Scope] = {}
        self._pending = _Pending()
        self._file_id_value: int | None = None

    # -- public API -------------------------------------------------------------------------------------

    def scope(
        self,
        *,
        template_hash: str | None,
        model_class: str | None,
        must_match: Mapping[str, Any] | None = None,
        namespace: str | None = None,
    ) -> str:
        return semantic_scope(
            namespace=namespace or self.namespace,
            template_hash=template_hash,
            model_class=model_class,
            must_match=must_match,
            embedder_id=self.embedder_id,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors from the embedder (one row per text)."""
        import numpy as np

        array_fn = getattr(self.embedder, "embed_array", None)
        raw = array_fn(list(texts)) if callable(array_fn) else self.embedder.embed(list(texts))
        array = np.asarray(raw, dtype=np.float32)
        if array.ndim != 2 or len(array) != len(texts):
            raise CacheError(
                f"the embedder returned shape {tuple(array.shape)} for {len(texts)} texts",
                location=self.embedder_id,
            )
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        return array / np.where(norms == 0, 1.0, norms)

    def lookup(
        self,
        question: str,
        *,
        template_hash: str | None = None,
        model_class: str | None = None,
        must_match: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        vector: np.ndarray | None = None,
    ) -> SemanticHit | None:
        """The cached answer for a question like this one, or None (see ``decide`` for why)."""
        return self.decide(
            question,
            template_hash=template_hash,
            model_class=model_class,
            must_match=must_match,
            namespace=namespace,
            vector=vector,
        ).hit

    def decide(
        self,
        question: str,
        *,
        template_hash: str | None = None,
        model_class: str | None = None,
        must_match: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        vector: np.ndarray | None = None,
        count: bool = True,
    ) -> SemanticDecision:
        """Look up ``question`` and say why it hit or missed. ``vector``: its embedding, if already known."""
        with tracing.span("promptkit.cache.lookup", {"promptkit.cache.kind": "semantic"}) as span:
            decision = self._decide(
                question, template_hash, model_class, must_match, namespace, vector, count
            )
            if span:
                span.set(
                    {
                        "promptkit.cache.hit": decision.hit is not None,
                        "promptkit.cache.decision": decision.reason,
                        "promptkit.cache.similarity": decision.similarity,
                        "promptkit.cache.candidates": decision.candidates,
                    }
                )
            return decision

    def _decide(
        self,
        question: str,
        template_hash: str | None,
        model_class: str | None,
        must_match: Mapping[str, Any] | None,
        namespace: str | None,
        vector: np.ndarray | None,
        count: bool,
    ) -> SemanticDecision:
        ns = namespace or self.namespace
        scope = self.scope(
            template_hash=template_hash, model_class=model_class, must_match=must_match, namespace=ns
        )
        query = self.embed([question])[0] if vector is None else vector
        with self._lock:
            state = self._sync(scope)
            found = state.index.search(query, self.settings.candidates) if state is not None else []
        decision = self._judge(question, found)
        if count:
            self._count(ns, decision)
        return decision

    def store(
        self,
        question: str,
        response: GenerateResponse,
        *,
        template_hash: str | None = None,
        model_class: str | None = None,
        must_match: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        template: str | None = None,
        cost_usd: float | None = None,
        ttl_s: float | None = None,
    ) -> int:
        """Remember ``response`` as the answer to ``question``; returns the entry id."""
        return self.store_many(
            [(question, response)],
            template_hash=template_hash,
            model_class=model_class,
            must_match=must_match,
            namespace=namespace,
            template=template,
            cost_usd=cost_usd,
            ttl_s=ttl_s,
        )[0]

    def store_many(
        self,
        items: Iterable[tuple[str, GenerateResponse]],
        *,
        template_hash: str | None = None,
        model_class: str | None = None,
        must_match: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        template: str | None = None,
        cost_usd: float | None = None,
        ttl_s: float | None = None,
        vectors: np.ndarray | None = None,
    ) -> list[int]:
        """Store many answers of one scope in one transaction (embedding them in one batch)."""
        import numpy as np

        pairs = list(items)
        if not pairs:
            return []
        for question, response in pairs:
            if not isinstance(question, str) or not question.strip():
                raise CacheError("a cached question must be non-empty text", location=str(self.path))
            if not isinstance(response, GenerateResponse):
                raise CacheError(
                    f"only a GenerateResponse can be cached, not {type(response).__name__}",
                    location=str(self.path),
                )
        ns = namespace or self.namespace
        scope = self.scope(
            template_hash=template_hash, model_class=model_class, must_match=must_match, namespace=ns
        )
        matrix = (
            self.embed([q for q, _ in pairs]) if vectors is None else np.asarray(vectors, dtype=np.float32)
        )
        ttl = ttl_s if ttl_s is not None else self.settings.ttl_s
        if ttl is not None and not (isinstance(ttl, (int, float)) and ttl > 0):
            raise CacheError(
                f"ttl_s must be a positive number of seconds, got {ttl!r}", location=str(self.path)
            )
        now = self._clock()
        expires = None if ttl is None or math.isinf(ttl) else now + ttl
        rows = [
            (
                ns,
                scope,
                question,
                vec.astype("<f4").tobytes(),
                response.model_copy(update={"cached": False}).model_dump_json(),
                now,
                expires,
                template,
                model_class or response.model or None,
                cost_usd if cost_usd is not None else response.cost_usd,
            )
            for (question, response), vec in zip(pairs, matrix, strict=True)
        ]
        ids: list[int] = []
        with self._db.write("store entries") as conn:
            for row in rows:
                cur = conn.execute(
                    "INSERT INTO semantic_entries (namespace, scope, question, vector, response, created_at,"
                    " expires_at, template, model, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def record_rejected(self, namespace: str | None = None) -> None:
        """Count a hit that generate() did not serve because the cached answer failed ``accept``."""
        ns = namespace or self.namespace
        with self._lock:
            self._pending.rows.setdefault(ns, [0.0] * len(_STAT_COLUMNS))[
                _STAT_COLUMNS.index("rejected")
            ] += 1

    def delete(self, entry_id: int) -> bool:
        with self._db.write("delete an entry") as conn:
            gone = conn.execute("DELETE FROM semantic_entries WHERE id = ?", (int(entry_id),)).rowcount
            if gone:
                self._bump(conn)
        return bool(gone)

    def clear(self, namespace: str | None = None) -> int:
        """Remove every entry (of one namespace, if given). Counts are history and stay."""
        with self._db.write("clear") as conn:
            if namespace is None:
                gone = conn.execute("DELETE FROM semantic_entries").rowcount
            else:
                gone = conn.execute("DELETE FROM semantic_entries WHERE namespace = ?", (namespace,)).rowcount
            if gone:
                self._bump(conn)
        return int(gone)

    def purge_expired(self) -> int:
        with self._db.write("purge expired entries") as conn:
            gone = conn.execute(
                "DELETE FROM semantic_entries WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (self._clock(),),
            ).rowcount
            if gone:
                self._bump(conn)
        return int(gone)

    def __len__(self) -> int:
        conn = self._db.connection()
        with self._db.errors("count entries"):
            return int(conn.execute("SELECT COUNT(*) FROM semantic_entries").fetchone()[0])

    def stats(self) -> SemanticStats:
        self.flush_stats()
        conn = self._db.connection()
        with self._db.errors("read statistics"):
            namespaces = dict(
                conn.execute(
                    "SELECT namespace, COUNT(*) FROM semantic_entries WHERE expires_at IS NULL OR expires_at > ?"
                    " GROUP BY namespace ORDER BY namespace",
                    (self._clock(),),
                ).fetchall()
            )
            sums = conn.execute(
                "SELECT "
                + ", ".join(f"COALESCE(SUM({c}), 0)" for c in _STAT_COLUMNS)
                + " FROM semantic_stats"
            ).fetchone()
        totals = dict(zip(_STAT_COLUMNS, sums, strict=True))
        hits = int(totals["hits"])
        size = sum(os.path.getsize(p) for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return SemanticStats(
            entries=sum(namespaces.values()),
            namespaces=namespaces,
            lookups=int(totals["lookups"]),
            hits=hits,
            below_threshold=int(totals["below"]),
            ambiguous=int(totals["ambiguous"]),
            guarded=int(totals["guarded"]),
            rejected=int(totals["rejected"]),
            saved_usd=float(totals["saved_usd"]),
            mean_hit_similarity=float(totals["similarity_sum"]) / hits if hits else None,
            bytes=size,
        )

    def flush_stats(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, _Pending()
        if not pending.rows or self._db.closed:
            return
        rows = [(ns, *[int(v) if i < 6 else v for i, v in enumerate(r)]) for ns, r in pending.rows.items()]
        with self._db.write("record lookup counts") as conn:
            conn.executemany(_FLUSH, rows)

    def save_index(self) -> int:
        """Write the changed in-memory indexes to ``index_dir``; returns how many files were written."""
        written = 0
        with self._lock, self._file_lock():
            for scope, state in self._scopes.items():
                if state.dirty:
                    meta = {
                        "file_id": self._file_id(),
                        "generation": state.generation,
                        "synced_id": state.synced_id,
                        "count": len(state.index),
                    }
                    state.index.save(self._index_path(scope), meta=meta)
                    state.dirty = False
                    written += 1
        return written

    def close(self) -> None:
        """Save the indexes and counts, and close the database. Safe to call twice."""
        if self._db.closed:
            return
        try:
            self.flush_stats()
            self.save_index()
        finally:
            self._db.close()

    def __enter__(self) -> SemanticCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.settings
        return f"SemanticCache({str(self.path)!r}, threshold={s.threshold}, margin={s.margin}, embedder={self.embedder_id!r})"

    # -- matching ---------------------------------------------------------------------------------------

    def _judge(self, question: str, found: list[tuple[int, float]]) -> SemanticDecision:
        if not found:
            return SemanticDecision(reason="empty")
        rows = self._rows([entry_id for entry_id, _ in found])
        now = self._clock()
        live = [
            (row, cos)
            for entry_id, cos in found
            if (row := rows.get(entry_id)) is not None and (row[2] is None or row[2] > now)
        ]  # others were deleted by another process, or expired
        settings = self.settings
        choice = choose(
            question,
            [row[0] for row, _ in live],
            [cos for _, cos in live],
            [row[1] for row, _ in live],  # the stored answer: duplicates of one answer are no ambiguity
            lexical_weight=settings.lexical_weight,
            scorer=settings.scorer,
            classifier=settings.classifier,
        )
        if choice is None:
            return SemanticDecision(reason="empty")
        best, cos = live[choice.best]
        common: dict[str, Any] = {
            "similarity": choice.similarity,
            "runner_up": choice.runner_up,
            "candidates": len(live),
            "confidence": choice.confidence,
        }
        if choice.similarity < settings.threshold:
            return SemanticDecision(reason="below_threshold", **common)
        if choice.lead < settings.min_lead:
            return SemanticDecision(reason="ambiguous", **common)
        conflict = guard_conflict(question, best[0], settings.guards)
        if conflict is not None:
            return SemanticDecision(reason=f"guard:{conflict}", **common)
        try:
            response = GenerateResponse.model_validate_json(best[1])
        except ValidationError:
            return SemanticDecision(reason="empty", **common)  # written by an incompatible version
        response.cached = True
        hit = SemanticHit(
            id=best[5],
            response=response,
            similarity=choice.similarity,
            cosine=cos,
            question=best[0],
            cost_usd=best[4],
            template=best[6],
            model=best[3],
        )
        return SemanticDecision(reason="hit", hit=hit, **common)

    def _rows(self, ids: list[int]) -> dict[int, tuple[Any, ...]]:
        conn = self._db.connection()
        marks = ",".join("?" * len(ids))
        with self._db.errors("read entries"):
            rows = conn.execute(
                "SELECT id, question, response, expires_at, model, cost_usd, template FROM semantic_entries"
                f" WHERE id IN ({marks})",
                ids,
            ).fetchall()
        # (question, response, expires_at, model, cost_usd, id, template)
        return {r[0]: (r[1], r[2], r[3], r[4], r[5], r[0], r[6]) for r in rows}

    def _count(self, ns: str, decision: SemanticDecision) -> None:
        with self._lock:
            row = self._pending.rows.setdefault(ns, [0.0] * len(_STAT_COLUMNS))
            row[0] += 1
            if decision.hit is not None:
                row[1] += 1
                row[6] += decision.hit.similarity
                row[7] += decision.hit.cost_usd or 0.0
            elif decision.reason == "below_threshold":
                row[2] += 1
            elif decision.reason == "ambiguous":
                row[3] += 1
            elif decision.reason.startswith("guard:"):
                row[4] += 1
            self._pending.ops += 1
            due = self._pending.ops >= _FLUSH_EVERY
        if due:
            self.flush_stats()

    # -- the index: kept in step with SQLite ---------------------------------------------------------------

    def _generation(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT value FROM semantic_meta WHERE key = 'generation'").fetchone()[0])

    def _file_id(self) -> int:
        """A random number drawn when the database was created: an index file saved for another database
        (a copy, a re-created file) never passes for this one's."""
        if self._file_id_value is None:
            conn = self._db.connection()
            with self._db.errors("read the index state"):
                self._file_id_value = int(
                    conn.execute("SELECT value FROM semantic_meta WHERE key = 'file_id'").fetchone()[0]
                )
        return self._file_id_value

    def _bump(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE semantic_meta SET value = value + 1 WHERE key = 'generation'")

    def _index_path(self, scope: str) -> Path:
        return self.index_dir / f"{scope[:32]}.npz"

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Between processes: one writer of index files at a time (readers see whole files: atomic rename)."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with open(self.index_dir / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _sync(self, scope: str) -> _Scope | None:
        """The scope's index with every entry SQLite has now (caller holds ``self._lock``)."""
        conn = self._db.connection()
        with self._db.errors("read the index state"):
            generation = self._generation(conn)
            state = self._scopes.get(scope)
            if state is not None and state.generation != generation:
                state = None  # something was deleted somewhere: rebuild rather than guess what
            if state is None:
                state = self._open_scope(conn, scope, generation)
                if state is None:
                    return None
                self._scopes[scope] = state
            new = conn.execute(
                "SELECT id, vector FROM semantic_entries WHERE scope = ? AND id > ? ORDER BY id",
                (scope, state.synced_id),
            ).fetchall()
        if new:
            self._add_rows(state, new)
        return state

    def _open_scope(self, conn: sqlite3.Connection, scope: str, generation: int) -> _Scope | None:
        first = conn.execute(
            "SELECT vector FROM semantic_entries WHERE scope = ? LIMIT 1", (scope,)
        ).fetchone()
        if first is None:
            return None
        loaded = self._load_saved(conn, scope, generation)
        if loaded is not None:
            return loaded
        count = int(
            conn.execute("SELECT COUNT(*) FROM semantic_entries WHERE scope = ?", (scope,)).fetchone()[0]
        )
        dim = len(first[0]) // 4
        index = make_index(dim, self.settings.index, expected=count)
        return _Scope(index=index, generation=generation, dirty=True)

    def _load_saved(self, conn: sqlite3.Connection, scope: str, generation: int) -> _Scope | None:
        path = self._index_path(scope)
        if not path.is_file():
            return None
        try:
            index, meta = load_index(path)
        except CacheError:
            return None  # truncated or foreign: rebuilt from SQLite
        synced = int(meta.get("synced_id", -1))
        if meta.get("generation") != generation or meta.get("file_id") != self._file_id():
            return None
        if self.settings.index != "auto" and index.kind != self.settings.index:
            return None  # saved as another kind than this cache is configured for
        rows = conn.execute(
            "SELECT COUNT(*) FROM semantic_entries WHERE scope = ? AND id <= ?", (scope, synced)
        ).fetchone()[0]
        if rows != meta.get("count") or rows != len(index):
            return None  # stale: another process changed the scope after this file was written
        return _Scope(index=index, synced_id=synced, generation=generation)

    def _add_rows(self, state: _Scope, rows: list[tuple[int, bytes]]) -> None:
        import numpy as np

        dim = state.index.dim
        good = [(i, v) for i, v in rows if len(v) == 4 * dim]  # a foreign vector size cannot be compared
        if good:
            matrix = np.frombuffer(b"".join(v for _, v in good), dtype="<f4").reshape(len(good), dim)
            index = state.index
            if self.settings.index == "auto" and isinstance(index, BruteForceIndex):
                upgraded = make_index(dim, "auto", expected=len(index) + len(good))
                if isinstance(upgraded, HNSWIndex):
                    upgraded.add(index.ids(), index.vectors())
                    state.index = upgraded
            state.index.add([i for i, _ in good], matrix)
        state.synced_id = max(state.synced_id, rows[-1][0])
        state.dirty = True
