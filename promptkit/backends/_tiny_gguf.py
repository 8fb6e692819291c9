"""A tiny random-weight llama-architecture GGUF, for trying the local path and for tests.

The model produces random text. It is useful because everything around the weights is real: llama.cpp loads
it, tokenizes with a GPT-2 byte-level BPE vocabulary, applies a ChatML chat template and runs grammars.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from promptkit.errors import BackendUnavailable, PromptkitError

__all__ = ["make_tiny_gguf", "TINY_CHAT_TEMPLATE", "TINY_SPECIAL_TOKENS"]

TINY_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# A few GPT-2-style merges; llama.cpp refuses a BPE vocabulary whose merge list is empty.
_MERGES = (
    ("Ġ", "t"),
    ("Ġ", "a"),
    ("h", "e"),
    ("i", "n"),
    ("r", "e"),
    ("o", "n"),
    ("e", "r"),
    ("Ġt", "he"),
)


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _vocabulary() -> tuple[list[str], list[int], list[str]]:
    from gguf import TokenType

    byte_map = _byte_to_unicode()
    tokens = [byte_map[b] for b in range(256)]
    types = [int(TokenType.NORMAL)] * 256
    for left, right in _MERGES:
        tokens.append(left + right)
        types.append(int(TokenType.NORMAL))
    for special in TINY_SPECIAL_TOKENS:
        tokens.append(special)
        types.append(int(TokenType.CONTROL))  # otherwise llama.cpp splits them into bytes
    merges = [f"{left} {right}" for left, right in _MERGES]
    return tokens, types, merges


def _output_weight(rng: Any, tokens: list[str], n_embd: int) -> Any:
    """The unembedding: random rows for printable-ASCII tokens, zero rows for the rest.

    Zero rows give a logit of 0 while printable tokens get logits of spread ~3, so the random text is mostly
    printable ASCII rather than stray UTF-8 bytes (which llama-cpp-python drops when it decodes).
    """
    import numpy as np

    to_byte = {char: b for b, char in _byte_to_unicode().items()}
    out = np.zeros((len(tokens), n_embd), dtype=np.float32)
    for i, token in enumerate(tokens):
        raw = [to_byte.get(char) for char in token]
        if all(b is not None and 0x20 <= b <= 0x7E for b in raw):
            out[i] = rng.standard_normal(n_embd) * 3.0 / np.sqrt(n_embd)
    return out


def _check(n_ctx: int, n_layer: int, n_embd: int, n_head: int, n_ff: int) -> None:
    for name, value in (
        ("n_ctx", n_ctx),
        ("n_layer", n_layer),
        ("n_embd", n_embd),
        ("n_head", n_head),
        ("n_ff", n_ff),
    ):
        if value < 1:
            raise PromptkitError(f"{name} must be at least 1, got {value}", location="make_tiny_gguf")
    if n_embd % n_head or (n_embd // n_head) % 2:
        raise PromptkitError(
            f"n_embd ({n_embd}) must split into n_head ({n_head}) heads of even size",
            location="make_tiny_gguf",
        )


def make_tiny_gguf(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_ctx: int = 4096,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_ff: int = 128,
) -> Path:
    """Write a random-weight llama GGUF to ``path`` and return the path. Same seed, same bytes.

    The file is written next to ``path`` first and renamed into place, so a reader never sees half a model.
    """
    _check(n_ctx, n_layer, n_embd, n_head, n_ff)
    try:
        import gguf
        import numpy as np
    except ImportError:
        raise BackendUnavailable(
            "writing a GGUF needs the gguf package: pip install 'promptkit[local]'", location=str(path)
        ) from None

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PromptkitError(
            f"cannot create the folder: {exc.strerror or exc}", location=str(target)
        ) from None
    tokens, types, merges = _vocabulary()
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> Any:
        # numpy shapes are ggml's ne[] reversed: (rows = outputs, cols = inputs).
        return (rng.standard_normal(shape) * 0.5 / np.sqrt(shape[-1])).astype(np.float32)

    def ones(n: int) -> Any:
        return np.ones(n, dtype=np.float32)

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    try:
        writer.add_name("promptkit-tiny-random")
        writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
        writer.add_context_length(n_ctx)
        writer.add_embedding_length(n_embd)
        writer.add_block_count(n_layer)
        writer.add_feed_forward_length(n_ff)
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_head)
        writer.add_rope_dimension_count(n_embd // n_head)
        writer.add_rope_freq_base(10000.0)
        writer.add_layer_norm_rms_eps(1e-5)
        writer.add_vocab_size(n_vocab)

        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(tokens.index("<|endoftext|>"))
        writer.add_eos_token_id(tokens.index("<|im_end|>"))
        writer.add_pad_token_id(tokens.index("<|endoftext|>"))
        writer.add_add_bos_token(False)
        writer.add_chat_template(TINY_CHAT_TEMPLATE)

        writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
        for i in range(n_layer):
            writer.add_tensor(f"blk.{i}.attn_norm.weight", ones(n_embd))
            writer.add_tensor(f"blk.{i}.attn_q.weight", weight(n_embd, n_embd))
            writer.add_tensor(f"blk.{i}.attn_k.weight", weight(n_embd, n_embd))
            writer.add_tensor(f"blk.{i}.attn_v.weight", weight(n_embd, n_embd))
            writer.add_tensor(f"blk.{i}.attn_output.weight", weight(n_embd, n_embd))
            writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones(n_embd))
            writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
            writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
            writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
        writer.add_tensor("output_norm.weight", ones(n_embd))
        writer.add_tensor("output.weight", _output_weight(rng, tokens, n_embd))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, target)
    except OSError as exc:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise PromptkitError(f"cannot write the model: {exc.strerror or exc}", location=str(target)) from None
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return target
