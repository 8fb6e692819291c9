"""The layout is the architecture: dependencies point one way, and public names are what __all__ says."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import promptkit

PACKAGE = Path(promptkit.__file__).parent

# Lower number = lower layer. A module may import from its own layer's package or from lower layers.
LAYERS: dict[str, int] = {
    "_package_data": 0,
    "_plugins": 0,
    "_sqlite": 0,
    "_text": 0,
    "errors": 0,
    "types": 0,
    "config": 0,
    "tracing": 0,
    "models": 1,
    "prompts": 2,
    "backends": 2,
    "embeddings": 3,
    "cache": 4,
    "ledger": 4,
    "routing": 5,
    "generation": 6,
    "planning": 7,
    "execution": 8,
    "evals": 9,
    "cli": 10,
}


def _unit(module_path: Path) -> str:
    rel = module_path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0] if rel.parts else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] == "promptkit"]


def test_every_package_has_a_layer():
    units = {_unit(p) for p in PACKAGE.rglob("*.py")} - {"__init__", "__main__"}
    assert units <= set(LAYERS), f"give these a layer in LAYERS: {sorted(units - set(LAYERS))}"


def test_dependencies_point_one_way():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        if unit not in LAYERS:
            continue
        for line, name in _imports(path):
            parts = name.split(".")
            if len(parts) < 2:
                # `import promptkit` / `from promptkit import x` loads the top package, which reaches every layer.
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {unit} imports the top package")
                continue
            target = parts[1]
            if target == unit or target not in LAYERS:
                continue
            base_to_base = LAYERS[target] == LAYERS[unit] == 0  # config may use errors and types
            if LAYERS[target] >= LAYERS[unit] and not base_to_base:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {unit} imports {name}")
    assert not problems, "imports against the layer order:\n" + "\n".join(problems)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[ast.AST]:
    """The import statements inside ``if TYPE_CHECKING:`` blocks (never run)."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        name = (
            test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
        )
        if name == "TYPE_CHECKING":
            for statement in node.body:  # type: ignore[attr-defined]
                found.update(ast.walk(statement))
    return found


def _import_graph(*, type_checking: bool) -> dict[str, dict[str, int]]:
    """module -> {imported module: line}, for every import in the package, those inside functions too, and
    those under ``if TYPE_CHECKING:`` when ``type_checking``. ``from pkg import sub`` is an edge to
    ``pkg.sub`` when that is a module."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, dict[str, int]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = set() if type_checking else _type_checking_nodes(tree)
        edges: dict[str, int] = {}
        for node in ast.walk(tree):
            targets: list[str] = []
            if node in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in files else node.module
                    for alias in node.names
                ]
            for target in targets:
                if target in files and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def _circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def _describe(graph: dict[str, dict[str, int]], group: list[str]) -> str:
    members = set(group)
    edges = [
        f"  {module} imports {target} (line {line})"
        for module in group
        for target, line in sorted(graph[module].items())
        if target in members
    ]
    return " <-> ".join(group) + "\n" + "\n".join(edges)


def test_no_import_circles():
    """No circle among the imports that run: each module of a package sits below the ones it imports."""
    graph = _import_graph(type_checking=False)
    problems = [_describe(graph, group) for group in _circles(graph)]
    assert not problems, "import circles:\n" + "\n".join(problems)


# Circles closed only by imports under `if TYPE_CHECKING:`, which other work in issue 15 is breaking. Listed so
# that no new one appears, and checked to still exist so that an entry goes once its circle is broken.
KNOWN_TYPE_ONLY_CIRCLES: list[list[str]] = []


def test_no_import_circles_even_through_type_annotations():
    """Nor through ``TYPE_CHECKING`` imports: a module that only names another's type still depends on it
    (``prompts/_budget`` takes a ``Fittable`` protocol instead of naming ``Template``)."""
    graph = _import_graph(type_checking=True)
    circles = _circles(graph)
    problems = [_describe(graph, group) for group in circles if group not in KNOWN_TYPE_ONLY_CIRCLES]
    assert not problems, "import circles through type annotations:\n" + "\n".join(problems)
    gone = [group for group in KNOWN_TYPE_ONLY_CIRCLES if group not in circles]
    assert not gone, f"these circles are broken now: remove them from KNOWN_TYPE_ONLY_CIRCLES: {gone}"


def test_the_circle_finder_finds_circles():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}, "e": {}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b": 1}, "b": {}}) == []
    source = "from typing import TYPE_CHECKING\nimport os\nif TYPE_CHECKING:\n    import json\n"
    skipped = _type_checking_nodes(ast.parse(source))
    assert {n.names[0].name for n in skipped if isinstance(n, ast.Import)} == {"json"}


def test_public_names_resolve():
    assert set(promptkit.__all__) == {*promptkit._EXPORTS, "__version__"}
    for name in promptkit.__all__:
        assert getattr(promptkit, name) is not None, name


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_subpackage_all_resolves(package: str):
    module = importlib.import_module(f"promptkit.{package}")
    exported = getattr(module, "__all__", None)
    assert exported, f"promptkit.{package} must declare __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"promptkit.{package}.__all__ names what it does not define: {missing}"


def test_import_promptkit_stays_light():
    code = (
        "import sys, promptkit\n"
        "heavy = [m for m in ('litellm', 'llama_cpp', 'instructor', 'gguf', 'scipy', 'openai') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import promptkit pulled in: {out.stdout.strip()}"


def test_top_level_functions_are_not_shadowed_by_subpackages():
    # A subpackage named like a public function would replace it on `import promptkit.<name>`.
    for package in sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")):
        importlib.import_module(f"promptkit.{package}")
    assert callable(promptkit.generate) and callable(promptkit.agenerate)
    clashes = set(promptkit.__all__) & {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert not clashes, f"public names that are also subpackages: {clashes}"


@pytest.mark.parametrize("package", ["", *sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))])
def test_all_equals_the_public_names_exactly(package: str):
    """httpx's rule: every public name a package defines is in its ``__all__``, and ``__all__`` names nothing
    else. Submodules, ``annotations`` and names loaded lazily through ``__getattr__`` are not counted as
    defined, but a lazily loaded name must still be listed (test_subpackage_all_resolves loads each one)."""
    import types

    module = importlib.import_module(f"promptkit.{package}" if package else "promptkit")
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    exported = set(module.__all__)
    assert len(module.__all__) == len(exported), f"{module.__name__}.__all__ lists a name twice"
    unlisted = sorted(defined - exported)
    assert not unlisted, f"{module.__name__} defines public names missing from __all__: {unlisted}"


def test_public_functions_show_their_real_arguments():
    """help(promptkit.generate) and IDEs list the keyword arguments, not ``**kwargs``."""
    import inspect

    from promptkit.evals import assert_suite, run_suite

    assert {"model", "router", "accept", "max_attempts"} <= set(
        inspect.signature(promptkit.generate).parameters
    )
    for function in (run_suite, assert_suite):
        parameters = inspect.signature(function).parameters
        assert {"backends", "cache", "overrides"} <= set(parameters), function
        assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values()), function
