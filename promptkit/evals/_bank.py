"""Few-shot banks: verified examples for a template, stored as a versioned JSONL file.

The first line describes the bank, every other line is one example::

    {"promptkit_bank": 1, "template": "complete_function", "template_hash": "…", "source": "model:local:…",
     "split": "dev", "verified_by": ["code_exec"], "created_at": 1765000000.0}
    {"id": "HumanEval/2", "inputs": {"code": "def …"}, "output": "    return …"}

A suite variant uses one with ``example_bank: path.jsonl``; the template's own examples are replaced, the
variant's ``examples:`` selection (``first_k:3``, ``similar_k:3``) picks from the bank, and the template's
hash follows the bank's content, so a report names exactly which examples it ran with.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptkit.errors import EvalError

__all__ = ["Bank", "BANK_FORMAT", "load_bank", "write_bank"]

BANK_FORMAT = 1


@dataclass(frozen=True)
class Bank:
    meta: dict[str, Any]
    examples: list[dict[str, Any]] = field(default_factory=list)  # {"inputs": ..., "output": ...}
    ids: list[str] = field(default_factory=list)


def load_bank(path: str | Path) -> Bank:
    """Read a bank; a malformed line is an :class:`EvalError` naming ``file:line``."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"cannot read the few-shot bank: {exc.strerror or exc}", location=str(path)) from None
    meta: dict[str, Any] | None = None
    examples: list[dict[str, Any]] = []
    ids: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"not JSON: {exc.msg}", location=where) from None
        if not isinstance(row, dict):
            raise EvalError("each line must be a JSON object", location=where)
        if meta is None:
            if row.get("promptkit_bank") != BANK_FORMAT:
                raise EvalError(
                    f'the first line must be the bank header {{"promptkit_bank": {BANK_FORMAT}, ...}}',
                    location=where,
                )
            meta = row
            continue
        if not isinstance(row.get("inputs"), dict) or "output" not in row:
            raise EvalError('an example needs "inputs" (an object) and "output"', location=where)
        examples.append({"inputs": row["inputs"], "output": row["output"]})
        ids.append(str(row.get("id", len(ids))))
    if meta is None:
        raise EvalError("the few-shot bank is empty (no header line)", location=str(path))
    if not examples:
        raise EvalError("the few-shot bank holds no examples", location=str(path))
    return Bank(meta=meta, examples=examples, ids=ids)


def write_bank(path: str | Path, meta: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]) -> int:
    """Write a bank atomically (a reader never sees half a bank); returns the number of examples."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps({"promptkit_bank": BANK_FORMAT, **meta}, sort_keys=True) + "\n")
            for row in rows:
                out.write(json.dumps(dict(row), sort_keys=True, ensure_ascii=False) + "\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
