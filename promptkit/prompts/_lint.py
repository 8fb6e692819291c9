"""Template lint: every problem in a set of files, each with its file and line."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from promptkit.errors import PromptkitError
from promptkit.prompts._jinja import RESERVED_NAMES

if TYPE_CHECKING:
    from promptkit.prompts._template import Template

__all__ = ["LintProblem", "lint_files", "lint_template"]

_LOCATION = re.compile(r"^(?P<file>.*?):(?P<line>\d+)$")


@dataclass(frozen=True)
class LintProblem:
    """One problem: ``file:line: message``. Warnings (e.g. an unused input) do not fail lint."""

    file: str
    line: int | None
    message: str
    severity: Literal["error", "warning"] = "error"
    template: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        kind = "warning: " if self.severity == "warning" else ""
        return f"{where}: {kind}{self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "severity": self.severity,
            "template": self.template,
        }


def _from_error(path: Path, exc: PromptkitError) -> LintProblem:
    file, line = str(path), None
    if exc.location:
        match = _LOCATION.match(exc.location)
        if match:
            file, line = match.group("file"), int(match.group("line"))
    return LintProblem(file, line, exc.message)


def lint_files(files: Iterable[Path], *, load: Callable[[Path], Template]) -> list[LintProblem]:
    problems: list[LintProblem] = []
    first_seen: dict[str, tuple[str, int | None]] = {}
    for path in files:
        try:
            template = load(path)
            _ = template.output_model  # imports `output: {model: ...}`, which loading leaves for first use
        except PromptkitError as exc:
            problems.append(_from_error(path, exc))
            continue
        except OSError as exc:
            problems.append(LintProblem(str(path), None, f"cannot read: {exc.strerror or exc}"))
            continue
        name_line = template.line_map.line(("name",))
        if template.name in first_seen:
            other_file, other_line = first_seen[template.name]
            other = f"{other_file}:{other_line}" if other_line is not None else other_file
            problems.append(
                LintProblem(
                    str(path),
                    name_line,
                    f"duplicate template name {template.name!r} (also in {other})",
                    template=template.name,
                )
            )
        else:
            first_seen[template.name] = (str(path), name_line)
        problems += lint_template(template)
    return problems


def _line_of_name(template: Template, index: int, name: str) -> int | None:
    """The file line where message ``index`` first mentions ``name`` (else the message's own line)."""
    spec = template.message_specs[index]
    items = (
        [(("messages", index, "examples", j), m) for j, m in enumerate(spec.messages)]
        if hasattr(spec, "messages")
        else [(("messages", index), spec)]
    )
    word = re.compile(rf"\b{re.escape(name)}\b")
    for path, item in items:
        for number, text in enumerate(item.source.splitlines(), start=1):
            if word.search(text):
                return template.line_map.content_line((*path, "content"), number)
    return template.line_map.line(("messages", index))


def lint_template(template: Template) -> list[LintProblem]:
    """Checks beyond loading: undefined and unused variables, and that every example renders."""
    problems: list[LintProblem] = []
    file = template.source or template.name
    lines = template.line_map
    declared = set(template.inputs)
    used: set[str] = set()
    undefined = False
    for index, names in template.variables().items():
        spec = template.message_specs[index]
        allowed = declared | {"examples", "output_schema"}
        if hasattr(spec, "messages"):  # an examples block
            allowed.add("example")
        used |= names
        for name in sorted(names - allowed):
            undefined = True
            hint = " (only inside an examples block)" if name == "example" else ""
            problems.append(
                LintProblem(
                    file,
                    _line_of_name(template, index, name),
                    f"message {index} uses undefined variable {name!r}{hint}; declare it under inputs",
                    template=template.name,
                )
            )
    for name in sorted(declared - used):
        problems.append(
            LintProblem(
                file,
                lines.line(("inputs", name)),
                f"input {name!r} is declared but no message uses it",
                severity="warning",
                template=template.name,
            )
        )
    if template.examples and not (used & RESERVED_NAMES - {"output_schema"}):
        problems.append(
            LintProblem(
                file,
                lines.line(("examples",)),
                "the template has examples but no message shows them (use an examples block or `examples`)",
                severity="warning",
                template=template.name,
            )
        )
    if not undefined:
        for example in template.examples:
            try:
                # Alone, so a failure points at this example and not at a neighbour in the block.
                template.render_messages(dict(example.inputs), [example])
            except PromptkitError as exc:
                problems.append(
                    LintProblem(
                        file,
                        lines.line(("examples", example.index)),
                        f"example {example.index + 1} does not render: {exc}",
                        template=template.name,
                    )
                )
    return problems
