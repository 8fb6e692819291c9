"""The package works once installed, not only from the checkout: scripts/wheel_smoke.sh builds the wheel,
installs it into a fresh virtualenv and, from an unrelated folder, lists the templates, renders ``debug``,
plans an example and scaffolds one without a model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "wheel_smoke.sh"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the smoke script is bash")
def test_the_installed_wheel_works_from_an_unrelated_folder(tmp_path: Path) -> None:
    # Dependencies come from pip's cache or index, as for any user; about 40 s with a warm cache.
    result = subprocess.run(
        ["bash", str(SCRIPT), sys.executable], cwd=tmp_path, capture_output=True, text=True, timeout=280
    )
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    assert "wheel smoke test passed" in result.stdout
