"""Run an untrusted command with bounded time, memory, processes, output, files and network.

The strongest isolation this host supports is chosen once per process and reported on every result:

1. ``namespaces`` (Linux, ``unshare`` from util-linux, root or unprivileged user namespaces):
   new user/PID/mount/network/IPC/UTS namespaces; every mount read-only except the workspace and a
   private scratch dir (HOME, TMPDIR); a fresh ``/dev/shm``; ``/proc/sys`` read-only; loopback up but
   alone in its namespace; every capability dropped and ``no_new_privs`` set before the command runs.
   Killing the namespace's init kills every process in it.
2. ``process``: a new session, rlimits, dropped capabilities, and a ``sitecustomize`` audit hook that
   refuses non-local writes and every network connection. The hook only binds Python code: a native
   program is not contained by it, and ``isolation`` says so (``...:python-only``).

Both add a ``pids`` cgroup when one can be created (root): RLIMIT_NPROC is not enforced for root,
so the cgroup is what bounds a fork bomb there; without it a fork bomb is bounded by the wall limit.

Both bound what the run adds to the disk (workspace and scratch, ``max_disk_mb``) by measuring it while it
runs, and both make the sandbox's own init enforce the wall limit and die with promptkit, so a killed
promptkit leaves nothing running; the scratch folders and cgroups of a dead promptkit are removed by the
next one's first run.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from promptkit.errors import SandboxError
from promptkit.execution import _sandbox_guard

__all__ = ["Limits", "SandboxResult", "run_sandboxed", "arun_sandboxed", "isolation_mode"]

IsolationMode = Literal["auto", "namespaces", "process"]

_MB = 1024 * 1024
# A stream that keeps writing past this many times max_output_bytes is killed ("output").
_OUTPUT_KILL_FACTOR = 64
_OUTPUT_KILL_MIN = 4 * 1024 * 1024
_POLL_S = 0.02
_ENV_INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_MEMORY_MARKERS = (
    "MemoryError",
    "Cannot allocate memory",
    "std::bad_alloc",
    "out of memory",
    "memory allocation of",
)
_CGROUP_PIDS_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
# Scratch folders and cgroups are named after the promptkit process that owns them, so that the next one
# can tell a dead owner's leftovers from a live one's: promptkit-sandbox-<pid>-<random>.
_LEFTOVER_PREFIXES = ("promptkit-sandbox-", "promptkit-probe-")
# The disk meter walks the workspace and scratch at least this often, and at most 1/_DISK_WALK_SHARE of
# the time (a large workspace is walked less often); each new file or folder costs at least one block.
_DISK_POLL_S = (0.05, 2.0)
_DISK_WALK_SHARE = 20
_DISK_MIN_ENTRY = 4096
_UNSHARE_FLAGS = ("--pid", "--fork", "--kill-child", "--mount-proc", "--ipc", "--uts")


@dataclass(frozen=True)
class Limits:
    """Resource bounds for one sandboxed command.

    ``max_processes`` counts tasks (threads too), as RLIMIT_NPROC and the pids cgroup do.
    ``isolation``: ``auto`` takes the strongest available; ``namespaces`` refuses to run without them;
    ``process`` forces the weaker fallback.
    """

    wall_s: float = 10
    cpu_s: float = 10
    memory_mb: int = 512
    max_processes: int = 64
    max_output_bytes: int = 64_000
    max_file_mb: int = 64
    max_disk_mb: int = 256
    network: bool = False
    isolation: IsolationMode = "auto"

    def __post_init__(self) -> None:
        for name in (
            "wall_s",
            "cpu_s",
            "memory_mb",
            "max_processes",
            "max_output_bytes",
            "max_file_mb",
            "max_disk_mb",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise SandboxError(f"must be a positive number, got {value!r}", location=f"Limits.{name}")
        if self.isolation not in ("auto", "namespaces", "process"):
            raise SandboxError(
                f"must be 'auto', 'namespaces' or 'process', got {self.isolation!r}",
                location="Limits.isolation",
            )


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed command did. ``killed_reason`` is ``wall-time``, ``cpu-time``, ``memory``,
    ``output``, ``file-size``, ``disk`` (it added more than ``max_disk_mb`` to the workspace and scratch)
    or ``None``; ``isolation`` lists every protection that was applied."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    timed_out: bool
    killed_reason: str | None
    max_rss_mb: float
    isolation: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.killed_reason is None


# --- the in-sandbox programs ------------------------------------------------------------------------
# Both are real modules (linted and tested) whose source is passed with -c, as the sandbox runs them
# under -I -S where promptkit cannot be imported. Read as package resources, as an installed wheel has them.


def _module_source(name: str) -> str:
    return resources.files("promptkit.execution").joinpath(f"{name}.py").read_text(encoding="utf-8")


_INIT = _module_source("_sandbox_init")
_GUARD = _sandbox_guard.bootstrap(_module_source("_sandbox_guard"))
_STATE_DIRNAME = ".promptkit"  # the executor's state folder, hidden from sandboxed commands
# Besides the workspace and scratch, the only places the process-mode guard lets Python write.
_DEV_WRITABLE = ("/dev/null", "/dev/shm", "/dev/tty", "/dev/stdout", "/dev/stderr")


# --- capability detection -------------------------------------------------------------------------------

_probe_lock = threading.Lock()
_probe_result: tuple[bool, bool, str] | None = None


def _unshare_argv(user_ns: bool, net_ns: bool) -> list[str]:
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    argv = [unshare]
    if user_ns:
        argv += ["--user", "--map-root-user"]
    argv += list(_UNSHARE_FLAGS)
    if net_ns:
        argv.append("--net")
    return argv + ["--"]


def _probe() -> tuple[bool, bool, str]:
    """(uses a user namespace, drops to an unprivileged uid, mode): the strongest setup that really
    works here, found by running a no-op through it once per process."""
    global _probe_result
    with _probe_lock:
        if _probe_result is not None:
            return _probe_result
        reasons: list[str] = []
        if sys.platform != "linux" or not shutil.which("unshare"):
            reasons.append("unshare not available")
        else:
            for user_ns, drop_uid in ((True, True), (False, True), (True, False), (False, False)):
                if not user_ns and os.geteuid() != 0:
                    continue  # without a user namespace, only root may unshare
                label = "with a user namespace" if user_ns else "without a user namespace"
                label += "" if drop_uid else ", as root inside"
                with tempfile.TemporaryDirectory(prefix=f"promptkit-probe-{os.getpid()}-") as tmp:
                    try:
                        result = _execute(
                            [sys.executable, "-I", "-S", "-c", ""],
                            Path(tmp),
                            Limits(wall_s=10),
                            None,
                            None,
                            prefix=_unshare_argv(user_ns, net_ns=True),
                            namespaces=True,
                            drop_uid=drop_uid,
                        )
                    except SandboxError as exc:
                        reasons.append(f"{label}: {exc.message}")
                        continue
                if result.ok:
                    _probe_result = (user_ns, drop_uid, "namespaces")
                    return _probe_result
                reasons.append(f"{label}: exit {result.returncode}: {result.stderr.strip()[-200:]}")
        _probe_result = (False, False, "process: " + "; ".join(reasons))
        return _probe_result


def isolation_mode() -> str:
    """``namespaces`` or ``process: <why namespaces are not available>`` for this host."""
    return _probe()[2]


# --- the pids cgroup ------------------------------------------------------------------------------------


class _PidsCgroup:
    """A throwaway pids cgroup (v1 or v2) that bounds and enumerates every task of one run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, max_tasks: int) -> _PidsCgroup | None:
        if sys.platform != "linux":
            return None
        for root in _CGROUP_PIDS_ROOTS:
            if not (root / "cgroup.procs").exists():
                continue
            if root.name != "pids":
                controllers = (
                    (root / "cgroup.subtree_control").read_text()
                    if (root / "cgroup.subtree_control").exists()
                    else ""
                )
                if "pids" not in controllers.split():
                    continue
            path = root / f"promptkit-sandbox-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                (path / "pids.max").write_text(str(max_tasks))
            except OSError:
                path.rmdir()
                continue
            return cls(path)
        return None

    @property
    def procs(self) -> bytes:
        return str(self.path / "cgroup.procs").encode()

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self) -> None:
        for _ in range(200):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                _kill(pid)
            time.sleep(0.005)

    def remove(self) -> None:
        for _ in range(200):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                self.kill_all()
                time.sleep(0.01)


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _preexec(cgroup: _PidsCgroup | None, parent: int):  # type: ignore[no-untyped-def]
    """What the sandbox's first process does between fork and exec: join the cgroup and die with us.

    The parent-death signal fires when the thread that started it ends; ``_execute``'s thread waits for
    the run, so it ends only with the process. In the namespaces ``unshare --kill-child`` passes the death
    on to the init, PID 1, whose death ends the namespace; in process mode the init re-arms its own.
    """
    procs = cgroup.procs if cgroup is not None else None
    libc = _LIBC

    def preexec() -> None:  # in the forked child: no imports, nothing allocation-heavy
        if procs is not None:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(137)  # promptkit died before the signal was armed

    return preexec


def _owner_alive(name: str) -> bool:
    """Whether the promptkit process a leftover is named after still runs (unknown names count as alive)."""
    for prefix in _LEFTOVER_PREFIXES:
        if name.startswith(prefix):
            pid = name[len(prefix) :].split("-", 1)[0]
            break
    else:
        return True
    if not pid.isdigit():
        return True  # named before owners were recorded: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True


_cleaned = False


def _clean_leftovers() -> None:
    """Remove the scratch folders and pids cgroups of promptkit processes that died mid-run (kill -9):
    once per process, before its first run."""
    global _cleaned
    with _probe_lock:
        if _cleaned:
            return
        _cleaned = True
    try:
        scratch_names = os.listdir(tempfile.gettempdir())
    except OSError:
        scratch_names = []
    for name in scratch_names:
        if name.startswith(_LEFTOVER_PREFIXES) and not _owner_alive(name):
            shutil.rmtree(os.path.join(tempfile.gettempdir(), name), ignore_errors=True)
    if sys.platform != "linux":
        return
    for root in _CGROUP_PIDS_ROOTS:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            if name.startswith(_LEFTOVER_PREFIXES[0]) and not _owner_alive(name):
                group = _PidsCgroup(root / name)
                group.kill_all()
                group.remove()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = _children(pid)
    while todo and len(found) < 100_000:
        child = todo.pop()
        found.append(child)
        todo.extend(_children(child))
    return found


def _init_pid(pid: int, namespaces: bool) -> int | None:
    """The sandbox init: the Popen'd process itself, or the child ``unshare`` forked into the namespaces."""
    if not namespaces:
        return pid
    children = _children(pid)
    return children[0] if children else None


# --- output capture -------------------------------------------------------------------------------------


class _Capture:
    """Keeps the first and last halves of a stream within ``limit`` bytes, counting what it drops."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    def text(self) -> str:
        dropped = self.total - len(self.head) - len(self.tail)
        if dropped <= 0:
            return bytes(self.head + self.tail).decode("utf-8", errors="replace")
        return (
            self.head.decode("utf-8", errors="replace")
            + f"\n[… {dropped} bytes truncated …]\n"
            + self.tail.decode("utf-8", errors="replace")
        )


def _pump(fd: int, capture: _Capture, kill_at: int, overflow: threading.Event) -> None:
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            capture.feed(chunk)
            if capture.total > kill_at:
                overflow.set()
    finally:
        os.close(fd)


def _read_available(fd: int) -> bytes:
    """What the init wrote on the status pipe; non-blocking, as a stuck writer must not hang us."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    return data


def _feed_stdin(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError:
        pass  # the command closed its stdin early: not our failure
    finally:
        os.close(fd)


# --- running ----------------------------------------------------------------------------------------------


def _build_env(env: Mapping[str, str] | None, scratch: Path) -> dict[str, str]:
    out = {k: os.environ[k] for k in _ENV_INHERITED if k in os.environ}
    exe_dir = str(Path(sys.executable).parent)
    path = out.get("PATH", os.defpath)
    if exe_dir not in path.split(os.pathsep):
        path = exe_dir + os.pathsep + path
    out["PATH"] = path
    out.setdefault("LANG", "C.UTF-8")
    home, tmp = scratch / "home", scratch / "tmp"
    out.update(
        HOME=str(home),
        TMPDIR=str(tmp),
        TMP=str(tmp),
        TEMP=str(tmp),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
    )
    if env:
        out.update({str(k): str(v) for k, v in env.items()})
    return out


def _new_scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"promptkit-sandbox-{os.getpid()}-")).resolve()


class _DiskMeter:
    """What a run has added to the disk under ``roots`` (workspace and scratch), measured by walking them.

    A quota the kernel does not provide here: the file system is the host's, shared and persistent. Used
    blocks are counted (sparse files and pre-allocations as they really are), hard links once, and every
    file or folder at least one block (so a million empty files count too). The walk runs often enough to
    catch a writer within one interval, and rarely enough to stay a small share of the time.
    """

    def __init__(self, roots: Sequence[Path], limit_mb: float) -> None:
        self.roots = [str(r) for r in roots]
        self.limit = int(limit_mb * _MB)
        self.used = 0
        self.base = self._usage()
        self.next_at = 0.0

    def _usage(self) -> int:
        total, todo = 0, list(self.roots)
        seen: set[tuple[int, int]] = set()
        while todo:
            try:
                entries = os.scandir(todo.pop())
            except OSError:
                continue
            with entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(entry.path)
                    elif info.st_nlink > 1:
                        if (info.st_dev, info.st_ino) in seen:
                            continue
                        seen.add((info.st_dev, info.st_ino))
                    total += max(info.st_blocks * 512, _DISK_MIN_ENTRY)
        return total

    def over(self, *, now: bool = False) -> bool:
        """Whether the run is over its quota; walks only when the interval has passed (or ``now``)."""
        started = time.monotonic()
        if not now and started < self.next_at:
            return False
        self.used = max(self.used, self._usage() - self.base)
        took = time.monotonic() - started
        low, high = _DISK_POLL_S
        self.next_at = time.monotonic() + min(high, max(low, took * _DISK_WALK_SHARE))
        return self.used > self.limit


def _exposed_paths(cmd: Sequence[str]) -> list[str]:
    """What the namespace shows read-only besides the system folders: the interpreter's prefixes (venv
    and base install) and the command's program, as given and as resolved."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, sys.executable}
    program = shutil.which(cmd[0]) if cmd else None
    if program:
        found.add(program)
    paths = {os.path.abspath(p) for p in found} | {os.path.realpath(p) for p in found}
    return sorted(p for p in paths if p != "/")


def _process_mode_command(
    cmd: Sequence[str], workspace: Path, scratch: Path, limits: Limits, env_path: str
) -> list[str]:
    """``cmd`` with the guard loaded first, whatever its interpreter flags; refused unless it is a Python
    interpreter, as the guard binds nothing else."""
    writable = [str(workspace), str(scratch), *_DEV_WRITABLE]
    program = _sandbox_guard.resolve(cmd[0], env_path, writable)
    if program is None or not _sandbox_guard.is_python(program, writable):
        raise SandboxError(
            f"process isolation cannot run {cmd[0]!r}: its guard can contain only the Python "
            "interpreter; other programs need namespace isolation",
            location="Limits.isolation",
        )
    config = {"writable": writable, "network": limits.network}
    try:
        return _sandbox_guard.guarded_argv([program, *cmd[1:]], config, _GUARD)
    except _sandbox_guard.Unguardable as exc:
        raise SandboxError(
            f"process isolation cannot guard {shlex.join(cmd)[:200]!r}: {exc}", location="Limits.isolation"
        ) from None


def _classify(
    returncode: int,
    cpu_s: float,
    stderr: str,
    limits: Limits,
    wall_killed: bool,
    output_killed: bool,
    disk_killed: bool = False,
) -> str | None:
    if output_killed:
        return "output"
    if disk_killed:
        return "disk"
    if wall_killed:
        return "wall-time"
    if returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and cpu_s >= limits.cpu_s - 0.05):
        return "cpu-time"
    if returncode == -signal.SIGXFSZ or (returncode != 0 and "File too large" in stderr[-4000:]):
        return "file-size"  # Python ignores SIGXFSZ, so it fails with EFBIG instead
    if returncode != 0 and any(marker in stderr[-4000:] for marker in _MEMORY_MARKERS):
        return "memory"
    return None


def _execute(
    cmd: Sequence[str],
    cwd: Path,
    limits: Limits,
    env: Mapping[str, str] | None,
    stdin: str | None,
    *,
    prefix: list[str],
    namespaces: bool,
    drop_uid: bool = False,
    isolation: list[str] | None = None,
    cancel: threading.Event | None = None,
    scratch: Path | None = None,
) -> SandboxResult:
    isolation = list(isolation or [])
    scratch = scratch or _new_scratch()
    cgroup = _PidsCgroup.create(limits.max_processes + 2) if sys.platform == "linux" else None
    if cgroup is not None:
        isolation.append("cgroup:pids")
    try:
        (scratch / "home").mkdir(exist_ok=True)
        (scratch / "tmp").mkdir(exist_ok=True)
        disk = _DiskMeter([cwd, scratch], limits.max_disk_mb)
        status_r, status_w = os.pipe()
        config = {
            "status_fd": status_w,
            "workspace": str(cwd),
            "scratch": str(scratch),
            "namespaces": namespaces,
            "net_ns": namespaces and not limits.network,
            "network": limits.network,
            "unprivileged_uid": namespaces and drop_uid,
            "expose": _exposed_paths(cmd) if namespaces else [],
            "state_dirname": _STATE_DIRNAME,
            "shm_mb": min(64, limits.memory_mb),
            "wall_s": float(limits.wall_s),
            "parent_pid": os.getpid(),
            "limits": {
                "cpu": max(1, math.ceil(limits.cpu_s)),
                "as": int(limits.memory_mb * _MB),
                "fsize": int(limits.max_file_mb * _MB),
                "nproc": int(limits.max_processes),
            },
        }
        argv = [*prefix, sys.executable, "-I", "-S", "-c", _INIT, json.dumps(config), *cmd]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if stdin is not None else (None, None)
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=str(cwd),
                env=_build_env(env, scratch),
                stdin=in_r if in_r is not None else subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(status_w,),
                start_new_session=True,
                preexec_fn=_preexec(cgroup, os.getpid()),  # noqa: PLW1509
            )
        except OSError as exc:
            for fd in (status_r, status_w, out_r, out_w, err_r, err_w, in_r, in_w):
                if fd is not None:
                    os.close(fd)
            raise SandboxError(f"cannot start the sandbox: {exc}", location=str(cwd)) from None
        for fd in (status_w, out_w, err_w, in_r):
            if fd is not None:
                os.close(fd)

        kill_at = max(limits.max_output_bytes * _OUTPUT_KILL_FACTOR, _OUTPUT_KILL_MIN)
        overflow = threading.Event()
        captures = (_Capture(limits.max_output_bytes), _Capture(limits.max_output_bytes))
        threads = [
            threading.Thread(target=_pump, args=(out_r, captures[0], kill_at, overflow), daemon=True),
            threading.Thread(target=_pump, args=(err_r, captures[1], kill_at, overflow), daemon=True),
        ]
        if in_w is not None:
            threads.append(
                threading.Thread(target=_feed_stdin, args=(in_w, (stdin or "").encode()), daemon=True)
            )
        for t in threads:
            t.start()

        waited: dict[str, object] = {}
        done = threading.Event()

        def wait() -> None:
            while True:
                try:
                    _, status, usage = os.wait4(proc.pid, 0)
                except InterruptedError:
                    continue
                except ChildProcessError:
                    status, usage = 0, None
                waited.update(status=status, usage=usage)
                proc.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from reaping twice
                done.set()
                return

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()

        deadline = started + limits.wall_s
        wall_killed = output_killed = disk_killed = cancelled = False
        while not done.wait(_POLL_S):
            if overflow.is_set():
                output_killed = True
            elif disk.over():
                disk_killed = True
            elif time.monotonic() >= deadline:
                wall_killed = True
            elif cancel is not None and cancel.is_set():
                cancelled = True
            else:
                continue
            # Kill the command's tree but not the init, so it still reports the command's rusage.
            init_pid = _init_pid(proc.pid, namespaces)
            give_up = time.monotonic() + 1.0
            while init_pid is not None and not done.is_set() and time.monotonic() < give_up:
                for pid in _descendants(init_pid):
                    _kill(pid)
                done.wait(_POLL_S)
            break
        wall = time.monotonic() - started

        # Whatever the command left behind (background children) dies now, so the pipes close.
        _kill_tree(proc.pid, namespaces, cgroup, init_exited=done.is_set())
        for t in threads:
            t.join(5)
        waiter.join(5)
        report_raw = _read_available(status_r)
        # A writer that finished between two walks is over its quota all the same.
        disk_killed = disk.over(now=True) or disk_killed
    finally:
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
        shutil.rmtree(scratch, ignore_errors=True)

    report = json.loads(report_raw) if report_raw else {}
    # The init enforces the wall limit too (for when this loop cannot): its kill is a wall-time kill.
    wall_killed = wall_killed or bool(report.get("wall_killed"))
    if "setup_error" in report:
        raise SandboxError(f"sandbox setup failed: {report['setup_error']}", location=str(cwd))
    usage = waited.get("usage")
    if "returncode" in report:
        returncode = int(report["returncode"])
        cpu_s = float(report["cpu_s"])
        max_rss_mb = float(report["max_rss_kb"]) / 1024
    else:
        returncode = proc.returncode if proc.returncode is not None else -signal.SIGKILL
        cpu_s = (usage.ru_utime + usage.ru_stime) if usage is not None else 0.0  # type: ignore[attr-defined]
        max_rss_mb = (usage.ru_maxrss / 1024) if usage is not None else 0.0  # type: ignore[attr-defined]
        if not (wall_killed or output_killed or disk_killed or cancelled):
            raise SandboxError(
                f"the sandbox init ended without a report (exit {returncode})", location=str(cwd)
            )
    stdout, stderr = captures[0].text(), captures[1].text()
    if cancelled:
        stderr += "\n[promptkit sandbox: cancelled]"
    if disk_killed:
        stderr += (
            f"\n[promptkit sandbox: the run added {disk.used / _MB:.0f} MB to the disk, "
            f"over its {limits.max_disk_mb} MB limit (Limits.max_disk_mb)]"
        )
    reason = _classify(returncode, cpu_s, stderr, limits, wall_killed, output_killed, disk_killed)
    return SandboxResult(
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        wall_s=round(wall, 4),
        cpu_s=round(cpu_s, 4),
        timed_out=reason in ("wall-time", "cpu-time"),
        killed_reason=reason,
        max_rss_mb=round(max_rss_mb, 2),
        isolation=isolation,
    )


def _kill_tree(pid: int, namespaces: bool, cgroup: _PidsCgroup | None, *, init_exited: bool = False) -> None:
    if namespaces and not init_exited:
        # The namespace's init: when it dies the kernel kills every process in the namespace.
        init_pid = _init_pid(pid, namespaces)
        if init_pid is not None:
            _kill(init_pid)
    for _ in range(50):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.002)
    if cgroup is not None:
        cgroup.kill_all()


def run_sandboxed(
    cmd: Sequence[str],
    *,
    cwd: Path,
    limits: Limits = Limits(),  # noqa: B008 - frozen, so a shared default is safe
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    _cancel: threading.Event | None = None,
) -> SandboxResult:
    """Run ``cmd`` in ``cwd`` (the workspace) under ``limits``; never raises for what the command does.

    Raises ``SandboxError`` only when the sandbox itself cannot run (bad workspace, missing namespaces
    with ``isolation="namespaces"``, a failed setup).
    """
    if isinstance(cmd, (str, bytes)) or not cmd or not all(isinstance(c, str) for c in cmd):
        raise SandboxError(
            f"command must be a non-empty list of strings, got {cmd!r}", location="run_sandboxed"
        )
    workspace = Path(cwd).resolve()
    if not workspace.is_dir():
        raise SandboxError("workspace is not a directory", location=str(workspace))
    if workspace == Path(workspace.anchor):
        raise SandboxError("the file system root cannot be a workspace", location=str(workspace))

    _clean_leftovers()
    mode = limits.isolation
    if sys.platform == "linux" and mode != "process":
        user, drop_uid, found = _probe()
        if found == "namespaces":
            net = [] if limits.network else ["net-namespace"]
            isolation = [
                *(["user-namespace"] if user else []),
                "pid-namespace",
                "mount-namespace",
                *net,
                "ipc-namespace",
                "uts-namespace",
                "fs:read-only-except-workspace",
                "fs:only-system-python-workspace",
                *(["unprivileged-uid"] if drop_uid else []),
                "caps-dropped",
                "no-new-privs",
                "rlimits",
                "env-allowlist",
                "private-home-tmp",
                "disk-quota",
                "dies-with-parent",
            ]
            prefix = _unshare_argv(user, net_ns=not limits.network)
            return _execute(
                cmd,
                workspace,
                limits,
                env,
                stdin,
                prefix=prefix,
                namespaces=True,
                drop_uid=drop_uid,
                isolation=isolation,
                cancel=_cancel,
            )
        if mode == "namespaces":
            raise SandboxError(f"namespaces are not available ({found})", location="Limits.isolation")
    elif mode == "namespaces":
        raise SandboxError("namespaces need Linux", location="Limits.isolation")

    isolation = [
        "process-group",
        *(["caps-dropped"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        "no-new-privs",
        "rlimits",
        *(["rlimit-nproc"] if hasattr(os, "geteuid") and os.geteuid() != 0 else []),
        *([] if limits.network else ["network-guard:python-only"]),
        "fs-guard:python-only",
        "exec-guard:python-only",
        "env-allowlist",
        "private-home-tmp",
        "disk-quota",
        *(["dies-with-parent"] if sys.platform == "linux" else []),
    ]
    scratch = _new_scratch()
    try:
        guarded = _process_mode_command(cmd, workspace, scratch, limits, _build_env(env, scratch)["PATH"])
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return _execute(
        guarded,
        workspace,
        limits,
        env,
        stdin,
        prefix=[],
        namespaces=False,
        isolation=isolation,
        cancel=_cancel,
        scratch=scratch,
    )


async def arun_sandboxed(
    cmd: Sequence[str],
    *,
    cwd: Path,
    limits: Limits = Limits(),  # noqa: B008
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> SandboxResult:
    """``run_sandboxed`` on a worker thread; cancelling the task kills the command's process tree."""
    cancel = threading.Event()
    task = asyncio.ensure_future(
        asyncio.to_thread(run_sandboxed, cmd, cwd=cwd, limits=limits, env=env, stdin=stdin, _cancel=cancel)
    )
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancel.set()
        try:
            await task  # let the kill and clean-up finish before the cancellation propagates
        except Exception:
            pass
        raise
