"""Issue 16, items 3 and 4: nothing outlives its limits, not even a killed promptkit; a run's disk is capped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from promptkit.execution import Limits, run_sandboxed
from tests.execution.conftest import MODES, processes_with

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox tests inspect /proc")

ROOT = Path(__file__).resolve().parents[2]

# A promptkit process running one sandboxed sleeper; the sleeper notes its scratch HOME in the workspace.
HOST = """
import sys
from pathlib import Path
from promptkit.execution import Limits, run_sandboxed

ws, mode, sleep_s, wall_s = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
code = f"import os, time; open('home.txt', 'w').write(os.environ['HOME']); time.sleep({sleep_s})"
result = run_sandboxed([sys.executable, "-c", code], cwd=ws, limits=Limits(wall_s=wall_s, isolation=mode))
print("result", result.killed_reason, flush=True)
"""


def start_host(ws: Path, mode: str, wall_s: float) -> tuple[subprocess.Popen[str], str]:
    sleep_s = f"{int(uuid.uuid4().int % 10**6) + 3 * 10**6}.5"  # unique: marks the sleeper
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(ws), mode, sleep_s, str(wall_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    marker = f"time.sleep({sleep_s})"
    deadline = time.monotonic() + 30
    while not (processes_with(marker) and (ws / "home.txt").is_file()):
        assert host.poll() is None, host.communicate()
        assert time.monotonic() < deadline, "the sandboxed sleeper never started"
        time.sleep(0.05)
    return host, marker


def gone_within(marker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def cgroup_of(pid: int) -> Path | None:
    """The sandbox's pids cgroup folder that ``pid`` is in (v1 or v2), if any."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "promptkit-sandbox-" in path and (controllers == "" or "pids" in controllers.split(",")):
            return Path("/sys/fs/cgroup", "pids" if controllers else "", path.lstrip("/"))
    return None


@pytest.mark.parametrize("mode", MODES)
def test_a_killed_promptkit_takes_its_sandbox_along_and_the_next_one_cleans_up(
    tmp_path: Path, mode: str
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    host, marker = start_host(ws, mode, wall_s=60)
    scratch = Path((ws / "home.txt").read_text()).parent
    cgroup = cgroup_of(processes_with(marker)[0])
    host.kill()  # kill -9: no clean-up of its own
    host.communicate()
    # Before: the sleeper lived on until its own end, far past the moment its parent died.
    assert gone_within(marker, 5), "the sandboxed command outlived the promptkit that ran it"

    # The next promptkit process cleans what the dead one left.
    nxt = (
        "import sys; from pathlib import Path; from promptkit.execution import Limits, run_sandboxed\n"
        f"run_sandboxed([sys.executable, '-c', ''], cwd=Path({str(ws)!r}), limits=Limits(isolation={mode!r}))"
    )
    subprocess.run([sys.executable, "-c", nxt], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert not scratch.exists(), f"{scratch} was left behind"
    if cgroup is not None:
        assert not cgroup.exists(), f"{cgroup} was left behind"


@pytest.mark.parametrize("mode", MODES)
def test_the_sandbox_init_enforces_the_wall_limit_on_its_own(tmp_path: Path, mode: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    host, marker = start_host(ws, mode, wall_s=2)
    os.kill(host.pid, signal.SIGSTOP)  # promptkit's poll loop cannot run; the limit must hold anyway
    try:
        assert gone_within(marker, 6), "the command ran past its wall limit while promptkit was stopped"
    finally:
        os.kill(host.pid, signal.SIGCONT)
    out, err = host.communicate(timeout=30)
    assert "result wall-time" in out, (out, err)


def test_a_live_promptkit_s_sandbox_is_not_cleaned(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptkit.execution import _sandbox

    mine = _sandbox._new_scratch()
    try:
        monkeypatch.setattr(_sandbox, "_cleaned", False)
        _sandbox._clean_leftovers()
        assert mine.is_dir()
    finally:
        mine.rmdir()


# --- item 4: the disk quota --------------------------------------------------------------------------

WRITER = """
import os, sys
folder = sys.argv[1] if len(sys.argv) > 1 else "."
folder = os.path.expandvars(folder)
block = b"x" * (4 * 1024 * 1024)
for i in range(10_000):
    with open(os.path.join(folder, f"fill-{i}"), "wb") as f:
        f.write(block)
print("wrote everything")
"""


def used_mb(folder: Path) -> float:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file()) / 2**20


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", ["workspace", "home"])
def test_many_files_hit_the_total_disk_limit(workspace: Path, mode: str, where: str) -> None:
    target = "." if where == "workspace" else "$HOME"
    started = time.monotonic()
    result = run_sandboxed(
        [sys.executable, "-c", WRITER, target],
        cwd=workspace,
        limits=Limits(max_disk_mb=32, max_file_mb=8, wall_s=30, isolation=mode),
    )
    assert result.killed_reason == "disk" and not result.ok, (result.killed_reason, result.stderr[-500:])
    assert "wrote everything" not in result.stdout
    assert "max_disk_mb" in result.stderr
    assert time.monotonic() - started < 20
    assert "disk-quota" in result.isolation
    if where == "workspace":
        assert used_mb(workspace) < 32 + 160  # stopped within a poll interval of the limit


def test_a_quick_writer_that_exits_is_still_over_its_quota(workspace: Path) -> None:
    code = "for i in range(6):\n    open(f'f{i}', 'wb').write(b'x' * (2 * 1024 * 1024))"
    result = run_sandboxed([sys.executable, "-c", code], cwd=workspace, limits=Limits(max_disk_mb=4))
    assert result.killed_reason == "disk" and not result.ok


def test_existing_files_do_not_count_against_the_quota(workspace: Path) -> None:
    (workspace / "big").write_bytes(b"x" * (6 * 1024 * 1024))
    code = "open('small', 'wb').write(b'y' * 1024 * 1024)"
    result = run_sandboxed([sys.executable, "-c", code], cwd=workspace, limits=Limits(max_disk_mb=4))
    assert result.ok, result.stderr


def test_the_disk_limit_is_validated() -> None:
    from promptkit.errors import SandboxError

    with pytest.raises(SandboxError, match="Limits.max_disk_mb"):
        Limits(max_disk_mb=0)
