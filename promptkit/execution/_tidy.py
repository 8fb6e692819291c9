"""Deterministic repairs of model-written Python, applied before its verifiers run.

A missing import or an unused variable costs a small local model a whole round trip (half a minute to a
minute on a CPU) and often more than one: it is the most common way Qwen2.5-Coder 0.5B/1.5B answers failed
in the scaffold runs. These fixes only parse the code (ruff, ast); they never run it.
"""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

from promptkit.execution._verifiers import Ruff

__all__ = ["tidy_python", "ruff_fix", "add_missing_imports", "assert_bare_comparisons"]

# Names a model uses without importing them, and where they come from (first match wins: the project's own
# modules come before this table).
_KNOWN_NAMES = {
    "APIRouter": "fastapi",
    "Depends": "fastapi",
    "FastAPI": "fastapi",
    "HTTPException": "fastapi",
    "Query": "fastapi",
    "Request": "fastapi",
    "Response": "fastapi",
    "TestClient": "fastapi.testclient",
    "BaseModel": "pydantic",
    "Field": "pydantic",
    "ValidationError": "pydantic",
    "date": "datetime",
    "datetime": "datetime",
    "timedelta": "datetime",
    "Path": "pathlib",
    "Any": "typing",
    "Annotated": "typing",
    "Iterator": "collections.abc",
    "Iterable": "collections.abc",
    "Sequence": "collections.abc",
    "Counter": "collections",
    "defaultdict": "collections",
    "dataclass": "dataclasses",
    "field": "dataclasses",
}
_KNOWN_MODULES = {
    "fastapi", "pydantic", "pytest", "json", "os", "re", "sqlite3", "math", "datetime", "pathlib", "typing",
    "collections", "itertools", "functools", "dataclasses", "click", "string", "sys", "time", "uuid", "csv",
}  # fmt: skip


def _ruff(args: list[str], source: str, path: str, cwd: Path) -> str | None:
    """Ruff's standard output for ``source`` given on stdin as ``path``; None when ruff is missing or fails."""
    base = Ruff._command()
    if base is None:
        return None
    cmd = [*base, "check", "--no-cache", "--exit-zero", *args, "--stdin-filename", path, "-"]
    try:
        done = subprocess.run(cmd, input=source, capture_output=True, text=True, cwd=cwd, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _undefined(source: str, path: str, cwd: Path) -> list[str]:
    out = _ruff(["--select", "F821", "--output-format", "json"], source, path, cwd)
    try:
        found = json.loads(out or "[]")
    except json.JSONDecodeError:
        return []
    names = [item["message"].split("`")[1] for item in found if item.get("message", "").count("`") >= 2]
    return list(dict.fromkeys(names))


def _project_index(root: Path, own: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The workspace's modules (tests excluded): public top-level name -> the modules defining it, and
    module short name -> dotted module path."""
    names: dict[str, list[str]] = {}
    modules: dict[str, str] = {}
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root)
        if rel.as_posix() == own or rel.parts[0] == "tests" or rel.name.startswith("test_"):
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        modules.setdefault(module.rsplit(".", 1)[-1], module)
        for node in tree.body:
            defined = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined = [node.name]
            elif isinstance(node, ast.Assign):
                defined = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined = [node.target.id]
            for name in defined:
                if not name.startswith("_"):
                    names.setdefault(name, []).append(module)
    return names, modules


def _imported_modules(source: str) -> set[str]:
    """Modules the code imports from, counting ``from pkg import mod`` as using ``pkg.mod``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            used.add(node.module)
            used.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            used.update(alias.name for alias in node.names)
    return used


def _import_of(module: str) -> str:
    package, _, short = module.rpartition(".")
    return f"from {package} import {short}" if package else f"import {short}"


def add_missing_imports(source: str, path: str, root: Path) -> str:
    """``source`` with an import added for each undefined name that one place defines: a module or a public
    name of the project's own code (where several modules define a name, the one the code already uses),
    a well-known module (``fastapi.APIRouter`` without ``import fastapi``), or a short table of names models
    use without importing them. Names found nowhere are left for the verifiers to report."""
    missing = _undefined(source, path, root)
    if not missing:
        return source
    names, modules = _project_index(root, path)
    lines: list[str] = []
    used = _imported_modules(source)
    for name in missing:  # modules first: they decide which of several definitions a name comes from
        if name in modules:
            lines.append(_import_of(modules[name]))
            used.add(modules[name])
        elif name in _KNOWN_MODULES:
            lines.append(f"import {name}")
    for name in missing:
        if name in modules or name in _KNOWN_MODULES:
            continue
        found = names.get(name, [])
        preferred = [m for m in found if m in used] if len(found) > 1 else found
        if len(preferred) == 1:
            lines.append(f"from {preferred[0]} import {name}")
        elif not found and name in _KNOWN_NAMES:
            lines.append(f"from {_KNOWN_NAMES[name]} import {name}")
    if not lines:
        return source
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    # After the docstring and any __future__ import, before everything else.
    at = 0
    for node in tree.body:
        is_doc = isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant)
        if (is_doc and at == 0) or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            at = node.end_lineno or at
            continue
        break
    head = source.splitlines(keepends=True)
    return "".join([*head[:at], *(line + "\n" for line in lines), *head[at:]])


def ruff_fix(source: str, path: str, cwd: Path) -> str:
    """``source`` with ruff's safe fixes applied (unused imports, import order, stray whitespace), as the
    project's ruff configuration in ``cwd`` selects them, and unused variables' assignments dropped (their
    calls stay); unchanged when ruff is missing or fails."""
    # The safe fixes the configuration selects, then an unused variable's assignment (its call is kept).
    for extra in (["--fix", "--quiet"], ["--fix", "--quiet", "--unsafe-fixes", "--select", "F841"]):
        fixed = _ruff(extra, source, path, cwd)
        if fixed and fixed.strip():
            source = fixed
    return source


def assert_bare_comparisons(source: str, path: str) -> str:
    """In a test file, a comparison written as a statement of its own (``run(...) == (0, "", "")``, ruff's
    B015) gets the ``assert`` the model left out: as written it checks nothing, so the test passes on anything
    (and red-first tests are refused for it). Other files are returned unchanged."""
    name = path.rsplit("/", 1)[-1]
    if not (name.startswith("test_") or path.startswith("tests/")):
        return source
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    starts = sorted(
        (node.lineno, node.col_offset)
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and function.name.startswith("test")
        for node in ast.walk(function)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Compare)
    )
    if not starts:
        return source
    lines = source.splitlines(keepends=True)
    for lineno, col in reversed(starts):
        line = lines[lineno - 1]
        lines[lineno - 1] = line[:col] + "assert " + line[col:]
    return "".join(lines)


def tidy_python(source: str, path: str, root: Path) -> str:
    """Missing imports added, bare comparisons in tests asserted, then ruff's safe fixes (which also sort the
    imports just added)."""
    return ruff_fix(assert_bare_comparisons(add_missing_imports(source, path, root), path), path, root)
