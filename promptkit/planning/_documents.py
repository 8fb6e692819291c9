"""Reading YAML/JSON documents with line numbers, and turning validation errors into ``file:line: field``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from promptkit.errors import PromptkitError, TemplateLoadError, file_location

# Private on purpose: the one YAML loader that tracks lines lives in prompts (not exported there yet).
from promptkit.prompts import LineMap, load_yaml

__all__ = ["Document", "read_document", "field_path", "raise_validation"]


class Document:
    """Parsed data plus where each part came from (``lines`` is None when lines are unknown)."""

    def __init__(self, data: Any, source: str, lines: LineMap | None) -> None:
        self.data = data
        self.source = source
        self.lines = lines

    def line(self, path: Sequence[Any]) -> int | None:
        return self.lines.line(tuple(path)) if self.lines is not None else None

    def where(self, path: Sequence[Any]) -> str:
        return file_location(self.source, self.line(path), field_path(path) or None)


def field_path(path: Sequence[Any]) -> str:
    """``("entities", 0, "fields", 2, "type")`` → ``entities[0].fields[2].type``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_document(path: Path | str, error: type[PromptkitError], *, what: str = "document") -> Document:
    """Load a ``.yaml``/``.yml``/``.json`` file; every problem becomes ``error`` located at ``file:line``."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read the {what}: {exc.strerror or exc}", location=source) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"invalid JSON: {exc.msg}", location=f"{source}:{exc.lineno}") from None
        # JSON is (nearly) YAML: reuse the YAML loader only to learn the lines, never for the values.
        json_lines: LineMap | None
        try:
            _, json_lines = load_yaml(text, source)
        except TemplateLoadError:
            json_lines = None
        return Document(data, source, json_lines)
    try:
        data, lines = load_yaml(text, source)
    except TemplateLoadError as exc:
        raise error(exc.message, location=exc.location) from None
    return Document(data, source, lines)


def _message(err: Any) -> str:
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '').replace(' or ', ', ')}"
    if kind == "value_error":
        return str(msg).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return f"does not match the required pattern {ctx.get('pattern')}"
    return str(msg)


def raise_validation(
    exc: ValidationError, doc: Document, error: type[PromptkitError], *, prefix: Sequence[Any] = ()
) -> None:
    """Raise ``error`` for the first problem in ``exc``, at its ``file:line: field`` (and count the rest)."""
    problems = exc.errors(include_url=False)
    first = problems[0]
    path = [*prefix, *(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))]
    message = _message(first)
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    raise error(message, location=doc.where(path)) from None
