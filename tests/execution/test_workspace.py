"""Workspace safety (paths, symlinks, allow-lists, atomic writes) and the strict unified-diff applier."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from promptkit.errors import WorkspaceError
from promptkit.execution import (
    FileEdit,
    Workspace,
    apply_unified_diff,
    parse_edits,
    render_diff,
    split_unified_diff,
)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


# --- paths -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../outside.py", "'..'"),
        ("pkg/../../outside.py", "'..'"),
        ("/etc/passwd", "absolute"),
        ("~/x.py", "absolute"),
        (".promptkit/run.sqlite", ".promptkit"),
        ("pkg\\evil.py", "'/' separators"),
    ],
)
def test_unsafe_paths_are_refused(ws: Workspace, tmp_path: Path, path: str, why: str) -> None:
    with pytest.raises(WorkspaceError) as err:
        ws.write(path, "x = 1\n")
    assert why in str(err.value)
    assert path in str(err.value) or repr(path) in str(err.value)
    assert not (tmp_path / "outside.py").exists()


def test_allow_list_limits_writes(ws: Workspace) -> None:
    ws.write("app/models.py", "A = 1\n", ["app/*.py"])
    assert ws.read("app/models.py") == "A = 1\n"
    with pytest.raises(WorkspaceError, match=r"not on the step's allow-list \(app/\*\.py\)"):
        ws.write("app/sub/deep.py", "B = 2\n", ["app/*.py"], step="models")
    with pytest.raises(WorkspaceError, match="step 'models'"):
        ws.write("README.md", "hi\n", ["app/*.py"], step="models")
    assert not (ws.root / "README.md").exists()


def test_symlinked_folder_pointing_outside_is_refused(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, ws.root / "link")
    with pytest.raises(WorkspaceError, match="link is a symlink to .*outside the workspace"):
        ws.write("link/evil.py", "boom\n", ["link/**"])
    assert list(outside.iterdir()) == []


def test_symlinked_file_pointing_outside_is_refused(ws: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "secret.txt"
    target.write_text("keep me\n")
    os.symlink(target, ws.root / "notes.txt")
    with pytest.raises(WorkspaceError, match="symlink"):
        ws.write("notes.txt", "overwritten\n")
    assert target.read_text() == "keep me\n"


def test_symlink_inside_the_workspace_is_allowed_and_replaced_not_followed(ws: Workspace) -> None:
    ws.write("real.txt", "original\n")
    os.symlink(ws.root / "real.txt", ws.root / "alias.txt")
    ws.write("alias.txt", "new\n")
    assert (ws.root / "real.txt").read_text() == "original\n"
    assert not (ws.root / "alias.txt").is_symlink()
    assert (ws.root / "alias.txt").read_text() == "new\n"


def test_a_file_in_the_way_of_a_folder_is_refused(ws: Workspace) -> None:
    ws.write("pkg", "not a folder\n")
    with pytest.raises(WorkspaceError, match="is a file, not a folder"):
        ws.write("pkg/mod.py", "x = 1\n")


# --- writing ---------------------------------------------------------------------------------------------


def test_write_is_atomic_and_leaves_no_temporary_files(ws: Workspace) -> None:
    written = ws.write("pkg/deep/mod.py", "x = 1\n")
    assert written.path == "pkg/deep/mod.py"
    assert written.sha256 == ws.hash("pkg/deep/mod.py")
    ws.write("pkg/deep/mod.py", "x = 2\n")
    assert sorted(p.name for p in (ws.root / "pkg/deep").iterdir()) == ["mod.py"]
    assert ws.read("pkg/deep/mod.py") == "x = 2\n"


def test_failed_write_keeps_the_old_file(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws.write("a.txt", "old\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(WorkspaceError, match="cannot write: No space left on device"):
        ws.write("a.txt", "new\n")
    monkeypatch.undo()
    assert ws.read("a.txt") == "old\n"
    assert [p.name for p in ws.root.iterdir()] == ["a.txt"]


def test_files_and_matching_skip_state_folders(ws: Workspace) -> None:
    ws.write("app/a.py", "")
    ws.write("app/b.txt", "")
    ws.write("tests/test_a.py", "")
    (ws.root / ".promptkit").mkdir()
    (ws.root / ".promptkit" / "run.sqlite").write_text("")
    assert ws.files() == ["app/a.py", "app/b.txt", "tests/test_a.py"]
    assert ws.matching(["tests/test_a.py", "app/*.py", "missing.py"]) == ["tests/test_a.py", "app/a.py"]


# --- edits -----------------------------------------------------------------------------------------------


def test_parse_edits_accepts_whole_files_diffs_and_raw_diff_text() -> None:
    edits = parse_edits(
        {"files": [{"path": "a.py", "content": "x\n"}, {"path": "b.py", "diff": "@@ -1 +1 @@\n-a\n+b\n"}]}
    )
    assert edits == [FileEdit("a.py", content="x\n"), FileEdit("b.py", diff="@@ -1 +1 @@\n-a\n+b\n")]
    assert parse_edits({"path": "c.py", "diff": "d"}) == [FileEdit("c.py", diff="d")]
    raw = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-1\n+2\n--- /dev/null\n+++ b/y.py\n@@ -0,0 +1 @@\n+new\n"
    assert [e.path for e in parse_edits(raw)] == ["x.py", "y.py"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"files": []}, "no file edits"),
        ({"files": [{"path": "a.py"}]}, "exactly one of 'content'"),
        ({"files": [{"path": "a.py", "content": "1", "diff": "2"}]}, "exactly one of 'content'"),
        ({"files": [{"content": "1"}]}, "'path' string"),
        (
            {"files": [{"path": "a.py", "content": "1"}, {"path": "a.py", "content": "2"}]},
            "edits this file twice",
        ),
    ],
)
def test_parse_edits_rejects_malformed_answers(answer: object, message: str) -> None:
    with pytest.raises(WorkspaceError, match=message):
        parse_edits(answer)


ORIGINAL = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"


def test_unified_diff_round_trips_through_render_diff() -> None:
    changed = (
        ORIGINAL.replace("return a - b", "return a - b  # checked") + "\n\ndef mul(a, b):\n    return a * b\n"
    )
    diff = render_diff("calc.py", ORIGINAL, changed)
    assert diff.startswith("--- a/calc.py\n+++ b/calc.py\n@@ ")
    assert apply_unified_diff(ORIGINAL, diff, path="calc.py") == changed


def test_diff_creates_and_deletes_files() -> None:
    created = apply_unified_diff(None, render_diff("new.py", None, "a\nb\n"), path="new.py")
    assert created == "a\nb\n"
    assert apply_unified_diff("a\nb\n", render_diff("old.py", "a\nb\n", None), path="old.py") is None


def test_diff_handles_missing_final_newline() -> None:
    diff = render_diff("f.txt", "one\ntwo", "one\nTWO")
    assert "\\ No newline at end of file" in diff
    assert apply_unified_diff("one\ntwo", diff, path="f.txt") == "one\nTWO"


def test_hunk_mismatch_names_hunk_line_and_expected_text() -> None:
    diff = "--- a/calc.py\n+++ b/calc.py\n@@ -5,2 +5,2 @@\n def sub(a, b):\n-    return b - a\n+    return a - b\n"
    with pytest.raises(WorkspaceError) as err:
        apply_unified_diff(ORIGINAL, diff, path="calc.py")
    message = str(err.value)
    assert message.startswith("calc.py: hunk 1 (diff line 3) does not apply: line 6 is")
    assert "'    return a - b'" in message and "'    return b - a'" in message


def test_hunk_with_wrong_counts_is_rejected() -> None:
    diff = "@@ -1,3 +1,3 @@\n def add(a, b):\n-    return a + b\n+    return b + a\n"
    with pytest.raises(
        WorkspaceError, match=r"hunk 1 header says -1,3 \+1,3 but its body has 2 old and 2 new"
    ):
        apply_unified_diff(ORIGINAL, diff, path="calc.py")


def test_diff_against_missing_file_or_creating_existing_file_fails() -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        apply_unified_diff(None, "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n", path="x")
    with pytest.raises(WorkspaceError, match="already exists"):
        apply_unified_diff("a\n", "--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+b\n", path="x")


def test_hunks_out_of_order_and_past_the_end_fail() -> None:
    two = "@@ -5,1 +5,1 @@\n-def sub(a, b):\n+def minus(a, b):\n@@ -1,1 +1,1 @@\n-def add(a, b):\n+def plus(a, b):\n"
    with pytest.raises(WorkspaceError, match="hunk 2 .* overlaps or precedes"):
        apply_unified_diff(ORIGINAL, two, path="calc.py")
    with pytest.raises(WorkspaceError, match="starts at line 40 but the file has 6 line"):
        apply_unified_diff(ORIGINAL, "@@ -40,1 +40,1 @@\n-x\n+y\n", path="calc.py")


def test_split_unified_diff_requires_headers() -> None:
    with pytest.raises(WorkspaceError, match="expected a '--- a/path'"):
        split_unified_diff("@@ -1 +1 @@\n-a\n+b\n")
