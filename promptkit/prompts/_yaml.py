"""YAML loading that remembers where every key and value came from, so errors can name ``file:line``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from promptkit.errors import TemplateLoadError

__all__ = ["LineMap", "Path_", "load_yaml"]

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


def load_yaml(text: str, source: str) -> tuple[Any, LineMap]:
    """Parse one YAML document into plain Python data plus a :class:`LineMap`.

    Duplicate keys are an error (PyYAML would silently keep the last one).
    """
    lines = LineMap(source)
    loader = _BaseLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise TemplateLoadError("the file is empty", location=f"{source}:1")
        lines.key_lines[()] = node.start_mark.line + 1  # problems with the document as a whole
        data = _build(loader, node, (), lines)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            problem = f"{problem} ({context} started at line {context_mark.line + 1})"
        raise TemplateLoadError(f"invalid YAML: {problem}", location=f"{source}:{line}") from None
    finally:
        loader.dispose()
    return data, lines


def _build(loader: Any, node: yaml.Node, path: Path_, lines: LineMap) -> Any:
    if isinstance(node, yaml.ScalarNode):
        lines.value_starts[path] = (node.start_mark.line + 1, node.style)
        return loader.construct_object(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        out = []
        for index, child in enumerate(node.value):
            lines.key_lines[(*path, index)] = child.start_mark.line + 1
            out.append(_build(loader, child, (*path, index), lines))
        return out
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve `<<: *anchor` merges
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise TemplateLoadError(
                    "mapping keys must be plain scalars",
                    location=f"{lines.source}:{key_node.start_mark.line + 1}",
                )
            if key in mapping:
                raise TemplateLoadError(
                    f"duplicate key {key!r}", location=f"{lines.source}:{key_node.start_mark.line + 1}"
                )
            lines.key_lines[(*path, key)] = key_node.start_mark.line + 1
            mapping[key] = _build(loader, value_node, (*path, key), lines)
        return mapping
    raise TemplateLoadError(  # pragma: no cover - PyYAML has only these three node kinds
        f"unsupported YAML node {type(node).__name__}", location=f"{lines.source}:{node.start_mark.line + 1}"
    )
