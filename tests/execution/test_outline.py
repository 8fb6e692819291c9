"""Outlines of the files a step only reads: signatures and docstrings, not bodies."""

from __future__ import annotations

from promptkit.execution._outline import outline_python

SOURCE = (
    '''"""Storage.

More words that the outline leaves out.
"""
import sqlite3
from typing import Annotated

SCHEMA = "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL)"
BIG = ['''
    + ", ".join(str(i) for i in range(100))
    + ''']


class ConflictError(Exception):
    """A write broke a UNIQUE constraint."""


class Todo:
    """A stored todo."""
    id: int
    title: str = "x"

    def done(self) -> bool:
        """Whether it is done."""
        return False


def _private(x):
    return x * 2


@app.get("/todos")
def list_todos(
    conn: sqlite3.Connection,
    limit: int = 10,
) -> list[dict]:  # a trailing comment
    """Every todo, oldest first."""
    rows = conn.execute("SELECT * FROM todos").fetchall()
    return [dict(r) for r in rows]


def one_line(x: int) -> int: return x
'''
)


def test_the_outline_keeps_what_a_caller_needs_and_drops_bodies() -> None:
    out = outline_python(SOURCE)
    assert out is not None
    assert out.startswith('"""Storage."""\nimport sqlite3\nfrom typing import Annotated\n')
    assert 'SCHEMA = "CREATE TABLE todos' in out, "a string constant (a schema) is kept"
    assert "BIG = ...\n" in out, "a long non-text value is cut to its name"
    assert 'class ConflictError(Exception):\n    """A write broke a UNIQUE constraint."""\n    ...' in out
    assert (
        '    id: int\n    title: str = "x"\n    def done(self) -> bool:\n        """Whether it is done."""'
        in out
    )
    assert (
        '@app.get("/todos")\ndef list_todos(\n    conn: sqlite3.Connection,\n    limit: int = 10,\n)' in out
    )
    assert '"""Every todo, oldest first."""\n    ...' in out
    assert "def one_line(x: int) -> int:\n    ..." in out
    assert "_private" not in out and "SELECT" not in out and "More words" not in out
    compile(out, "outline.py", "exec")  # still Python


def test_a_file_that_does_not_parse_has_no_outline() -> None:
    assert outline_python("def broken(:\n") is None
