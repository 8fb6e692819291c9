"""The split between live routing and offline evaluation: exact ``__all__``s, and which side imports which."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest


@pytest.mark.parametrize("package", ["promptkit.routing.learned", "promptkit.evals.routing"])
def test_all_equals_the_public_names_exactly(package: str) -> None:
    module = importlib.import_module(package)
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert set(module.__all__) == defined
    assert len(module.__all__) == len(set(module.__all__))


def test_live_routing_imports_no_evaluation_code() -> None:
    code = (
        "import sys\n"
        "import promptkit.routing, promptkit.routing.learned, promptkit.routing._config\n"
        "print(sorted(m for m in sys.modules if m.startswith('promptkit.evals') or m in ('numpy', 'sklearn')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
