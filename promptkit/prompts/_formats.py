"""Answer formats other than JSON: typed outputs that a model writes as ordinary text.

Small models write code well in a fenced block and badly inside a JSON string (escaped newlines and quotes,
prose in the code field): measured on Qwen2.5-Coder-0.5B, 14/20 HumanEval problems passed as a fenced block
against 9/20 as ``{"code": ...}``. A :class:`TextFormat` is a pydantic model that is parsed from, and shown in
examples as, such text; generate() sends it without a grammar or tool schema and parses the answer itself.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from pydantic import BaseModel, Field

__all__ = [
    "TextFormat",
    "FileText",
    "FilesAnswer",
    "SectionsAnswer",
    "sections_format",
    "TEXT_FORMATS",
    "close_open_fence",
]


def close_open_fence(text: str) -> str:
    """``text`` with its last code fence closed when it was left open: an answer cut at its closing fence
    (by a ``stop`` sequence, as prefilled code answers are) or by its token limit."""
    return text.rstrip() + "\n```" if text.count("```") % 2 else text


class TextFormat(BaseModel):
    """A typed output written as text. Subclasses implement :meth:`parse_text` and :meth:`to_text`."""

    format_name: ClassVar[str] = ""
    instructions: ClassVar[str] = ""

    @classmethod
    def parse_text(cls, text: str) -> TextFormat:  # pragma: no cover - abstract
        """The output in ``text``; ``ValueError`` saying what is wrong when it is not in the format."""
        raise NotImplementedError

    def to_text(self) -> str:  # pragma: no cover - abstract
        """The output written in the format (how few-shot examples show it)."""
        raise NotImplementedError


class FileText(BaseModel):
    path: str | None = Field(
        default=None, description="Workspace-relative path; None when the answer named none."
    )
    content: str
    language: str | None = None


# ``` or ~~~ fences; the closing fence must match the opening one and stand on its own line.
_BLOCK = re.compile(
    r"^(?P<fence>```+|~~~+)[ \t]*(?P<lang>[\w+#.-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.DOTALL | re.MULTILINE,
)
_PATH = re.compile(r"^[\w.\-]+(?:/[\w.\-]+)*\.\w+$|^[\w.\-]+(?:/[\w.\-]+)+$")
_LABEL = re.compile(r"^(?:file(?:name)?|path)\s*[:=]\s*", re.IGNORECASE)
_LANGUAGES = {
    ".py": "python",
    ".toml": "toml",
    ".md": "markdown",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
}


def _path_in(line: str) -> str | None:
    """A path written on a line of its own: `app/x.py`, **app/x.py**, ### FILE: app/x.py, `# path: x.py`."""
    text = line.strip().strip("#*`'\" ")
    text = _LABEL.sub("", text).strip("`*'\": ")
    return text if text and " " not in text and _PATH.match(text) else None


class FilesAnswer(TextFormat):
    """Files written as a path line followed by the whole file in a fenced code block, then short notes."""

    format_name: ClassVar[str] = "files"
    instructions: ClassVar[str] = (
        "Answer with each file you write as its path on a line of its own, followed by the file's complete "
        "content in a fenced code block:\n\npath/to/file.py\n```python\n<the whole file>\n```\n\n"
        "Write whole files, never excerpts. After the files, add at most two sentences of notes."
    )

    files: list[FileText] = Field(min_length=1)
    notes: str = ""

    @classmethod
    def parse_text(cls, text: str) -> FilesAnswer:
        stripped = text.strip()
        if stripped.startswith("{"):
            # The JSON shape ({"files": [{"path", "content"}], "notes"}) is accepted too: some models, and
            # answers recorded before this format, write it.
            try:
                data = json.loads(stripped)
            except json.JSONDecodeError:
                data = None
            if isinstance(data, dict) and "files" in data:
                return cls.model_validate(data)
        files: list[FileText] = []
        outside: list[str] = []
        position = 0
        for match in _BLOCK.finditer(text):
            before = text[position : match.start()]
            position = match.end()
            lines = [line for line in before.splitlines() if line.strip()]
            path = _path_in(lines[-1]) if lines else None
            if path is not None:
                lines = lines[:-1]
            outside.extend(lines)
            body = match.group("body")
            if path is None:
                first, _, rest = body.partition("\n")
                if first.lstrip().startswith(("#", "//")) and _path_in(first.lstrip("/ ")) is not None:
                    path = _path_in(first.lstrip("/ "))  # a first-line comment naming the file stays in it
            files.append(FileText(path=path, content=body, language=match.group("lang") or None))
        outside.extend(line for line in text[position:].splitlines() if line.strip())
        if not files:
            raise ValueError(
                "the answer has no fenced code block: write each file as its path on one line, then the "
                "whole file between ``` lines"
            )
        return cls(files=files, notes="\n".join(outside).strip()[:1500])

    def to_text(self) -> str:
        parts = []
        for item in self.files:
            suffix = "." + item.path.rsplit(".", 1)[-1] if item.path and "." in item.path else ""
            language = item.language or _LANGUAGES.get(suffix, "")
            body = item.content if item.content.endswith("\n") else item.content + "\n"
            parts.append(f"{item.path or ''}\n```{language}\n{body}```".lstrip("\n"))
        if self.notes.strip():
            parts.append(self.notes.strip())
        return "\n\n".join(parts)


def _title(field: str) -> str:
    return field.replace("_", " ").capitalize()


class SectionsAnswer(TextFormat):
    """Named text fields written as ``## Heading`` sections; code fields as a fenced block in theirs.

    Built per template by :func:`sections_format`; the fields are the model's string fields.
    """

    format_name: ClassVar[str] = "sections"
    code_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _heading(cls) -> re.Pattern[str]:
        names = "|".join(re.escape(_title(f)) + "|" + re.escape(f) for f in cls.model_fields)
        # "## Fix", "**Fix**", "Fix:" (with the text on the same line or below)
        return re.compile(
            rf"^[ \t]*(?:#{{1,6}}[ \t]*)?(?:\*\*)?(?P<name>{names})(?:\*\*)?[ \t]*:?(?:\*\*)?[ \t]*(?P<rest>.*)$",
            re.IGNORECASE | re.MULTILINE,
        )

    @classmethod
    def parse_text(cls, text: str) -> SectionsAnswer:
        by_title = {_title(f).lower(): f for f in cls.model_fields} | {f.lower(): f for f in cls.model_fields}
        found: dict[str, str] = {}
        matches = [m for m in cls._heading().finditer(text) if not _inside_block(text, m.start())]
        for index, match in enumerate(matches):
            field = by_title[match.group("name").lower()]
            end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
            body = (match.group("rest") + "\n" + text[match.end() : end]).strip()
            if field not in found:
                found[field] = body
        for field in cls.code_fields:
            block = _BLOCK.search(found.get(field, "")) or (None if field in found else _BLOCK.search(text))
            if block is not None:
                found[field] = block.group("body")
        missing = [_title(f) for f in cls.model_fields if not found.get(f, "").strip()]
        if missing:
            raise ValueError(
                f"missing section(s): {', '.join(missing)}; write each as a '## Name' heading followed by its text"
            )
        return cls.model_validate(found)

    def to_text(self) -> str:
        parts = []
        for field in type(self).model_fields:
            value = str(getattr(self, field)).strip("\n")
            if field in self.code_fields:
                value = f"```\n{value}\n```"
            parts.append(f"## {_title(field)}\n{value}")
        return "\n\n".join(parts)


def _inside_block(text: str, position: int) -> bool:
    return any(m.start() < position < m.end() for m in _BLOCK.finditer(text))


def sections_format(name: str, fields: dict[str, str]) -> type[SectionsAnswer]:
    """A :class:`SectionsAnswer` whose fields are ``fields`` (name -> "text" or "code"), in that order."""
    from pydantic import create_model

    bad = {k: v for k, v in fields.items() if v not in ("text", "code")}
    if not fields or bad:
        raise ValueError(f"sections need fields of kind 'text' or 'code', got {bad or fields!r}")
    model = create_model(name, __base__=SectionsAnswer, **{f: (str, ...) for f in fields})
    model.code_fields = tuple(f for f, kind in fields.items() if kind == "code")
    lines = []
    for field, kind in fields.items():
        body = "```\n<the whole corrected code>\n```" if kind == "code" else f"<the {_title(field).lower()}>"
        lines.append(f"## {_title(field)}\n{body}")
    model.instructions = "Answer with these sections, in this order:\n\n" + "\n\n".join(lines)
    return model


TEXT_FORMATS: dict[str, type[TextFormat]] = {FilesAnswer.format_name: FilesAnswer, "sections": SectionsAnswer}


def format_for(name: Any) -> type[TextFormat] | None:
    return TEXT_FORMATS.get(name) if isinstance(name, str) else None
