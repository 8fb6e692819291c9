"""Name conversions shared by specs, plans and playbooks (slug, snake_case, PascalCase, plurals)."""

from __future__ import annotations

import keyword
import re

__all__ = [
    "SLUG",
    "SNAKE",
    "PASCAL",
    "PACKAGE",
    "snake_case",
    "kebab_case",
    "pluralize",
    "is_python_name",
]

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*$")

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(text: str) -> str:
    """``TodoItem`` / ``todo-item`` / ``Todo Item`` → ``todo_item``."""
    text = _CAMEL_BOUNDARY.sub("_", text.strip())
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def kebab_case(text: str) -> str:
    return snake_case(text).replace("_", "-")


def pluralize(word: str) -> str:
    """A plain English plural, good enough for table names and URL paths (``entry`` → ``entries``)."""
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    return word + "s"


def is_python_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
