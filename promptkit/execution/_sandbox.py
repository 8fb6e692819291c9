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
"""

from __future__ import annotations

import asyncio
import json
import math
import os
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
from pathlib import Path
from typing import Literal

from promptkit.errors import SandboxError

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
    network: bool = False
    isolation: IsolationMode = "auto"

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "memory_mb", "max_processes", "max_output_bytes", "max_file_mb"):
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
    ``output``, ``file-size`` or ``None``; ``isolation`` lists every protection that was applied."""

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


# --- the in-sandbox init ------------------------------------------------------------------------------
# Runs as `python -I -S -c _INIT config cmd...`: inside the namespaces it is PID 1. It prepares the
# mounts (while it still has capabilities), forks the command with rlimits and no capabilities, reaps
# every orphan, and reports the command's exit status and rusage as JSON on a dedicated pipe.
_INIT = r"""
import ctypes, fcntl, json, os, resource, signal, socket, struct, sys

cfg = json.loads(sys.argv[1])
cmd = sys.argv[2:]
status_fd = cfg["status_fd"]
os.set_inheritable(status_fd, False)
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
KEEP = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
        "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}


def report(**kw):
    os.write(status_fd, json.dumps(kw).encode())


def mount(src, dst, fstype, flags, data=None):
    if libc.mount(src.encode() if src else None, dst.encode(), fstype.encode() if fstype else None,
                  ctypes.c_ulong(flags), data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {dst}: {os.strerror(err)}")


def unescape(p):
    return p.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def under(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def read_only_everything(writable):
    with open("/proc/self/mountinfo") as f:
        entries = [line.split() for line in f]
    for parts in entries:
        target, opts = unescape(parts[4]), parts[5].split(",")
        if "ro" in opts or under(target, "/proc") or any(under(target, w) for w in writable):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in opts:
            flags |= KEEP.get(opt, 0)
        if not flags & (MS_NOATIME | MS_RELATIME):
            flags |= MS_STRICTATIME
        try:
            mount(None, target, None, flags)
        except OSError:
            # A mount that refuses a read-only remount is hidden under an empty read-only tmpfs.
            mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=755")


def setup_namespace():
    writable = [cfg["workspace"], cfg["scratch"]]
    for path in writable:
        mount(path, path, None, MS_BIND | MS_REC)
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=%dm,mode=1777" % cfg["shm_mb"])
    writable.append("/dev/shm")
    read_only_everything(writable)
    for path in ("/proc/sys", "/proc/sysrq-trigger"):
        if os.path.exists(path):
            mount(path, path, None, MS_BIND)
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if cfg["net_ns"]:
        # Loopback up: programs may talk to themselves, but nothing outside this namespace answers.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ifr = fcntl.ioctl(s, 0x8913, struct.pack("16sh22x", b"lo", 0))
        flags = struct.unpack("16sh22x", ifr)[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sh22x", b"lo", flags | 1))
        s.close()


def drop_privileges():
    if not sys.platform.startswith("linux"):
        return
    PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 38, 47
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
    except OSError:
        last = 63
    for cap in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    libc.capset(header, data)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def set_limit(which, value):
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else hard))


def exec_command():
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    lim = cfg["limits"]
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu_hard = lim["cpu"] + 1 if hard == resource.RLIM_INFINITY else min(lim["cpu"] + 1, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (min(lim["cpu"], cpu_hard), cpu_hard))
    set_limit(resource.RLIMIT_AS, lim["as"])
    set_limit(resource.RLIMIT_FSIZE, lim["fsize"])
    set_limit(resource.RLIMIT_CORE, 0)
    set_limit(resource.RLIMIT_NPROC, lim["nproc"])
    drop_privileges()
    os.execvp(cmd[0], cmd)


try:
    if cfg["namespaces"]:
        setup_namespace()
    os.chdir(cfg["workspace"])
except Exception as exc:
    report(setup_error=f"{type(exc).__name__}: {exc}")
    sys.exit(125)

child = os.fork()
if child == 0:
    try:
        exec_command()
    except BaseException as exc:
        os.write(2, f"promptkit sandbox: cannot run {cmd[0]!r}: {exc}\n".encode("utf-8", "replace"))
    os._exit(127)

while True:
    try:
        pid, status, usage = os.wait4(-1, 0)
    except ChildProcessError:
        sys.exit(125)
    except InterruptedError:
        continue
    if pid == child:
        break
report(returncode=os.waitstatus_to_exitcode(status), cpu_s=usage.ru_utime + usage.ru_stime,
       max_rss_kb=usage.ru_maxrss)
sys.exit(0)
"""

# Installed as sitecustomize.py in the process-mode fallback. Audit hooks cannot be removed from Python.
_GUARD = r"""
import os, sys

def _install():
    allowed = [p for p in os.environ.get("PROMPTKIT_SANDBOX_WRITABLE", "").split(os.pathsep) if p]
    no_net = os.environ.get("PROMPTKIT_SANDBOX_NETWORK") == "0"
    realpath, fspath = os.path.realpath, os.fspath
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    path_events = {"os.remove": 0, "os.rmdir": 0, "os.mkdir": 0, "os.rename": 1, "os.replace": 1,
                   "os.symlink": 1, "os.link": 1, "os.chmod": 0, "os.chown": 0, "os.truncate": 0,
                   "os.utime": 0, "shutil.rmtree": 0, "shutil.copyfile": 1}

    def check_path(event, path):
        if isinstance(path, int) or path is None:
            return
        real = realpath(fspath(path))
        if not any(real == root or real.startswith(root.rstrip("/") + "/") for root in allowed):
            raise PermissionError(f"promptkit sandbox: {event} outside the workspace refused: {real}")

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if (mode and any(c in mode for c in "wax+")) or (flags or 0) & write_flags:
                check_path(event, path)
        elif event in path_events:
            check_path(event, args[path_events[event]])
        elif no_net and event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            sock = args[0]
            if getattr(sock, "family", None) in (2, 10):
                raise PermissionError("promptkit sandbox: network access is disabled")

    sys.addaudithook(hook)

_install()
del _install
"""


# --- capability detection -------------------------------------------------------------------------------

_probe_lock = threading.Lock()
_probe_result: tuple[bool, str] | None = None


def _unshare_argv(user_ns: bool, net_ns: bool) -> list[str]:
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    argv = [unshare]
    if user_ns:
        argv += ["--user", "--map-root-user"]
    argv += list(_UNSHARE_FLAGS)
    if net_ns:
        argv.append("--net")
    return argv + ["--"]


def _probe() -> tuple[bool, str]:
    """(uses a user namespace, mode): the strongest setup that really works here, found by running a
    no-op through it once per process."""
    global _probe_result
    with _probe_lock:
        if _probe_result is not None:
            return _probe_result
        reasons: list[str] = []
        if sys.platform != "linux" or not shutil.which("unshare"):
            reasons.append("unshare not available")
        else:
            for user_ns in (True, False):
                if not user_ns and os.geteuid() != 0:
                    break  # without a user namespace, only root may unshare
                label = "with a user namespace" if user_ns else "without a user namespace"
                with tempfile.TemporaryDirectory(prefix="promptkit-probe-") as tmp:
                    try:
                        result = _execute(
                            [sys.executable, "-I", "-S", "-c", ""],
                            Path(tmp),
                            Limits(wall_s=10),
                            None,
                            None,
                            prefix=_unshare_argv(user_ns, net_ns=True),
                            namespaces=True,
                        )
                    except SandboxError as exc:
                        reasons.append(f"{label}: {exc.message}")
                        continue
                if result.ok:
                    _probe_result = (user_ns, "namespaces")
                    return _probe_result
                reasons.append(f"{label}: exit {result.returncode}: {result.stderr.strip()[-200:]}")
        _probe_result = (False, "process: " + "; ".join(reasons))
        return _probe_result


def isolation_mode() -> str:
    """``namespaces`` or ``process: <why namespaces are not available>`` for this host."""
    return _probe()[1]


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
            path = root / f"promptkit-sandbox-{uuid.uuid4().hex[:12]}"
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

    def join_fn(self):  # type: ignore[no-untyped-def]
        procs = str(self.path / "cgroup.procs").encode()

        def join() -> None:  # runs in the forked child before exec: no imports, no allocation-heavy work
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)

        return join

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


def _build_env(
    env: Mapping[str, str] | None, scratch: Path, workspace: Path, guard_dir: Path | None, network: bool
) -> dict[str, str]:
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
    if guard_dir is not None:
        out["PYTHONPATH"] = os.pathsep.join(p for p in (str(guard_dir), out.get("PYTHONPATH", "")) if p)
        out["PROMPTKIT_SANDBOX_WRITABLE"] = os.pathsep.join([str(workspace), str(scratch), "/dev"])
        out["PROMPTKIT_SANDBOX_NETWORK"] = "1" if network else "0"
    return out


def _classify(
    returncode: int, cpu_s: float, stderr: str, limits: Limits, wall_killed: bool, output_killed: bool
) -> str | None:
    if output_killed:
        return "output"
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
    isolation: list[str] | None = None,
    cancel: threading.Event | None = None,
) -> SandboxResult:
    isolation = list(isolation or [])
    scratch = Path(tempfile.mkdtemp(prefix="promptkit-sandbox-")).resolve()
    cgroup = _PidsCgroup.create(limits.max_processes + 2) if sys.platform == "linux" else None
    if cgroup is not None:
        isolation.append("cgroup:pids")
    try:
        (scratch / "home").mkdir()
        (scratch / "tmp").mkdir()
        guard_dir = None
        if not namespaces:
            guard_dir = scratch / "guard"
            guard_dir.mkdir()
            (guard_dir / "sitecustomize.py").write_text(_GUARD, encoding="utf-8")
        status_r, status_w = os.pipe()
        config = {
            "status_fd": status_w,
            "workspace": str(cwd),
            "scratch": str(scratch),
            "namespaces": namespaces,
            "net_ns": namespaces and not limits.network,
            "shm_mb": min(64, limits.memory_mb),
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
                env=_build_env(env, scratch, cwd, guard_dir, limits.network),
                stdin=in_r if in_r is not None else subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(status_w,),
                start_new_session=True,
                preexec_fn=cgroup.join_fn() if cgroup is not None else None,  # noqa: PLW1509
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
        wall_killed = output_killed = cancelled = False
        while not done.wait(_POLL_S):
            if overflow.is_set():
                output_killed = True
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
    finally:
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
        shutil.rmtree(scratch, ignore_errors=True)

    report = json.loads(report_raw) if report_raw else {}
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
        if not (wall_killed or output_killed or cancelled):
            raise SandboxError(
                f"the sandbox init ended without a report (exit {returncode})", location=str(cwd)
            )
    stdout, stderr = captures[0].text(), captures[1].text()
    if cancelled:
        stderr += "\n[promptkit sandbox: cancelled]"
    reason = _classify(returncode, cpu_s, stderr, limits, wall_killed, output_killed)
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

    mode = limits.isolation
    if sys.platform == "linux" and mode != "process":
        user, found = _probe()
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
                "caps-dropped",
                "no-new-privs",
                "rlimits",
                "env-allowlist",
                "private-home-tmp",
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
        "env-allowlist",
        "private-home-tmp",
    ]
    return _execute(
        cmd, workspace, limits, env, stdin, prefix=[], namespaces=False, isolation=isolation, cancel=_cancel
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
