"""Issue 16, item 7: over-long names and paths are refused like other bad paths, never a raw OSError."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptkit.errors import WorkspaceError
from promptkit.execution import Workspace

LONG_NAME = "a" * 250 + ".py"
LONG_PATH = "/".join(["d" * 200] * 21) + "/x.py"  # every name fits; the whole path is over 4,096


@pytest.mark.parametrize(
    ("rel", "problem"),
    [(LONG_NAME, "bytes per file or folder name"), (LONG_PATH, "the limit is 4095 bytes")],
    ids=["name", "path"],
)
def test_over_long_paths_are_refused_as_workspace_errors(tmp_path: Path, rel: str, problem: str) -> None:
    ws = Workspace(tmp_path / "ws")
    for action in (
        lambda: ws.write(rel, "x = 1\n"),
        lambda: ws.write(rel, "x = 1\n", ["**"], step="s1"),
        lambda: ws.check(rel),
        lambda: ws.delete(rel),
    ):
        with pytest.raises(WorkspaceError) as info:
            action()
        assert str(info.value).count("refused") == 1 and problem in str(info.value)
        assert len(str(info.value)) < 400  # the path is shortened in the message
    assert list((tmp_path / "ws").iterdir()) == []  # nothing half-made


def test_names_up_to_the_limit_still_work(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    name = "b" * 238 + ".py"  # 241 bytes: room for the temporary file's affixes
    assert ws.write(name, "ok\n").path == name
    assert ws.read(name) == "ok\n"
    multibyte = "é" * 121  # 242 bytes in UTF-8: over, though only 121 characters
    with pytest.raises(WorkspaceError, match="242 bytes long"):
        ws.write(multibyte, "x")
