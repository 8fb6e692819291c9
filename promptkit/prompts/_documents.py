"""The one reader of YAML/JSON documents: values plus the line each key came from, so that every problem is
reported as ``file:line: field: problem`` in the caller's own error class.

Templates (``TemplateLoadError``), app specs and playbooks (``SpecError``, ``PlanError``) and eval suites
(``EvalError``) all read their files here; each passes its error class instead of re-wrapping ours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from promptkit.errors import PromptkitError, TemplateLoadError, file_location

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "LineMap",
    "Path_",
    "Document",
    "load_yaml",
    "read_text",
    "read_document",
    "parse_document",
    "field_path",
    "validation_problem",
    "raise_validation",
]

# A position inside the loaded document: keys and list indexes from the root.
Path_ = tuple[Any, ...]

try:  # the C loader is ~10x faster; fall back to the pure-Python one where libyaml is missing
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader


@dataclass
class LineMap:
    """1-based line numbers of keys and values, by path."""

    source: str
    key_lines: dict[Path_, int] = field(default_factory=dict)
    # (line of the value's first character, YAML scalar style: None, '|', '>', "'", '"')
    value_starts: dict[Path_, tuple[int, str | None]] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """The line of ``path``'s key (or list item), else of the closest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.key_lines.get(path[:end])
            if found is not None:
                return found
        return None

    def where(self, path: Path_) -> str:
        line = self.line(path)
        return f"{self.source}:{line}" if line is not None else self.source

    def content_line(self, path: Path_, inner_line: int) -> int | None:
        """Map line ``inner_line`` (1-based) of a multi-line string value to a line of the file."""
        start = self.value_starts.get(path)
        if start is None:
            return self.line(path)
        line, style = start
        # Block scalars (| and >) begin on the line after their indicator.
        return line + inner_line if style in ("|", ">") else line + inner_line - 1


class Document:
    """Parsed data, where it came from, and (when known) the line of each part."""

    __slots__ = ("data", "source", "lines", "text")

    def __init__(self, data: Any, source: str, lines: LineMap | None = None, text: str | None = None) -> None:
        self.data = data
        self.source = source
        self.lines = lines
        self.text = text

    def line(self, path: Sequence[Any]) -> int | None:
        return self.lines.line(tuple(path)) if self.lines is not None else None

    def where(self, path: Sequence[Any]) -> str:
        """``file:line: field`` for a position in the document (the parts that are known)."""
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


def load_yaml(text: str, source: str, error: type[PromptkitError] = TemplateLoadError) -> tuple[Any, LineMap]:
    """Parse one YAML document into plain Python data plus a :class:`LineMap`; problems raise ``error``.

    Duplicate keys are an error (PyYAML would silently keep the last one).
    """
    lines = LineMap(source)
    loader = _BaseLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise error("the file is empty", location=f"{source}:1")
        lines.key_lines[()] = node.start_mark.line + 1  # problems with the document as a whole
        data = _build(loader, node, (), lines, error)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            problem = f"{problem} ({context} started at line {context_mark.line + 1})"
        raise error(f"invalid YAML: {problem}", location=f"{source}:{line}") from None
    finally:
        loader.dispose()
    return data, lines


def read_text(path: Path | str, error: type[PromptkitError], *, what: str = "document") -> str:
    """The file's text; an unreadable or non-UTF-8 file raises ``error`` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read the {what}: {exc.strerror or exc}", location=str(path)) from None
    except UnicodeDecodeError as exc:
        raise error(f"the {what} is not UTF-8 text: {exc.reason}", location=str(path)) from None


def parse_document(
    text: str, source: str, error: type[PromptkitError], *, json_text: bool = False
) -> Document:
    """Parse YAML (or, with ``json_text``, JSON) text; every problem raises ``error`` at ``file:line``."""
    if not json_text:
        data, lines = load_yaml(text, source, error)
        return Document(data, source, lines, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc.msg}", location=f"{source}:{exc.lineno}") from None
    # JSON is (nearly) YAML: the YAML loader is used only to learn the lines, never for the values.
    json_lines: LineMap | None
    try:
        _, json_lines = load_yaml(text, source, error)
    except PromptkitError:
        json_lines = None
    return Document(data, source, json_lines, text)


def read_document(path: Path | str, error: type[PromptkitError], *, what: str = "document") -> Document:
    """Read a ``.yaml``/``.yml``/``.json`` file; every problem raises ``error`` located at ``file:line``."""
    text = read_text(path, error, what=what)
    return parse_document(text, str(path), error, json_text=Path(path).suffix.lower() == ".json")


def validation_message(err: Any) -> str:
    """One pydantic error (a dict of ``ValidationError.errors()``) in the words every document uses."""
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '').replace(' or ', ', ')}"
    if kind == "string_pattern_mismatch":
        return f"does not match the required pattern {ctx.get('pattern')}"
    return str(msg).removeprefix("Value error, ")


def document_path(data: Any, loc: Sequence[Any]) -> Path_:
    """``loc`` reduced to the keys and indexes of ``data``: pydantic adds union members and validator names
    (``function-after[...]``) that the document does not have. A missing last key is kept."""
    out: list[Any] = []
    node = data
    for n, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif n == len(loc) - 1 and isinstance(node, dict) and not _tag(part):
            out.append(part)
    return tuple(out)


def _tag(part: Any) -> bool:
    return isinstance(part, str) and part.startswith("function-")


def validation_problem(exc: ValidationError, data: Any) -> tuple[Path_, str]:
    """The first problem of ``exc`` as (its path in ``data``, its message), counting the others."""
    problems = exc.errors(include_url=False)
    first = problems[0]
    message = validation_message(first)
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return document_path(data, first["loc"]), message


def raise_validation(exc: ValidationError, doc: Document, error: type[PromptkitError]) -> NoReturn:
    """Raise ``error`` for the first problem in ``exc`` at its ``file:line: field``."""
    path, message = validation_problem(exc, doc.data)
    raise error(message, location=doc.where(path)) from None


def _build(loader: Any, node: yaml.Node, path: Path_, lines: LineMap, error: type[PromptkitError]) -> Any:
    if isinstance(node, yaml.ScalarNode):
        lines.value_starts[path] = (node.start_mark.line + 1, node.style)
        return loader.construct_object(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        out = []
        for index, child in enumerate(node.value):
            lines.key_lines[(*path, index)] = child.start_mark.line + 1
            out.append(_build(loader, child, (*path, index), lines, error))
        return out
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve `<<: *anchor` merges
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            where = f"{lines.source}:{key_node.start_mark.line + 1}"
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise error("mapping keys must be plain scalars", location=where)
            if key in mapping:
                raise error(f"duplicate key {key!r}", location=where)
            lines.key_lines[(*path, key)] = key_node.start_mark.line + 1
            mapping[key] = _build(loader, value_node, (*path, key), lines, error)
        return mapping
    raise error(  # pragma: no cover - PyYAML has only these three node kinds
        f"unsupported YAML node {type(node).__name__}", location=f"{lines.source}:{node.start_mark.line + 1}"
    )
