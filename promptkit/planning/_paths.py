"""Workspace paths and allow-list globs, shared by plan validation and the executor."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import PurePosixPath

__all__ = ["path_problem", "is_glob", "path_allowed", "glob_to_regex"]

_DRIVE = re.compile(r"^[A-Za-z]:")


def path_problem(path: object) -> str | None:
    """Why ``path`` is not a safe workspace-relative POSIX path (or glob), or None when it is."""
    if not isinstance(path, str) or not path.strip():
        return "must be a non-empty string"
    if "\\" in path:
        return f"{path!r} must use '/' separators"
    if path.startswith(("/", "~")) or _DRIVE.match(path):
        return f"{path!r} is absolute; use a path relative to the workspace"
    parts = PurePosixPath(path).parts
    if ".." in parts:
        return f"{path!r} contains '..' and could escape the workspace"
    if "\x00" in path:
        return f"{path!r} contains a NUL byte"
    if path.endswith("/"):
        return f"{path!r} names a folder; use 'folder/**' for everything under it"
    return None


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


@lru_cache(maxsize=1024)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """``*`` matches within one folder, ``**`` across folders (``a/**`` is everything under ``a``), ``?``
    one character, ``[abc]`` one of a set; everything else is literal."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append(f"[{'^' + body[1:] if body.startswith('!') else body}]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _normal(path: str) -> str:
    return str(PurePosixPath(path)) if path else path


def path_allowed(path: str, patterns: Iterable[str]) -> bool:
    """Whether workspace-relative ``path`` is covered by an allow-list of exact paths and globs."""
    if path_problem(path) is not None:
        return False
    target = _normal(path)
    for pattern in patterns:
        if is_glob(pattern):
            if glob_to_regex(_normal(pattern)).match(target):
                return True
        elif _normal(pattern) == target:
            return True
    return False
