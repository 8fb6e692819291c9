"""Sentence embeddings from a GGUF model with llama.cpp (llama-cpp-python), in this process."""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptkit.embeddings._base import BaseEmbedder, normalize_rows
from promptkit.embeddings._convert import MAX_TOKENS_KEY
from promptkit.errors import BackendError, BackendUnavailable

if TYPE_CHECKING:
    import numpy as np

    from promptkit.embeddings._cache import EmbeddingCache

__all__ = ["LlamaEmbedder"]


@dataclass
class _Loaded:
    """One model in memory, shared by every embedder on the same file and settings."""

    llm: Any
    path: Path
    batch: Any
    capacity: int
    n_seq_max: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    digest: str | None = None

    def sha256(self) -> str:
        if self.digest is None:
            hasher = hashlib.sha256()
            with self.path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    hasher.update(block)
            self.digest = hasher.hexdigest()
        return self.digest


_POOL: dict[tuple[str, int, int, int, int | None], _Loaded] = {}
_POOL_LOCK = threading.Lock()


@atexit.register
def _close_pool() -> None:
    # Free the models while llama_cpp's module globals still exist; a Llama left to __del__ at interpreter
    # teardown raises "Exception ignored ... 'NoneType' object is not callable".
    with _POOL_LOCK:
        loaded = list(_POOL.values())
        _POOL.clear()
    for item in loaded:
        item.llm.close()


def _load(path: Path, n_ctx: int, n_threads: int | None) -> _Loaded:
    where = str(path)
    try:
        stat = path.stat()
    except OSError:
        raise BackendUnavailable(
            "embedding model file not found; write the default one with `promptkit models convert-embedder`",
            location=where,
        ) from None
    # The file's size and mtime are in the key, so a re-converted file is loaded afresh.
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, n_ctx, n_threads)
    with _POOL_LOCK:
        loaded = _POOL.get(key)
        if loaded is not None:
            return loaded
        try:
            import llama_cpp
        except ImportError as exc:
            raise BackendUnavailable(
                f"llama-cpp-python is not installed ({exc}): pip install 'promptkit[local]'", location=where
            ) from None
        try:
            llm = llama_cpp.Llama(
                model_path=where,
                embedding=True,
                n_ctx=n_ctx,
                n_batch=n_ctx,
                n_ubatch=n_ctx,  # an encoder must see a whole sequence in one micro-batch
                n_threads=n_threads,
                n_threads_batch=n_threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendUnavailable(f"llama.cpp cannot load this model: {exc}", location=where) from None
        if llm.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_NONE:
            llm.close()
            raise BackendUnavailable(
                "the model has no pooling, so it gives one vector per token, not per text; "
                "convert a sentence-transformer with `promptkit models convert-embedder`",
                location=where,
            )
        capacity = int(llm.n_batch)
        batch = llama_cpp.llama_batch_init(capacity, 0, 1)
        loaded = _Loaded(
            llm=llm, path=path, batch=batch, capacity=capacity, n_seq_max=int(llm.context_params.n_seq_max)
        )
        weakref.finalize(loaded, llama_cpp.llama_batch_free, batch)
        _POOL[key] = loaded
        return loaded


class LlamaEmbedder(BaseEmbedder):
    """Embeds texts with a GGUF sentence-embedding model (e.g. from :func:`convert_minilm_to_gguf`).

    The model is loaded once per file and settings and shared by every ``LlamaEmbedder`` in the process; calls
    on it are serialised by a lock. Vectors are float32, L2-normalised unless ``normalize=False``.

    Inputs longer than ``max_tokens`` are truncated to it, keeping the closing ``[SEP]``. By default that is
    the truncation length recorded in the GGUF by the converter (256 for all-MiniLM-L6-v2, which is what
    sentence-transformers does, so long texts get the same vectors), else ``n_ctx``; it never exceeds ``n_ctx``.
    Texts are packed into llama.cpp calls of up to ``batch_size`` texts and about ``batch_tokens`` tokens (a
    longer text goes alone). Small packs are faster on CPU: a packed call attends over all its tokens, masked,
    so its cost grows with the square of its size; 64 tokens was measured fastest for short texts.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 512,
        n_threads: int | None = None,
        normalize: bool = True,
        batch_size: int = 64,
        batch_tokens: int = 64,
        max_tokens: int | None = None,
        cache: EmbeddingCache | None = None,
    ) -> None:
        if n_ctx < 8 or batch_size < 1 or batch_tokens < 1 or (max_tokens is not None and max_tokens < 2):
            raise BackendError(
                "n_ctx must be >= 8, batch_size and batch_tokens >= 1, max_tokens >= 2",
                location=f"LlamaEmbedder({model_path})",
            )
        self.model_path = Path(model_path).expanduser()
        self.normalize = normalize
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.cache = cache
        self._loaded = _load(self.model_path, n_ctx, n_threads)
        llm = self._loaded.llm
        recorded = llm.metadata.get(MAX_TOKENS_KEY)
        limit = max_tokens or (int(recorded) if recorded and str(recorded).isdigit() else llm.n_ctx())
        self.max_tokens = min(limit, llm.n_ctx(), self._loaded.capacity)
        self.dim = int(llm.n_embd())

    def __repr__(self) -> str:
        return f"LlamaEmbedder({str(self.model_path)!r}, dim={self.dim}, max_tokens={self.max_tokens})"

    @property
    def model_id(self) -> str:
        """The model file's name and content hash plus the settings that change the vectors."""
        norm = "normalized" if self.normalize else "raw"
        return f"llama.cpp:{self.model_path.name}:{self._loaded.sha256()[:16]}:max_tokens={self.max_tokens}:{norm}"

    def tokenize(self, text: str) -> list[int]:
        """The model's token ids for ``text``, with [CLS]/[SEP], truncated as :meth:`embed` does."""
        with self._loaded.lock:
            return self._tokenize(text)

    def _tokenize(self, text: str) -> list[int]:
        tokens: list[int] = self._loaded.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(tokens) > self.max_tokens:
            tokens = tokens[: self.max_tokens - 1] + tokens[-1:]  # the last token is the closing [SEP]
        return tokens

    def _compute(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        loaded = self._loaded
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with loaded.lock:
            sequences = [self._tokenize(text) for text in texts]
            group: list[int] = []
            used = 0
            per_call = min(self.batch_size, loaded.n_seq_max)
            per_call_tokens = min(self.batch_tokens, loaded.capacity)
            for index, tokens in enumerate(sequences):
                if group and (used + len(tokens) > per_call_tokens or len(group) >= per_call):
                    self._decode(group, sequences, out)
                    group, used = [], 0
                group.append(index)
                used += len(tokens)
            if group:
                self._decode(group, sequences, out)
        return normalize_rows(out) if self.normalize else out

    def _decode(self, group: list[int], sequences: list[list[int]], out: np.ndarray) -> None:
        import llama_cpp
        import numpy as np

        loaded = self._loaded
        ctx, batch = loaded.llm.ctx, loaded.batch
        memory = llama_cpp.llama_get_memory(ctx)
        if memory:  # BERT keeps no KV cache; causal embedding models do, and must start clean
            llama_cpp.llama_memory_clear(memory, True)
        slot = 0
        for seq, index in enumerate(group):
            for pos, token in enumerate(sequences[index]):
                batch.token[slot] = token
                batch.pos[slot] = pos
                batch.n_seq_id[slot] = 1
                batch.seq_id[slot][0] = seq
                batch.logits[slot] = True
                slot += 1
        batch.n_tokens = slot
        code = llama_cpp.llama_decode(ctx, batch)
        if code != 0:
            raise BackendError(f"llama_decode failed with code {code}", location=str(self.model_path))
        for seq, index in enumerate(group):
            pointer = llama_cpp.llama_get_embeddings_seq(ctx, seq)
            if not pointer:
                raise BackendError("llama.cpp returned no pooled embedding", location=str(self.model_path))
            out[index] = np.ctypeslib.as_array(pointer, shape=(self.dim,))
