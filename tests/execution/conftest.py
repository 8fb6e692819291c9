"""Fixtures for the sandbox and verifier tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from promptkit.execution import isolation_mode

HAS_NAMESPACES = isolation_mode() == "namespaces"
# Both isolation levels are exercised; "process" is the fallback every Linux/macOS host has.
MODES = ["auto", "process"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found
