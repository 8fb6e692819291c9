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
    "_sqlite": 0,
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
