"""A reader for the safetensors format, so that converting a model needs neither torch nor ``safetensors``.

The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte
range, then the raw little-endian buffers.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from promptkit.errors import BackendUnavailable

if TYPE_CHECKING:
    import numpy as np

__all__ = ["read_safetensors"]

_MAX_HEADER = 100 * 1024 * 1024  # the format's own limit; a bigger length means a corrupt file

_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",  # widened to float32 below
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor in ``path``, memory-mapped (BF16 is widened to float32). Raises ``BackendUnavailable``."""
    import numpy as np

    where = str(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) != 8:
                raise BackendUnavailable(
                    "not a safetensors file: shorter than its 8-byte header", location=where
                )
            (length,) = struct.unpack("<Q", head)
            if length > _MAX_HEADER:
                raise BackendUnavailable(f"not a safetensors file: header length {length}", location=where)
            header = json.loads(handle.read(length))
    except OSError as exc:
        raise BackendUnavailable(f"cannot read weights: {exc.strerror}", location=where) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackendUnavailable(f"not a safetensors file: bad JSON header ({exc})", location=where) from None

    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info.get("dtype", ""))
        if dtype is None:
            raise BackendUnavailable(
                f"tensor {name!r}: unsupported dtype {info.get('dtype')!r}", location=where
            )
        start, end = info["data_offsets"]
        shape = tuple(int(n) for n in info["shape"])
        if end > data.size or start > end:
            raise BackendUnavailable(
                f"tensor {name!r}: byte range beyond the end of the file", location=where
            )
        array = data[start:end].view(dtype).reshape(shape)
        if info["dtype"] == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = array
    return tensors
