"""The sandbox init, run as ``python -I -S -c <this source> config cmd...``.

Inside the namespaces it is PID 1. It builds the sandbox's file system (while it still has
capabilities), forks the command with rlimits, an unprivileged uid and no capabilities, reaps every
orphan, and reports the command's exit status and rusage as JSON on a dedicated pipe. In process mode it
only sets the limits and runs the command.

It also bounds the run on its own, so that nothing outlives its limits when promptkit cannot: it kills the
command at the wall limit (the parent's poll loop normally does so first), and it dies with its parent,
taking the command with it (in process mode through a parent-death signal and a child subreaper; in the
namespaces the kernel kills every process once this PID 1 dies).

The namespace's file system is a fresh read-only tmpfs holding only what a Python program needs: the
system's programs and libraries (/usr, /bin, /lib*), the interpreter's prefixes (venv and base), a few
/etc files, minimal /dev and /proc, and, writable, the workspace and a private HOME and /tmp. The rest of
the host (/root, /home, /etc/shadow, the workspace's parent folders) is not there to read.

Runs under ``-I -S``: standard library only, nothing from promptkit.
"""

import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import sys
import time

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
MNT_DETACH = 2
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
LINUX = sys.platform.startswith("linux")
KEEP = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
# The uid/gid the command runs as inside its own user namespace: not root there, so it holds no
# capability over the mounts, which belong to the enclosing namespace.
SANDBOX_UID = SANDBOX_GID = 1000
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_PATHS = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "mime.types",
    "alternatives",
    "ssl",
    "ca-certificates",
    "pki",
    "os-release",
)
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}

libc = ctypes.CDLL(None, use_errno=True)
cfg: dict = {}
state = {"wall_killed": False}


def report(**kw):
    os.write(cfg["status_fd"], json.dumps(kw).encode())


def fail(what):
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src, dst, fstype, flags, data=None):
    if (
        libc.mount(
            src.encode() if src else None,
            dst.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        )
        != 0
    ):
        fail(f"mount {dst}")


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


def place(root, path, source=None):
    """Show host ``source`` (default ``path``) at ``path`` under ``root``: a symlink is copied as one,
    a file or folder is bind-mounted. Missing sources are skipped."""
    source = source or path
    target = root + path
    if os.path.lexists(target) and os.path.ismount(target):
        return
    if os.path.islink(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(source), target)
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif os.path.exists(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "a").close()
    else:
        return
    mount(source, target, None, MS_BIND | MS_REC)


def write_file(root, path, text):
    os.makedirs(os.path.dirname(root + path), exist_ok=True)
    with open(root + path, "w") as f:
        f.write(text)


def pivot_root(root):
    number = _PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(f"pivot_root: unknown syscall number on {os.uname().machine}")
    os.chdir(root)
    # pivot_root(".", "."): the old root lands on top of the new one and is then detached.
    if libc.syscall(number, b".", b".") != 0:
        fail("pivot_root")
    if libc.umount2(b".", MNT_DETACH) != 0:
        fail("umount old root")
    os.chdir("/")


def build_root():
    workspace, scratch = cfg["workspace"], cfg["scratch"]
    root = scratch + "/root"
    os.makedirs(root, exist_ok=True)
    mount("tmpfs", root, "tmpfs", MS_NOSUID, "size=16m,mode=755")
    # /tmp is the run's own scratch tmp (writable, so first: nothing shown later lands under it unseen).
    place(root, "/tmp", scratch + "/tmp")
    placed = []
    for path in sorted({*SYSTEM_PATHS, *cfg["expose"]}):
        real = os.path.realpath(path)
        if not any(under(path, p) or under(real, os.path.realpath(p)) for p in placed):
            place(root, path)
            placed.append(path)
    # /etc: a few host files, and our own passwd/group/hosts that name the sandbox user only.
    os.makedirs(root + "/etc", exist_ok=True)
    for name in ETC_PATHS + (("resolv.conf", "hosts") if cfg["network"] else ()):
        place(root, "/etc/" + name)
    home = scratch + "/home"
    write_file(root, "/etc/passwd", f"sandbox:x:{SANDBOX_UID}:{SANDBOX_GID}::{home}:/bin/sh\n")
    write_file(root, "/etc/group", f"sandbox:x:{SANDBOX_GID}:\n")
    if not cfg["network"]:
        write_file(root, "/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n")
    # /dev: the harmless devices only, and a private /dev/shm.
    os.makedirs(root + "/dev", exist_ok=True)
    mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            place(root, "/dev/" + name)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"{root}/dev/{name}")
    os.makedirs(root + "/dev/shm")
    mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['shm_mb']}m,mode=1777")
    os.makedirs(root + "/proc")
    mount("/proc", root + "/proc", None, MS_BIND | MS_REC)
    # Writable, at their own paths: the scratch (HOME) and the workspace.
    mount(scratch, _mkdirs(root + scratch), None, MS_BIND)  # not MS_REC: the new root is under it
    place(root, workspace)
    state = workspace + "/" + cfg["state_dirname"]
    return root, state


def _mkdirs(path):
    os.makedirs(path, exist_ok=True)
    return path


def setup_namespace():
    root, state = build_root()
    pivot_root(root)
    writable = [cfg["workspace"], cfg["scratch"], "/tmp", "/dev/shm"]
    read_only_everything(writable)
    if os.path.isdir(state):
        # The project's state folder (run logs, caches, failed attempts) is not the model's to read.
        mount("tmpfs", state, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=755")
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


def become_sandbox_user():
    """Enter a user namespace of our own where we are SANDBOX_UID, not root. The mounts belong to the
    enclosing namespace, so nothing here can change them; on the host the id stays the caller's, which
    is what lets the command write the workspace."""
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER) != 0:
        fail("unshare(CLONE_NEWUSER)")
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{SANDBOX_UID} {uid} 1\n"),
        ("gid_map", f"{SANDBOX_GID} {gid} 1\n"),
    ):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


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
        fail("prctl(PR_SET_NO_NEW_PRIVS)")


def set_limit(which, value):
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else hard))


def descendants(pid):
    """Every live process under ``pid``, children of all its threads included."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
            for child in children:
                found.append(child)
                todo.append(child)
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def kill_command_tree():
    """SIGKILL everything this init started. As PID 1 of the namespace, kill(-1) reaches every process in
    it; in process mode the tree is walked (a subreaper, so orphans stay under us) until none is alive."""
    if cfg["namespaces"]:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        return
    for _ in range(400):
        pids = [p for p in descendants(os.getpid()) if alive(p)]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.005)


def on_wall_limit(signum, frame):
    state["wall_killed"] = True
    kill_command_tree()


def on_parent_death(signum, frame):
    kill_command_tree()
    os._exit(128 + signal.SIGKILL)


def exec_command(cmd):
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
    if cfg["unprivileged_uid"]:
        become_sandbox_user()
    drop_privileges()
    if LINUX:
        # Set last: a change of credentials clears it. Exec keeps it (a set-uid program aside).
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != cfg["init_pid"]:
            os._exit(137)
    os.execvp(cmd[0], cmd)


def main():
    cfg.update(json.loads(sys.argv[1]))
    cmd = sys.argv[2:]
    os.set_inheritable(cfg["status_fd"], False)
    if LINUX and not cfg["namespaces"]:
        # Our parent is promptkit: when it dies, so does the command's whole tree (orphans included).
        signal.signal(signal.SIGTERM, on_parent_death)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != cfg["parent_pid"]:
            os._exit(137)  # it died before the signal was armed
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        if cfg["namespaces"]:
            setup_namespace()
        os.chdir(cfg["workspace"])
    except Exception as exc:
        report(setup_error=f"{type(exc).__name__}: {exc}")
        sys.exit(125)

    cfg["init_pid"] = os.getpid()
    child = os.fork()
    if child == 0:
        try:
            exec_command(cmd)
        except BaseException as exc:
            os.write(2, f"promptkit sandbox: cannot run {cmd[0]!r}: {exc}\n".encode("utf-8", "replace"))
        os._exit(127)

    # The wall limit holds even when promptkit's own poll loop is not there to enforce it.
    signal.signal(signal.SIGALRM, on_wall_limit)
    signal.setitimer(signal.ITIMER_REAL, cfg["wall_s"])
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            sys.exit(125)
        except InterruptedError:
            continue
        if pid == child:
            break
    signal.setitimer(signal.ITIMER_REAL, 0)
    if not cfg["namespaces"]:
        kill_command_tree()  # what the command left running (the namespace's end kills it there)
    report(
        returncode=os.waitstatus_to_exitcode(status),
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_kb=usage.ru_maxrss,
        wall_killed=state["wall_killed"],
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
