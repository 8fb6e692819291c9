"""Small text scanning with no dependencies, shared by planning (a spec's signatures) and execution (calls in
docstring examples): importing it loads nothing else."""

from __future__ import annotations

__all__ = ["closing_bracket"]


def closing_bracket(text: str, start: int) -> int | None:
    """The index just past the bracket that closes the one at ``text[start]`` (quotes respected), or None."""
    depth, quote = 0, ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None
