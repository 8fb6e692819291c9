"""A Python file's outline: what a model needs to *use* a module, at a fraction of its tokens.

Imports, short module-level assignments, decorators, class fields and every signature with the first line of
its docstring; bodies become ``...``. A model writing a feature against ``db.py`` needs ``create_todo(conn,
data) -> Todo``, not the SQL inside it, and on a CPU every prompt token costs prefill time.
"""

from __future__ import annotations

import ast

__all__ = ["outline_python", "stub_prefix"]

_SHORT = 160  # longer module-level assignments are cut to their name...
_SHORT_TEXT = 800  # ...except string constants (an SQL schema is what a query needs)


def _doc_line(node: ast.AST) -> str | None:
    doc = ast.get_docstring(node, clean=True)  # type: ignore[arg-type]
    return doc.strip().splitlines()[0] if doc and doc.strip() else None


def _header(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, source: str) -> str:
    """The decorators and the ``def``/``class`` line(s), up to the body."""
    lines = source.splitlines()
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    body = node.body[0]
    if body.lineno > node.lineno:
        header = lines[start - 1 : body.lineno - 1]
        while header and (not header[-1].strip() or header[-1].lstrip().startswith("#")):
            header.pop()  # blank lines and comments between the header and the body
    else:  # `def f(): return 1` on one line
        header = [*lines[start - 1 : node.lineno - 1], lines[node.lineno - 1][: body.col_offset].rstrip()]
    return "\n".join(header).rstrip()


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, source: str, indent: str) -> list[str]:
    header = _header(node, source)
    doc = _doc_line(node)
    body = f'{indent}    """{doc}"""\n{indent}    ...' if doc else f"{indent}    ..."
    return [header, body]


def _class(node: ast.ClassDef, source: str) -> list[str]:
    out = [_header(node, source)]
    doc = _doc_line(node)
    if doc:
        out.append(f'    """{doc}"""')
    for item in node.body:
        if isinstance(item, (ast.AnnAssign, ast.Assign)):
            text = ast.get_source_segment(source, item) or ""
            out.append("    " + (text if len(text) <= _SHORT else text.split("=")[0].rstrip() + " = ..."))
        elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.extend(_function(item, source, "    "))
    if len(out) == 1 or (doc and len(out) == 2):
        out.append("    ...")
    return out


def outline_python(source: str) -> str | None:
    """The outline of ``source``; None when it does not parse (the caller shows the file as it is)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    out: list[str] = []
    doc = _doc_line(tree)
    if doc:
        out.append(f'"""{doc}"""')
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(ast.get_source_segment(source, node) or "")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            text = ast.get_source_segment(source, node) or ""
            is_text = isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            limit = _SHORT_TEXT if is_text else _SHORT
            out.append(text if len(text) <= limit else text.split("=")[0].rstrip() + " = ...")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.startswith("_"):
                continue  # private helpers: a caller has no business with them
            out.append("")
            out.extend(_function(node, source, ""))
        elif isinstance(node, ast.ClassDef):
            out.append("")
            out.extend(_class(node, source))
    return "\n".join(out).strip() + "\n"


def stub_prefix(source: str) -> str:
    """``source`` up to its first ``...`` body line (a declared function to complete), without trailing blank
    lines; the whole text when nothing is left to complete."""
    lines = source.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == "..." and index > 0:
            return "\n".join(lines[:index]).rstrip()
    return source.rstrip()
