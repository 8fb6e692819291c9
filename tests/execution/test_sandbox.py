"""The sandbox contains what an untrusted command does, and reports how."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from promptkit.errors import SandboxError
from promptkit.execution import Limits, arun_sandboxed, run_sandboxed
from tests.execution.conftest import HAS_NAMESPACES, MODES, processes_with

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox tests inspect /proc")

PY = sys.executable
needs_ns = pytest.mark.skipif(not HAS_NAMESPACES, reason="namespaces are not available on this host")


def py(code: str) -> list[str]:
    return [PY, "-c", code]


@pytest.mark.parametrize("mode", MODES)
def test_clean_run_writes_into_the_workspace(workspace: Path, mode: str) -> None:
    code = "import os; open('out.txt', 'w').write('made'); print('cwd', os.getcwd())"
    result = run_sandboxed(py(code), cwd=workspace, limits=Limits(isolation=mode))
    assert result.ok, result.stderr
    assert result.returncode == 0 and result.killed_reason is None and not result.timed_out
    assert result.stdout.strip() == f"cwd {workspace.resolve()}"
    assert (workspace / "out.txt").read_text() == "made"
    assert result.wall_s > 0 and result.max_rss_mb > 1
    assert "rlimits" in result.isolation and "env-allowlist" in result.isolation


@needs_ns
def test_auto_uses_namespaces_here(workspace: Path) -> None:
    result = run_sandboxed(py("import os; print(os.getpid())"), cwd=workspace)
    for tag in (
        "pid-namespace",
        "mount-namespace",
        "net-namespace",
        "fs:read-only-except-workspace",
        "caps-dropped",
    ):
        assert tag in result.isolation
    assert result.stdout.strip() == "2"  # the sandbox init is PID 1 of a fresh PID namespace
    status = run_sandboxed(["grep", "^CapEff", "/proc/self/status"], cwd=workspace).stdout
    assert status.split()[1] == "0" * 16


def test_failing_command_is_not_ok(workspace: Path) -> None:
    result = run_sandboxed(py("import sys; print('boom', file=sys.stderr); sys.exit(3)"), cwd=workspace)
    assert result.returncode == 3 and not result.ok
    assert result.killed_reason is None
    assert "boom" in result.stderr


def test_missing_executable_is_reported_as_127(workspace: Path) -> None:
    result = run_sandboxed(["no-such-program-xyz"], cwd=workspace)
    assert result.returncode == 127
    assert "no-such-program-xyz" in result.stderr


def test_stdin_is_passed(workspace: Path) -> None:
    result = run_sandboxed(py("import sys; print(sys.stdin.read().upper())"), cwd=workspace, stdin="hello")
    assert result.stdout.strip() == "HELLO"


@pytest.mark.parametrize("mode", MODES)
def test_infinite_loop_hits_the_wall_limit(workspace: Path, mode: str) -> None:
    started = time.monotonic()
    result = run_sandboxed(py("while True: pass"), cwd=workspace, limits=Limits(wall_s=1, isolation=mode))
    assert time.monotonic() - started < 4
    assert result.timed_out and result.killed_reason == "wall-time"
    assert not result.ok and result.returncode != 0
    assert result.wall_s >= 1


@pytest.mark.parametrize("mode", MODES)
def test_infinite_loop_hits_the_cpu_limit(workspace: Path, mode: str) -> None:
    result = run_sandboxed(
        py("while True: pass"), cwd=workspace, limits=Limits(cpu_s=1, wall_s=8, isolation=mode)
    )
    assert result.timed_out and result.killed_reason == "cpu-time"
    assert 0.9 <= result.cpu_s < 3
    assert result.wall_s < 5


def test_sleeping_uses_wall_not_cpu(workspace: Path) -> None:
    result = run_sandboxed(py("import time; time.sleep(30)"), cwd=workspace, limits=Limits(wall_s=1, cpu_s=1))
    assert result.killed_reason == "wall-time"
    assert result.cpu_s < 0.5


@pytest.mark.parametrize("mode", MODES)
def test_memory_hog_is_refused_and_reported(workspace: Path, mode: str) -> None:
    hog = "x = bytearray(2 * 1024 ** 3); print('allocated', len(x))"
    result = run_sandboxed(py(hog), cwd=workspace, limits=Limits(memory_mb=256, isolation=mode))
    assert not result.ok
    assert result.killed_reason == "memory"
    assert "allocated" not in result.stdout
    assert result.max_rss_mb < 256
    # Under the limit the same kind of allocation works: the limit is what stopped the hog.
    small = run_sandboxed(
        py("x = bytearray(64 * 1024 ** 2); print(len(x))"), cwd=workspace, limits=Limits(memory_mb=256)
    )
    assert small.ok and small.stdout.strip() == str(64 * 1024**2)


@pytest.mark.parametrize("mode", MODES)
def test_fork_bomb_is_bounded_and_leaves_nothing(workspace: Path, mode: str) -> None:
    marker = f"forkbomb-{uuid.uuid4().hex}"
    bomb = f"# {marker}\nimport os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    started = time.monotonic()
    result = run_sandboxed(py(bomb), cwd=workspace, limits=Limits(wall_s=2, max_processes=32, isolation=mode))
    elapsed = time.monotonic() - started
    assert result.killed_reason == "wall-time" and result.timed_out
    assert elapsed < 6
    assert processes_with(marker) == []
    # The machine is still healthy: a fresh run starts and finishes promptly.
    started = time.monotonic()
    assert run_sandboxed(["true"], cwd=workspace).ok
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("detach", [False, True])
def test_background_children_are_killed_when_the_command_exits(
    workspace: Path, mode: str, detach: bool
) -> None:
    marker = f"{int(uuid.uuid4().int % 10**6) + 10**6}.5"  # a unique sleep length marks the sleeper
    # A Python sleeper: process mode runs nothing but guarded Python.
    sleeper = f"[sys.executable, '-c', 'import time; time.sleep({marker})']"
    code = (
        f"import subprocess, sys; subprocess.Popen({sleeper}, start_new_session={detach}); print('spawned')"
    )
    started = time.monotonic()
    result = run_sandboxed(py(code), cwd=workspace, limits=Limits(isolation=mode))
    assert result.ok and result.stdout.strip() == "spawned"
    assert time.monotonic() - started < 5
    assert processes_with(f"time.sleep({marker})") == []


@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


CONNECT = """
import socket, sys
for host, port in [("127.0.0.1", int(sys.argv[1])), ("1.1.1.1", 443)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print(host, "connected")
    except OSError as exc:
        print(host, "failed", type(exc).__name__)
"""


@pytest.mark.parametrize("mode", MODES)
def test_network_is_cut(workspace: Path, listener: int, mode: str) -> None:
    result = run_sandboxed([PY, "-c", CONNECT, str(listener)], cwd=workspace, limits=Limits(isolation=mode))
    lines = result.stdout.splitlines()
    assert lines[0].startswith("127.0.0.1 failed") and lines[1].startswith("1.1.1.1 failed"), result.stdout
    if mode == "process":
        assert "network-guard:python-only" in result.isolation
    elif HAS_NAMESPACES:
        assert "net-namespace" in result.isolation


def test_network_allowed_reaches_the_host_listener(workspace: Path, listener: int) -> None:
    result = run_sandboxed([PY, "-c", CONNECT, str(listener)], cwd=workspace, limits=Limits(network=True))
    assert result.stdout.splitlines()[0] == "127.0.0.1 connected"
    assert "net-namespace" not in result.isolation


@needs_ns
def test_loopback_works_inside_the_namespace(workspace: Path) -> None:
    code = (
        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen();"
        "c = socket.create_connection(s.getsockname(), timeout=2); print('self-connect ok')"
    )
    assert run_sandboxed(py(code), cwd=workspace).stdout.strip() == "self-connect ok"


@pytest.mark.parametrize("mode", MODES)
def test_writes_outside_the_workspace_are_refused(workspace: Path, mode: str) -> None:
    outside = Path("/tmp") / f"outside-{uuid.uuid4().hex}"
    beside = workspace.parent / f"escape-{uuid.uuid4().hex}"
    code = f"""
import os
for target in [{str(outside)!r}, {str(beside)!r}]:
    try:
        open(target, "w").write("escaped")
        print("wrote", target)
    except OSError as exc:
        print("refused", type(exc).__name__, exc.errno or "")
open("inside.txt", "w").write("fine")
"""
    result = run_sandboxed(py(code), cwd=workspace, limits=Limits(isolation=mode))
    assert result.ok, result.stderr
    assert not outside.exists() and not beside.exists()
    # Namespaces give the command a private /tmp (the workspace sits under /tmp here), dropped after.
    assert result.stdout.count("refused") == (2 if mode == "process" or not HAS_NAMESPACES else 0), (
        result.stdout
    )
    assert (workspace / "inside.txt").read_text() == "fine"
    expected = (
        "fs-guard:python-only" if mode == "process" or not HAS_NAMESPACES else "fs:read-only-except-workspace"
    )
    assert expected in result.isolation


@needs_ns
def test_native_writes_outside_are_refused_too(workspace: Path) -> None:
    outside = Path("/tmp") / f"outside-{uuid.uuid4().hex}"
    result = run_sandboxed(
        ["sh", "-c", f"echo x > {outside}; echo x > ../beside; echo x > /usr/escape; mount -o remount,rw /"],
        cwd=workspace,
    )
    assert not outside.exists() and not (workspace.parent / "beside").exists()
    assert not Path("/usr/escape").exists()
    assert "Read-only file system" in result.stderr
    assert "must be superuser" in result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_environment_is_stripped(workspace: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    code = (
        "import json, os, tempfile; open(os.path.join(os.environ['HOME'], 'h'), 'w').write('x');"
        "open(os.path.join(tempfile.gettempdir(), 't'), 'w').write('x'); print(json.dumps(dict(os.environ)))"
    )
    result = run_sandboxed(py(code), cwd=workspace, env={"EXTRA": "given"}, limits=Limits(isolation=mode))
    assert result.ok, result.stderr
    env = json.loads(result.stdout)
    assert secret not in result.stdout
    assert "OPENAI_API_KEY" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["EXTRA"] == "given"
    assert env["HOME"] != os.environ.get("HOME") and env["TMPDIR"] != os.environ.get("TMPDIR")
    assert not Path(env["HOME"]).exists() and not Path(env["TMPDIR"]).exists()  # scratch is deleted


def test_output_is_truncated_head_and_tail(workspace: Path) -> None:
    code = "import sys; sys.stdout.write('A' * 1000 + 'B' * 200000 + 'Z' * 1000); sys.stdout.write('\\n')"
    result = run_sandboxed(py(code), cwd=workspace, limits=Limits(max_output_bytes=1000))
    assert result.ok and result.killed_reason is None
    assert result.stdout.startswith("A" * 500)
    assert result.stdout.rstrip("\n").endswith("Z" * 499)
    assert "[… 201001 bytes truncated …]" in result.stdout
    assert len(result.stdout) < 1100


def test_output_is_decoded_with_replacement(workspace: Path) -> None:
    result = run_sandboxed(py("import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe end')"), cwd=workspace)
    assert result.stdout == "ok \ufffd\ufffd end"


def test_endless_output_is_killed(workspace: Path) -> None:
    code = "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)"
    started = time.monotonic()
    result = run_sandboxed(py(code), cwd=workspace, limits=Limits(max_output_bytes=1000, wall_s=20))
    assert result.killed_reason == "output" and not result.ok
    assert time.monotonic() - started < 10
    assert len(result.stdout) < 1100


def test_file_size_limit(workspace: Path) -> None:
    code = "open('big', 'wb').write(b'0' * (3 * 1024 * 1024))"
    result = run_sandboxed(py(code), cwd=workspace, limits=Limits(max_file_mb=1))
    assert not result.ok and result.killed_reason == "file-size"
    assert (workspace / "big").stat().st_size <= 1024 * 1024


@pytest.mark.parametrize(
    ("cmd", "cwd"),
    [([], None), ("echo hi", None), (["echo"], "missing")],
)
def test_bad_calls_raise_sandbox_error(workspace: Path, cmd: object, cwd: str | None) -> None:
    with pytest.raises(SandboxError):
        run_sandboxed(cmd, cwd=workspace / cwd if cwd else workspace)  # type: ignore[arg-type]


def test_limits_are_validated() -> None:
    with pytest.raises(SandboxError, match="Limits.wall_s"):
        Limits(wall_s=0)
    with pytest.raises(SandboxError, match="Limits.isolation"):
        Limits(isolation="docker")  # type: ignore[arg-type]


async def test_async_run_and_concurrency(workspace: Path) -> None:
    results = await asyncio.gather(*(arun_sandboxed(py(f"print({i} * 2)"), cwd=workspace) for i in range(3)))
    assert [r.stdout.strip() for r in results] == ["0", "2", "4"]


async def test_cancelling_the_task_kills_the_command(workspace: Path) -> None:
    marker = f"{int(uuid.uuid4().int % 10**6) + 2 * 10**6}.25"
    task = asyncio.create_task(arun_sandboxed(["sleep", marker], cwd=workspace, limits=Limits(wall_s=60)))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if processes_with(f"sleep {marker}"):
            break
    assert processes_with(f"sleep {marker}"), "the sleeper never started"
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5
    assert processes_with(f"sleep {marker}") == []


def test_probe_falls_back_to_process_isolation(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from promptkit.execution import _sandbox

    monkeypatch.setattr(_sandbox, "_probe_result", None)
    monkeypatch.setattr(
        _sandbox, "_unshare_argv", lambda user_ns, net_ns: [sys.executable, "-c", "raise SystemExit(1)"]
    )
    assert _sandbox.isolation_mode().startswith("process: ")
    result = run_sandboxed(py("print('ran')"), cwd=workspace)
    assert result.ok and result.stdout.strip() == "ran"
    assert "fs-guard:python-only" in result.isolation and "pid-namespace" not in result.isolation
    with pytest.raises(SandboxError, match="namespaces are not available"):
        run_sandboxed(["true"], cwd=workspace, limits=Limits(isolation="namespaces"))
