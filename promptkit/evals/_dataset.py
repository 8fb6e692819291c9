"""Eval datasets: JSONL, JSON, CSV or YAML rows (optionally gzipped), mapped onto template inputs.

Every row becomes an :class:`Item` with an id, the template inputs, the expected answer and the whole row
(scorers such as ``code_exec`` read other columns from it). Problems name ``file:line`` and the field.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from promptkit.errors import EvalError, file_location

__all__ = [
    "DatasetSpec",
    "SplitSpec",
    "in_report_part",
    "Item",
    "DatasetFormat",
    "load_dataset",
    "infer_format",
    "get_field",
]

DatasetFormat = Literal["jsonl", "json", "csv", "yaml"]
_SUFFIXES: dict[str, DatasetFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".yaml": "yaml",
    ".yml": "yaml",
}


class SplitSpec(BaseModel):
    """A fixed development/report split: example selection and distillation use ``dev`` items only, so
    the figures reported on ``report`` items never saw them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    part: Literal["dev", "report"]
    report_fraction: float = Field(default=0.5, gt=0, lt=1)
    seed: int = 0


class DatasetSpec(BaseModel):
    """Where the items come from and how their fields map onto the template's inputs.

    ``inputs`` maps a template input name to a dataset field (dotted paths reach into objects); without it
    every field except the id and the expected one is passed as an input of the same name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    format: DatasetFormat | None = None
    id_field: str | None = None
    inputs: dict[str, str] | None = None
    expected: str | None = None
    limit: int | None = Field(default=None, ge=1)
    split: SplitSpec | None = None


def in_report_part(item_id: str, split: SplitSpec) -> bool:
    """Whether ``item_id`` falls in the report part: a hash of the seed and the id, so the split is stable
    however the file is ordered or extended."""
    digest = hashlib.sha256(f"{split.seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < split.report_fraction


@dataclass(frozen=True)
class Item:
    """One dataset row: its id, the template inputs, the expected answer, the raw row and where it is."""

    id: str
    inputs: dict[str, Any]
    expected: Any = None
    row: dict[str, Any] = field(default_factory=dict)
    location: str = ""


def infer_format(path: Path) -> DatasetFormat:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    found = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if found is None:
        raise EvalError(
            "cannot tell the dataset format from the file name; set dataset.format to jsonl, json, csv or yaml",
            location=str(path),
        )
    return found


def get_field(row: dict[str, Any], name: str) -> Any:
    """``row[name]``, following dots into nested objects; a missing field returns a sentinel-free KeyError."""
    if name in row:
        return row[name]
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(name)
        value = value[part]
    return value


def _read_text(path: Path) -> str:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return handle.read()
        return path.read_text(encoding="utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise EvalError(
            f"cannot read the dataset: {getattr(exc, 'strerror', None) or exc}", location=str(path)
        ) from None


def _rows(path: Path, fmt: DatasetFormat) -> Iterator[tuple[dict[str, Any], int | None]]:
    text = _read_text(path)
    if fmt == "jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalError(f"invalid JSON: {exc.msg}", location=file_location(path, number)) from None
            yield _object(row, path, number), number
    elif fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvalError(f"invalid JSON: {exc.msg}", location=file_location(path, exc.lineno)) from None
        if not isinstance(data, list):
            raise EvalError("a JSON dataset must be a list of objects", location=str(path))
        for row in data:
            yield _object(row, path, None), None
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            if None in row:  # more cells than header columns
                raise EvalError(
                    "the row has more cells than the header", location=file_location(path, reader.line_num)
                )
            yield dict(row), reader.line_num
    else:
        from promptkit.prompts import load_yaml

        data, lines = load_yaml(text, str(path), EvalError)
        if not isinstance(data, list):
            raise EvalError("a YAML dataset must be a list of mappings", location=lines.where(()))
        for index, row in enumerate(data):
            yield _object(row, path, lines.line((index,))), lines.line((index,))


def _object(row: Any, path: Path, line: int | None) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise EvalError(
            f"each row must be an object, got {type(row).__name__}", location=file_location(path, line)
        )
    return row


def load_dataset(spec: DatasetSpec, *, base: Path | None = None) -> list[Item]:
    """Read every item of ``spec`` (relative paths are resolved against ``base``, the suite's folder)."""
    path = Path(spec.path).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    fmt = spec.format or infer_format(path)
    items: list[Item] = []
    seen: dict[str, str] = {}
    for index, (row, line) in enumerate(_rows(path, fmt)):
        if spec.limit is not None and len(items) >= spec.limit:
            break
        where = file_location(path, line)
        if spec.id_field is not None:
            try:
                item_id = str(get_field(row, spec.id_field))
            except KeyError:
                raise EvalError(
                    f"the row has no id field {spec.id_field!r}", location=f"{where}: {spec.id_field}"
                ) from None
        else:
            item_id = str(index)
        if spec.split is not None and in_report_part(item_id, spec.split) != (spec.split.part == "report"):
            continue
        if item_id in seen:
            raise EvalError(f"duplicate item id {item_id!r} (first at {seen[item_id]})", location=where)
        seen[item_id] = where
        expected: Any = None
        if spec.expected is not None:
            try:
                expected = get_field(row, spec.expected)
            except KeyError:
                raise EvalError(
                    f"the row has no expected field {spec.expected!r}", location=f"{where}: {spec.expected}"
                ) from None
        if spec.inputs is not None:
            inputs: dict[str, Any] = {}
            for name, source in spec.inputs.items():
                try:
                    inputs[name] = get_field(row, source)
                except KeyError:
                    raise EvalError(
                        f"the row has no field {source!r} (for input {name!r})", location=f"{where}: {source}"
                    ) from None
        else:
            skip = {spec.id_field, spec.expected}
            inputs = {k: v for k, v in row.items() if k not in skip}
        items.append(Item(id=item_id, inputs=inputs, expected=expected, row=row, location=where))
    if not items:
        raise EvalError("the dataset has no items", location=str(path))
    return items
