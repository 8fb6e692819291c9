"""The tiny random-weight GGUF: deterministic, well-formed metadata, and loadable by llama.cpp."""

from __future__ import annotations

import pytest

from promptkit.backends._tiny_gguf import TINY_SPECIAL_TOKENS, make_tiny_gguf
from promptkit.errors import PromptkitError


def _field(reader, name):  # type: ignore[no-untyped-def]
    return reader.fields[name]


def _scalar(reader, name):  # type: ignore[no-untyped-def]
    return _field(reader, name).contents()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = make_tiny_gguf(tmp_path / "a.gguf", seed=7)
    b = make_tiny_gguf(tmp_path / "b.gguf", seed=7)
    c = make_tiny_gguf(tmp_path / "c.gguf", seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file must be renamed into place"


def test_metadata_has_what_llama_cpp_needs(tmp_path):
    from gguf import GGUFReader, TokenType

    path = make_tiny_gguf(tmp_path / "m.gguf", n_ctx=3000, n_layer=3, n_embd=32, n_head=2, n_ff=48)
    reader = GGUFReader(path)
    assert _scalar(reader, "general.architecture") == "llama"
    assert _scalar(reader, "llama.context_length") == 3000
    assert _scalar(reader, "llama.block_count") == 3
    assert _scalar(reader, "llama.embedding_length") == 32
    assert _scalar(reader, "tokenizer.ggml.model") == "gpt2"
    merges = _scalar(reader, "tokenizer.ggml.merges")
    assert len(merges) > 0
    tokens = _scalar(reader, "tokenizer.ggml.tokens")
    types = _scalar(reader, "tokenizer.ggml.token_type")
    for special in TINY_SPECIAL_TOKENS:
        assert types[tokens.index(special)] == TokenType.CONTROL
    template = _scalar(reader, "tokenizer.chat_template")
    assert "<|im_start|>" in template and "add_generation_prompt" in template
    names = {tensor.name for tensor in reader.tensors}
    assert {"token_embd.weight", "output.weight", "blk.2.ffn_down.weight"} <= names
    norm = next(t for t in reader.tensors if t.name == "blk.0.attn_norm.weight")
    assert norm.tensor_type.name == "F32"


def test_llama_cpp_loads_it_and_keeps_special_tokens_whole(tiny_gguf):
    from llama_cpp import Llama

    llama = Llama(model_path=str(tiny_gguf), n_ctx=256, verbose=False)
    try:
        ids = llama.tokenize(b"<|im_start|>user\nhi<|im_end|>", add_bos=False, special=True)
        assert ids[0] == llama.tokenize(b"<|im_start|>", add_bos=False, special=True)[0]
        assert len(llama.tokenize(b"<|im_start|>", add_bos=False, special=True)) == 1
        assert llama.token_eos() == ids[-1]  # <|im_end|> ends a turn
        out = llama.create_chat_completion([{"role": "user", "content": "hi"}], max_tokens=8, temperature=0)
        assert out["usage"]["completion_tokens"] > 0
        # The ChatML template in the metadata is used, not llama.cpp's llama-2 fallback.
        assert llama.metadata["tokenizer.chat_template"].startswith("{% for message in messages %}")
    finally:
        llama.close()


@pytest.mark.parametrize(
    "kwargs",
    [{"n_ctx": 0}, {"n_head": 3}, {"n_embd": 12, "n_head": 4}],
)
def test_impossible_shapes_are_refused(tmp_path, kwargs):
    with pytest.raises(PromptkitError, match="make_tiny_gguf"):
        make_tiny_gguf(tmp_path / "bad.gguf", **kwargs)
    assert not (tmp_path / "bad.gguf").exists()


def test_unwritable_target_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    target = blocker / "m.gguf"
    with pytest.raises(PromptkitError) as info:
        make_tiny_gguf(target)
    assert str(target) in str(info.value)
