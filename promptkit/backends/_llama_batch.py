"""Continuous batching for a local GGUF: several answers decoded in one forward pass.

One sequence decodes at the memory-bandwidth limit (every token reads all the weights once); with ``slots``
sequences in one batch the weights are read once per step for all of them, which is how servers such as
llama.cpp's ``llama-server --parallel`` get more tokens per second out of the same machine. This engine
does the same in-process, on the model that :class:`~promptkit.backends.LlamaBackend` loaded: one llama.cpp
context holding a KV cache for ``slots`` sequences, a scheduler thread that admits waiting requests into
free slots, feeds their prompts in chunks beside the other slots' next tokens, and ends each answer at its
stop string, end-of-text token, ``max_tokens`` or when its caller gives up.

Greedy answers are the same tokens as the sequential path's up to floating-point differences: llama.cpp's
matrix kernels sum in a different order for a batch of several rows, so a near-tie between two tokens can
go the other way (measured in bench/batched_decoding.py). Grammar-constrained calls stay sequential.

Prompts that start alike (one system prompt and instructions, the same few-shot examples, a repair that
continues an earlier conversation) share their common start: a new request copies the longest matching
prefix from any sequence still in the KV cache, running or finished, instead of evaluating it again. A finished
slot keeps its tokens until the slot is reused, so a follow-up call finds them.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchEngine", "BatchResult"]

# Prompt tokens fed per step across all prefilling slots (llama.cpp's n_batch); decoding slots come first.
_STEP_TOKENS = 512


@dataclass
class BatchResult:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    compute_s: float
    reused_tokens: int = 0  # prompt tokens copied from another sequence's KV cache, not evaluated


@dataclass
class _Request:
    tokens: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: list[str]
    future: Future[BatchResult]
    looping: Any  # callable(tokens) -> bool: the sequential path's loop detector
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _Slot:
    seq: int
    request: _Request
    fed: int = 0  # prompt tokens already in the KV cache
    reused: int = 0  # of which copied from another sequence
    generated: list[int] = field(default_factory=list)
    compute_s: float = 0.0  # this answer's share of each forward pass it took part in
    rng: Any = None

    @property
    def position(self) -> int:
        return self.fed + len(self.generated)


class BatchEngine:
    """Decode up to ``slots`` requests at once on ``llama`` (a loaded ``llama_cpp.Llama``)."""

    def __init__(
        self, llama: Any, *, slots: int, ctx_per_slot: int, n_threads: int | None, share_prefixes: bool = True
    ) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llama = llama
        self.slots = slots
        self.ctx_per_slot = ctx_per_slot
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = slots * ctx_per_slot
        params.n_batch = _STEP_TOKENS
        params.n_ubatch = _STEP_TOKENS
        params.n_seq_max = slots
        # One shared KV pool: a long answer may use more than its share while short ones finish.
        params.kv_unified = True
        if n_threads is not None:
            params.n_threads = params.n_threads_batch = n_threads
        self._ctx = llama_cpp.llama_init_from_model(llama._model.model, params)
        if not self._ctx:
            raise MemoryError(f"llama.cpp could not create a context for {slots} sequences")
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(llama._model.model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._batch = llama_cpp.llama_batch_init(_STEP_TOKENS, 0, 1)
        self._waiting: deque[_Request] = deque()
        self._active: dict[int, _Slot] = {}
        # The tokens each sequence holds in the KV cache, in position order (running and finished ones).
        self._resident: dict[int, list[int]] = {}
        self.share_prefixes = share_prefixes
        self.prompt_tokens = 0  # admitted prompts' tokens, and how many of them were copied, not evaluated
        self.reused_tokens = 0
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="promptkit-batch", daemon=True)
        self._thread.start()

    # -- requests ------------------------------------------------------------------------------------------

    def submit(
        self,
        tokens: list[int],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        stop: list[str] | None = None,
        looping: Any = None,
    ) -> tuple[Future[BatchResult], threading.Event]:
        """Queue one prompt; returns its future and an event that cancels it when set."""
        if len(tokens) + 1 > self.ctx_per_slot:
            raise ValueError(
                f"Requested tokens ({len(tokens)}) exceed context window of {self.ctx_per_slot} per slot"
            )
        request = _Request(
            tokens=list(tokens),
            max_tokens=min(max_tokens, self.ctx_per_slot - len(tokens)),
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stop=list(stop or []),
            future=Future(),
            looping=looping,
        )
        with self._wake:
            if self._closed:
                raise RuntimeError("the batch engine is closed")
            self._waiting.append(request)
            self._wake.notify()
        return request.future, request.cancelled

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()
        self._lib.llama_batch_free(self._batch)
        self._lib.llama_free(self._ctx)

    # -- the scheduler -------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._waiting and not self._active:
                    self._wake.wait()
                if self._closed:
                    pending = list(self._waiting) + [s.request for s in self._active.values()]
                    self._waiting.clear()
                    break
                self._admit()
            try:
                self._step()
            except BaseException as exc:  # a failed decode fails the answers in flight, not the engine
                for slot in list(self._active.values()):
                    self._finish(slot, error=exc)
        for request in pending:
            if not request.future.done():
                request.future.set_exception(RuntimeError("the batch engine was closed"))

    def _admit(self) -> None:
        free = [seq for seq in range(self.slots) if seq not in self._active]
        while free and self._waiting:
            request = self._waiting.popleft()
            if request.cancelled.is_set() or not request.future.set_running_or_notify_cancel():
                continue
            source, shared = self._longest_prefix(request.tokens)
            # The slot of the finished sequence it shares most with, when that is free; else one holding nothing.
            if source in free:
                seq = source
            else:
                seq = next((s for s in free if s not in self._resident), free[0])
            free.remove(seq)
            slot = _Slot(seq=seq, request=request)
            self._start_from(slot, source if shared else seq, shared)
            if request.temperature > 0:
                import numpy as np

                slot.rng = np.random.default_rng(request.seed)
            self._active[seq] = slot

    def _evict_finished(self) -> bool:
        finished = [seq for seq in self._resident if seq not in self._active]
        for seq in finished:
            self._lib.llama_memory_seq_rm(self._memory, seq, -1, -1)
            del self._resident[seq]
        return bool(finished)

    def _longest_prefix(self, tokens: list[int]) -> tuple[int | None, int]:
        """The sequence (running or finished) whose tokens share the longest start with ``tokens``, and how many."""
        best_seq, best = None, 0
        if self.share_prefixes:
            for seq, held in self._resident.items():
                n = self._lib.Llama.longest_token_prefix(held, tokens)
                if n > best:
                    best_seq, best = seq, n
        return best_seq, best

    def _start_from(self, slot: _Slot, source: int | None, shared: int) -> None:
        """Start ``slot`` from the first ``shared`` tokens that ``source`` holds (copied, not evaluated)."""
        lib, tokens = self._lib, slot.request.tokens
        # The last prompt token is always evaluated: its logits start the answer.
        shared = min(shared, len(tokens) - 1)
        if source == slot.seq:
            lib.llama_memory_seq_rm(self._memory, slot.seq, shared, -1)
        else:
            lib.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)
            lib.llama_memory_seq_cp(self._memory, source, slot.seq, 0, shared)
        slot.fed = slot.reused = shared
        self.prompt_tokens += len(tokens)
        self.reused_tokens += shared
        self._resident[slot.seq] = list(tokens[:shared])

    def _step(self) -> None:
        lib, batch = self._lib, self._batch
        for slot in [s for s in self._active.values() if s.request.cancelled.is_set()]:
            self._finish(slot, reason="cancelled")
        if not self._active:
            return
        n = 0
        wants_logits: list[tuple[_Slot, int]] = []
        fed: dict[_Slot, int] = {}

        def add(slot: _Slot, token: int, pos: int, logits: bool) -> None:
            nonlocal n
            fed[slot] = fed.get(slot, 0) + 1
            self._resident[slot.seq].append(token)
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot.seq
            batch.logits[n] = 1 if logits else 0
            n += 1

        # Decoding slots first (one token each), then prompt chunks in the room that is left.
        for slot in self._active.values():
            if slot.fed == len(slot.request.tokens) and slot.generated:
                wants_logits.append((slot, n))
                add(slot, slot.generated[-1], slot.position - 1, True)
        for slot in self._active.values():
            remaining = len(slot.request.tokens) - slot.fed
            if remaining == 0 or n >= _STEP_TOKENS:
                continue
            take = min(remaining, _STEP_TOKENS - n)
            for i in range(take):
                last = slot.fed + i == len(slot.request.tokens) - 1
                if last:
                    wants_logits.append((slot, n))
                add(slot, slot.request.tokens[slot.fed + i], slot.fed + i, last)
            slot.fed += take
        batch.n_tokens = n
        started = time.perf_counter()
        code = lib.llama_decode(self._ctx, batch)
        if code == 1 and self._evict_finished():
            # No room in the KV cache (code 1 leaves it unchanged): finished sequences kept for their
            # prefixes give theirs up, and the same batch goes again.
            code = lib.llama_decode(self._ctx, batch)
        # The pass costs its time once, whatever the batch holds: each answer in it is charged by its tokens.
        per_token = (time.perf_counter() - started) / max(n, 1)
        for slot, count in fed.items():
            slot.compute_s += per_token * count
        if code != 0:
            # What this batch would have added is not in the cache: forget every sequence's tokens.
            lib.llama_memory_seq_rm(self._memory, -1, -1, -1)
            self._resident.clear()
            raise RuntimeError(
                f"llama_decode failed ({code}): the shared context of {self.slots} slots is full"
            )
        for slot, index in wants_logits:
            token = self._sample(slot, index)
            slot.generated.append(token)
            self._check_done(slot, token)

    def _sample(self, slot: _Slot, index: int) -> int:
        import numpy as np

        pointer = self._lib.llama_get_logits_ith(self._ctx, index)
        logits = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), (self._n_vocab,))
        request = slot.request
        if request.temperature <= 0:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / request.temperature
        scaled -= scaled.max()
        probs = np.exp(scaled)
        probs /= probs.sum()
        if request.top_p < 1.0:
            order = np.argsort(-probs)
            keep = np.searchsorted(np.cumsum(probs[order]), request.top_p) + 1
            mask = np.zeros_like(probs)
            mask[order[:keep]] = 1.0
            probs *= mask
            probs /= probs.sum()
        return int(slot.rng.choice(self._n_vocab, p=probs))

    def _check_done(self, slot: _Slot, token: int) -> None:
        request = slot.request
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            slot.generated.pop()
            self._finish(slot, reason="stop")
            return
        if request.stop:
            text = self._text(slot.generated)
            for stop in request.stop:
                if stop in text:
                    self._finish(slot, reason="stop", text=text[: text.index(stop)])
                    return
        if len(slot.generated) >= request.max_tokens:
            self._finish(slot, reason="length")
        elif (
            request.looping is not None and len(slot.generated) % 16 == 0 and request.looping(slot.generated)
        ):
            self._finish(slot, reason="length")

    def _text(self, tokens: list[int]) -> str:
        return self._llama.detokenize(tokens).decode("utf-8", errors="ignore")  # type: ignore[no-any-return]

    def _finish(
        self,
        slot: _Slot,
        *,
        reason: str = "stop",
        text: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        self._active.pop(slot.seq, None)
        if not self.share_prefixes or error is not None:
            self._lib.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)
            self._resident.pop(slot.seq, None)
        # else the sequence stays in the cache until its slot is reused: a later prompt may share its start
        future = slot.request.future
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
            return
        future.set_result(
            BatchResult(
                text=self._text(slot.generated) if text is None else text,
                finish_reason=reason,
                prompt_tokens=len(slot.request.tokens),
                completion_tokens=len(slot.generated),
                compute_s=slot.compute_s,
                reused_tokens=slot.reused,
            )
        )
