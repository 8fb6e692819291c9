"""The programs the sandbox runs in its child (the init and the process-mode guard) are ordinary modules:
imported and tested here, and passed to the child as exactly their files' source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptkit.execution import _sandbox, _sandbox_guard, _sandbox_init
from promptkit.execution._sandbox_guard import (
    Unguardable,
    guarded_argv,
    is_python,
    parse_python_argv,
    resolve,
)


def test_the_child_gets_the_module_files_as_they_are() -> None:
    assert _sandbox._INIT == Path(_sandbox_init.__file__).read_text(encoding="utf-8")
    guard = Path(_sandbox_guard.__file__).read_text(encoding="utf-8")
    assert _sandbox._GUARD == _sandbox_guard.bootstrap(guard)
    compile(_sandbox._GUARD, "<guard bootstrap>", "exec")  # the -c program itself is valid Python


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python", "x.py", "-v"], ([], "script", "x.py", ["-v"])),
        (["python", "-I", "-S", "-c", "print(1)", "a"], (["-I", "-S"], "code", "print(1)", ["a"])),
        (["python", "-Ic", "pass"], (["-I"], "code", "pass", [])),
        (["python", "-m", "pytest", "-q"], ([], "module", "pytest", ["-q"])),
        (
            ["python", "-W", "error", "-X", "dev", "t.py"],
            (["-W", "error", "-X", "dev"], "script", "t.py", []),
        ),
        (["python"], ([], "stdin", "", [])),
        (["python", "-", "a"], ([], "stdin", "-", ["a"])),
        (["python", "--", "t.py"], ([], "script", "t.py", [])),
        (["python", "-V"], ([], "info", None, [])),
        (["python", "--version"], ([], "info", None, [])),
    ],
)
def test_parse_python_argv(argv: list[str], expected: tuple) -> None:
    assert parse_python_argv(argv) == expected


@pytest.mark.parametrize("argv", [["python", "-Z"], ["python", "--frobnicate"], ["python", "-c"]])
def test_command_lines_the_guard_cannot_take_are_refused(argv: list[str]) -> None:
    with pytest.raises(Unguardable):
        parse_python_argv(argv)


def test_guarded_argv_puts_the_guard_first_and_keeps_the_flags() -> None:
    config = {"writable": ["/w"], "network": False}
    out = guarded_argv(["/usr/bin/python3", "-I", "t.py", "x"], config, "GUARD")
    assert out == ["/usr/bin/python3", "-I", "-c", "GUARD", json.dumps(config), "script", "t.py", "x"]
    assert guarded_argv(["python3", "--version"], config, "GUARD") == ["python3", "--version"]


def test_a_python_in_a_writable_folder_is_not_trusted(tmp_path: Path) -> None:
    planted = tmp_path / "bin" / "python3"
    planted.parent.mkdir()
    planted.write_text("#!/bin/sh\n", encoding="utf-8")
    planted.chmod(0o755)
    assert not is_python(str(planted), [str(tmp_path)])
    assert is_python(str(planted), ["/elsewhere"])
    assert not is_python("/usr/bin/bash", [])
    # A PATH search through a writable folder is refused; outside it, the program is found.
    assert resolve("python3", str(planted.parent), [str(tmp_path)]) is None
    assert resolve("python3", str(planted.parent), ["/elsewhere"]) == str(planted)
    assert resolve("./t.py", None, []) == os.path.abspath("./t.py")


def test_the_init_reads_mount_paths_like_the_kernel_writes_them() -> None:
    assert _sandbox_init.unescape("/a\\040b\\011c\\134d") == "/a b\tc\\d"
    assert _sandbox_init.under("/w/x", "/w/") and _sandbox_init.under("/w", "/w")
    assert not _sandbox_init.under("/wx", "/w")


def test_the_guard_runs_as_its_own_source_under_isolated_python(tmp_path: Path) -> None:
    # What the sandbox does in process mode, without the sandbox: the bootstrap installs the hook, then
    # runs the program; a write outside the writable roots is refused by the hook.
    program = tmp_path / "p.py"
    program.write_text(
        "import sys\nopen(sys.argv[1], 'w').write('ok')\nopen('/tmp/../etc/promptkit-x', 'w')\n",
        encoding="utf-8",
    )
    config = {"writable": [str(tmp_path)], "network": False}
    argv = guarded_argv(
        [sys.executable, "-I", "-S", str(program), str(tmp_path / "out")], config, _sandbox._GUARD
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert (tmp_path / "out").read_text() == "ok"
    assert done.returncode == 1 and "promptkit sandbox: open outside the workspace" in done.stderr, (
        done.stderr
    )
