"""Token counting: a GGUF model's own tokenizer for ``local:`` models, litellm's ``token_counter`` for the
rest when installed, a documented approximation otherwise."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from promptkit.types import Message

__all__ = [
    "count_tokens",
    "count_tokens_detailed",
    "count_text_tokens",
    "approximate_tokens",
    "surely_fits",
    "DEFAULT_TOKEN_MODEL",
]

DEFAULT_TOKEN_MODEL = "gpt-4o"

# The approximation: OpenAI-style framing of 3 tokens per message plus 3 to prime the reply,
# and one token per 4 bytes of UTF-8 text (a common rule of thumb for English and code).
_PER_MESSAGE = 3
_PER_REPLY = 3
_BYTES_PER_TOKEN = 4


def approximate_tokens(messages: Sequence[Message | Mapping[str, Any]]) -> int:
    """A rough count that needs no tokenizer: ceil(utf8_bytes / 4) per message + 3 per message + 3."""
    total = _PER_REPLY
    for message in messages:
        content = _content(message)
        total += _PER_MESSAGE + math.ceil(len(content.encode("utf-8")) / _BYTES_PER_TOKEN)
    return total


# Chat framing of a local model's template (ChatML: "<|im_start|>role\n" ... "<|im_end|>\n"), per message, and
# the assistant header that primes the reply; other templates are of the same order.
_LOCAL_PER_MESSAGE = 5
_LOCAL_PER_REPLY = 3


def surely_fits(messages: Sequence[Message | Mapping[str, Any]], budget: int) -> bool:
    """True when ``messages`` fit ``budget`` tokens for any byte-level tokenizer, without running one.

    Every token of a byte-level BPE covers at least one byte, so the UTF-8 length bounds the count; this
    spares a tokenizer call on every prompt that is far from the limit.
    """
    total = _LOCAL_PER_REPLY + 8
    for message in messages:
        total += 8 + len(_content(message).encode("utf-8"))
        if total > budget:
            return False
    return True


def count_tokens(messages: Sequence[Message | Mapping[str, Any]], model: str | None = None) -> int:
    """Tokens that ``messages`` take for ``model`` (default ``gpt-4o``; a ``litellm:`` prefix is ignored).

    A ``local:`` GGUF model (a path or a catalog name that is installed) counts with its own tokenizer;
    other models use litellm's ``token_counter`` when litellm is installed, else :func:`approximate_tokens`.
    """
    return count_tokens_detailed(messages, model)[0]


def count_tokens_detailed(
    messages: Sequence[Message | Mapping[str, Any]], model: str | None = None
) -> tuple[int, bool]:
    """``(count, exact)``: ``exact`` is False when the count is an approximation."""
    tokenize = _local_tokenizer(model)
    if tokenize is not None:
        total = _LOCAL_PER_REPLY + sum(_LOCAL_PER_MESSAGE + len(tokenize(_content(m))) for m in messages)
        return total, True
    counter = _litellm_counter()
    if counter is None:
        return approximate_tokens(messages), False
    name, exact = _tokenizer_model(model)
    payload = [{"role": _role(m), "content": _content(m)} for m in messages]
    return int(counter(model=name, messages=payload)), exact


def count_text_tokens(text: str, model: str | None = None) -> int:
    """Tokens in a bare piece of text (no message framing)."""
    if not text:
        return 0
    tokenize = _local_tokenizer(model)
    if tokenize is not None:
        return len(tokenize(text))
    counter = _litellm_counter()
    if counter is None:
        return math.ceil(len(text.encode("utf-8")) / _BYTES_PER_TOKEN)
    return int(counter(model=_tokenizer_model(model)[0], text=text))


def _content(message: Message | Mapping[str, Any]) -> str:
    if isinstance(message, Message):
        return message.content
    return str(message.get("content") or "")


def _role(message: Message | Mapping[str, Any]) -> str:
    if isinstance(message, Message):
        return message.role
    return str(message.get("role") or "user")


def _local_tokenizer(model: str | None) -> Any:
    """``text -> token ids`` with a local GGUF model's own vocabulary, or None for other models."""
    if not model or not model.startswith("local:"):
        return None
    return _gguf_tokenizer(model.removeprefix("local:"))


@lru_cache(maxsize=8)
def _gguf_tokenizer(target: str) -> Any:
    try:
        from promptkit.models import resolve_local_model

        path = resolve_local_model(target)
    except Exception:  # not installed or not a file: the caller falls back to the default tokenizer
        return None
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    from llama_cpp._utils import suppress_stdout_stderr

    # The vocabulary alone loads in a fraction of a second and no weights are read; llama.cpp's context
    # warning for a vocabulary-only load would only confuse.
    with suppress_stdout_stderr(disable=False):
        vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)

    def tokenize(text: str) -> list[int]:
        return vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True)  # type: ignore[no-any-return]

    return tokenize


@lru_cache(maxsize=1)
def _litellm_counter() -> Any:
    # Must be set before litellm's first import, or it fetches its price map from the internet.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        from litellm import token_counter
    except ImportError:
        return None
    return token_counter


@lru_cache(maxsize=256)
def _tokenizer_model(model: str | None) -> tuple[str, bool]:
    """The model name to give litellm, and whether its count is exact for ``model``.

    Models whose tokenizer litellm would download from the Hugging Face hub are counted with the default
    tokenizer instead (marked approximate): counting tokens must never touch the network.
    """
    if not model:
        return DEFAULT_TOKEN_MODEL, True
    name = model.removeprefix("litellm:")
    if name.startswith("local:"):
        # A GGUF model's own tokenizer is not reachable from here; count with the default one.
        return DEFAULT_TOKEN_MODEL, False
    try:
        from litellm.utils import huggingface_tokenizer_kind
    except ImportError:  # older litellm: no way to tell, so use the default tokenizer to stay offline
        return DEFAULT_TOKEN_MODEL, False
    if huggingface_tokenizer_kind(name) is not None:
        return DEFAULT_TOKEN_MODEL, False
    return name, True
