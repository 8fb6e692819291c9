"""File edits from a model's answer: whole files or unified diffs, and a small strict diff applier.

Accepted answer shapes (a pydantic output or plain JSON):

    {"files": [{"path": "a.py", "content": "..."}]}        # whole files
    {"files": [{"path": "a.py", "diff": "@@ -1,2 +1,2 @@..."}]}
    {"path": "a.py", "diff": "..."}                          # one edit
    FilesAnswer (fenced blocks under path lines)             # whole files, promptkit.prompts.FilesAnswer
    "--- a/a.py\\n+++ b/a.py\\n@@ ..."                         # a free-text multi-file unified diff

The applier is strict on purpose: every context and removed line must match exactly (no fuzz), so a model's
stale diff fails loudly with the hunk and line that do not match, and the message goes back to the model.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promptkit.errors import WorkspaceError

__all__ = ["FileEdit", "parse_edits", "apply_unified_diff", "split_unified_diff", "render_diff"]

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_NO_NEWLINE = "\\ No newline at end of file"


@dataclass(frozen=True)
class FileEdit:
    """One change to one file: new ``content``, or a unified ``diff`` against it, or ``delete``."""

    path: str
    content: str | None = None
    diff: str | None = None
    delete: bool = False

    def apply(self, current: str | None) -> str | None:
        """The file's new text (None = deleted) given its current text (None = missing)."""
        if self.delete:
            return None
        if self.content is not None:
            return self.content
        assert self.diff is not None
        return apply_unified_diff(current, self.diff, path=self.path)


def _edit_from_mapping(item: Mapping[str, Any], where: str) -> FileEdit:
    path = item.get("path")
    if not isinstance(path, str) or not path:
        raise WorkspaceError("each edit needs a 'path' string", location=where)
    content, diff, delete = item.get("content"), item.get("diff"), bool(item.get("delete", False))
    given = sum(x is not None for x in (content, diff)) + int(delete)
    if given != 1:
        raise WorkspaceError(
            "each edit needs exactly one of 'content' (the whole file), 'diff' (a unified diff) or 'delete'",
            location=f"{where} ({path})",
        )
    if content is not None and not isinstance(content, str):
        raise WorkspaceError("'content' must be a string", location=f"{where} ({path})")
    if diff is not None and not isinstance(diff, str):
        raise WorkspaceError("'diff' must be a string", location=f"{where} ({path})")
    return FileEdit(path=path, content=content, diff=diff, delete=delete)


def _name_unnamed(items: list[Any], allowed: Sequence[str]) -> list[Any]:
    unnamed = [i for i, item in enumerate(items) if isinstance(item, Mapping) and item.get("path") is None]
    if len(unnamed) != 1:
        return items
    named = {item.get("path") for item in items if isinstance(item, Mapping)}
    free = [p for p in allowed if not any(c in p for c in "*?[") and p not in named]
    if not free:
        return items
    items[unnamed[0]] = {**items[unnamed[0]], "path": free[0]}
    return items


def _plain(output: Any) -> Any:
    dump = getattr(output, "model_dump", None)
    return dump() if callable(dump) else output


def parse_edits(output: Any, allowed: Sequence[str] = ()) -> list[FileEdit]:
    """The edits in a model's answer (see the module docstring); ``WorkspaceError`` when there are none.

    A fenced-block answer whose one file has no path line gets the first of ``allowed`` (plain paths, not
    globs) that no other edit names: small models often write just the code block for a one-file step.
    """
    data = _plain(output)
    if isinstance(data, str):
        text = data.strip()
        if text.startswith(("{", "[")):
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                pass
        if isinstance(data, str):
            return [FileEdit(path=path, diff=diff) for path, diff in split_unified_diff(data)]
    if isinstance(data, Mapping) and "files" in data:
        items = data["files"]
    elif isinstance(data, Mapping) and "edits" in data:
        items = data["edits"]
    elif isinstance(data, Mapping) and "path" in data:
        items = [data]
    else:
        items = data
    if not isinstance(items, list) or not items:
        raise WorkspaceError(
            "the answer holds no file edits: expected {files: [{path, content | diff}]}", location="answer"
        )
    items = _name_unnamed([_plain(item) for item in items], allowed)
    edits = []
    for index, item in enumerate(items):
        item = _plain(item)
        if not isinstance(item, Mapping):
            raise WorkspaceError(
                f"edit must be an object, got {type(item).__name__}", location=f"files[{index}]"
            )
        edits.append(_edit_from_mapping(item, f"files[{index}]"))
    seen: set[str] = set()
    for edit in edits:
        if edit.path in seen:
            raise WorkspaceError(
                "the answer edits this file twice; send one edit per file", location=edit.path
            )
        seen.add(edit.path)
    return edits


def _strip_prefix(name: str) -> str:
    name = name.split("\t", 1)[0].strip()
    if name.startswith(("a/", "b/")):
        return name[2:]
    return name


def split_unified_diff(text: str) -> list[tuple[str, str]]:
    """``(path, diff)`` per file in a multi-file unified diff (``--- a/x`` / ``+++ b/x`` headers)."""
    lines = text.splitlines(keepends=True)
    out: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = _strip_prefix(line[4:]), _strip_prefix(lines[i + 1][4:])
            path = old if new == "/dev/null" else new
            out.append((path, [line, lines[i + 1]]))
            i += 2
            continue
        if out:
            out[-1][1].append(line)
        elif line.strip() and not line.startswith(("diff ", "index ")):
            raise WorkspaceError(
                f"line {i + 1}: expected a '--- a/path' / '+++ b/path' header before {line.rstrip()!r}",
                location="diff",
            )
        i += 1
    if not out:
        raise WorkspaceError("no '--- a/path' / '+++ b/path' file header found", location="diff")
    return [(path, "".join(body)) for path, body in out]


def _parse_hunks(diff: str, path: str) -> tuple[list[tuple[int, int, int, int, list[str], int]], bool, bool]:
    """Hunks as (old_start, old_len, new_start, new_len, lines, diff_line), and whether the diff creates
    or deletes the file."""
    lines = diff.splitlines()
    hunks: list[tuple[int, int, int, int, list[str], int]] = []
    creates = deletes = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- "):
            creates = line[4:].split("\t", 1)[0].strip() == "/dev/null"
            i += 1
            continue
        if line.startswith("+++ "):
            deletes = line[4:].split("\t", 1)[0].strip() == "/dev/null"
            i += 1
            continue
        match = _HUNK.match(line)
        if match is None:
            if line.startswith(("diff ", "index ")) or not line.strip():
                i += 1
                continue
            raise WorkspaceError(
                f"diff line {i + 1}: expected a hunk header '@@ -a,b +c,d @@', got {line!r}", location=path
            )
        old_start, old_len = int(match.group(1)), int(match.group(2) or "1")
        new_start, new_len = int(match.group(3)), int(match.group(4) or "1")
        body: list[str] = []
        header_line = i + 1
        i += 1
        old_seen = new_seen = 0
        while i < len(lines) and (old_seen < old_len or new_seen < new_len):
            body_line = lines[i]
            if body_line == _NO_NEWLINE:
                body.append(body_line)
                i += 1
                continue
            tag = body_line[:1] if body_line else " "  # an empty line is an empty context line
            if tag not in (" ", "-", "+"):
                raise WorkspaceError(
                    f"diff line {i + 1}: hunk {len(hunks) + 1} is shorter than its header says "
                    f"(-{old_start},{old_len} +{new_start},{new_len})",
                    location=path,
                )
            if tag in (" ", "-"):
                old_seen += 1
            if tag in (" ", "+"):
                new_seen += 1
            body.append(body_line if body_line else " ")
            i += 1
        if old_seen != old_len or new_seen != new_len:
            raise WorkspaceError(
                f"diff line {header_line}: hunk {len(hunks) + 1} header says -{old_start},{old_len} "
                f"+{new_start},{new_len} but its body has {old_seen} old and {new_seen} new line(s)",
                location=path,
            )
        while i < len(lines) and lines[i] == _NO_NEWLINE:
            body.append(lines[i])
            i += 1
        hunks.append((old_start, old_len, new_start, new_len, body, header_line))
    if not hunks:
        raise WorkspaceError("the diff has no hunks", location=path)
    return hunks, creates, deletes


def apply_unified_diff(original: str | None, diff: str, *, path: str = "file") -> str | None:
    """Apply a unified diff to ``original`` (None: the file does not exist) exactly, or raise
    ``WorkspaceError`` naming the hunk, the line and the text that did not match. Returns None when the
    diff deletes the file."""
    hunks, creates, deletes = _parse_hunks(diff, path)
    if original is None and not creates:
        raise WorkspaceError(
            "the diff edits a file that does not exist (use '--- /dev/null' to create it)", location=path
        )
    if original is not None and creates and original != "":
        raise WorkspaceError(
            "the diff creates the file ('--- /dev/null') but it already exists", location=path
        )
    old_lines = (original or "").splitlines(keepends=True)
    out: list[str] = []
    cursor = 0  # index into old_lines of the next line not yet copied
    for number, (old_start, old_len, _new_start, _new_len, body, header_line) in enumerate(hunks, start=1):
        start = old_start - 1 if old_len > 0 else old_start  # "-5,0" inserts after line 5
        if start < cursor:
            raise WorkspaceError(
                f"hunk {number} (diff line {header_line}) overlaps or precedes the previous hunk",
                location=path,
            )
        if start > len(old_lines):
            raise WorkspaceError(
                f"hunk {number} (diff line {header_line}) starts at line {old_start} but the file has {len(old_lines)} line(s)",
                location=path,
            )
        out.extend(old_lines[cursor:start])
        position = start
        previous_tag = ""
        for body_line in body:
            if body_line == _NO_NEWLINE:
                # The line just before had no newline at the end.
                if previous_tag in (" ", "+") and out:
                    out[-1] = out[-1].rstrip("\n").rstrip("\r")
                continue
            tag, text = body_line[0], body_line[1:]
            previous_tag = tag
            if tag in (" ", "-"):
                actual = old_lines[position] if position < len(old_lines) else None
                if actual is None or actual.rstrip("\r\n") != text:
                    shown = "end of file" if actual is None else repr(actual.rstrip("\r\n"))
                    raise WorkspaceError(
                        f"hunk {number} (diff line {header_line}) does not apply: line {position + 1} is {shown}, "
                        f"the diff expects {text!r}",
                        location=path,
                    )
                if tag == " ":
                    out.append(actual)
                position += 1
            else:
                out.append(text + "\n")
        cursor = position
    out.extend(old_lines[cursor:])
    if deletes:
        if "".join(out) != "":
            raise WorkspaceError(
                "the diff deletes the file ('+++ /dev/null') but leaves lines in it", location=path
            )
        return None
    return "".join(out)


def render_diff(path: str, before: str | None, after: str | None) -> str:
    """A unified diff of one file's change, for showing to a person (``--confirm``) and in run logs."""
    old = (before or "").splitlines(keepends=True)
    new = (after or "").splitlines(keepends=True)
    lines = difflib.unified_diff(
        old,
        new,
        fromfile="/dev/null" if before is None else f"a/{path}",
        tofile="/dev/null" if after is None else f"b/{path}",
    )
    return "".join(line if line.endswith("\n") else f"{line}\n{_NO_NEWLINE}\n" for line in lines)
