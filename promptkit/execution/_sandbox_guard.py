"""The process-mode guard: an audit hook installed before the user's Python program runs.

This file is both a module (``guarded_argv`` rewrites a Python command line) and, passed whole as
``python [the command's own flags] -c <this source> <config> <mode> <target> args...``, the bootstrap
that installs the hook and then runs the program the way the interpreter would have. The guard loads
whatever the flags (``-I``, ``-S``, ``-E`` ignore ``PYTHONPATH`` and ``site``, ``-c`` does not), and its
config travels in argv, so a child cannot loosen it through its environment.

Audit hooks bind Python code only and are not a security boundary against code written to evade them
(private modules such as ``_posixsubprocess`` reach native calls without an event). The hook refuses
writes outside the writable roots, network connections (when off), ``ctypes`` libraries, and starting
any program other than a guarded Python interpreter.

Runs under ``-I -S``: standard library only, nothing from promptkit.
"""

import json
import os
import re
import sys

_PYTHON_NAME = re.compile(r"python3?(\.\d+)?")
_FLAGS = set("bBdEiIOPqRsSuv")
_INFO_FLAGS = set("hV?")
_INFO_LONG = ("--help", "--version", "--help-env", "--help-xoptions", "--help-all")


class Unguardable(Exception):
    """A command line the guard cannot be loaded into."""


def parse_python_argv(argv):
    """``(options, mode, target, args)`` of a CPython command line; mode is ``script``, ``module``,
    ``code``, ``stdin`` or ``info`` (only prints help or the version, runs no code)."""
    options, i = [], 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if arg == "-" or not arg.startswith("-"):
            break
        if arg.startswith("--"):
            if arg in _INFO_LONG:
                return options, "info", None, []
            if arg == "--check-hash-based-pycs" and i + 1 < len(argv):
                options += argv[i : i + 2]
                i += 2
                continue
            raise Unguardable(f"unknown interpreter option {arg!r}")
        for j, letter in enumerate(arg[1:], start=1):
            rest = arg[j + 1 :]
            if letter in _INFO_FLAGS:
                return options, "info", None, []
            if letter in "cmWX":
                value = rest if rest else (argv[i + 1] if i + 1 < len(argv) else None)
                if value is None:
                    raise Unguardable(f"interpreter option -{letter} needs an argument")
                i += 1 if rest else 2
                if letter == "c":
                    return options, "code", value, argv[i:]
                if letter == "m":
                    return options, "module", value, argv[i:]
                options += [f"-{letter}", value]
                break
            if letter not in _FLAGS:
                raise Unguardable(f"unsupported interpreter option -{letter}")
            options.append(f"-{letter}")
        else:
            i += 1
    if i >= len(argv):
        return options, "stdin", "", []
    if argv[i] == "-":
        return options, "stdin", "-", argv[i + 1 :]
    return options, "script", argv[i], argv[i + 1 :]


def is_python(path, writable):
    """Whether ``path`` (absolute) is a Python interpreter the guard can trust to be one: named like
    one and outside every folder the sandboxed code may write (so it cannot be swapped for a script)."""
    real = os.path.realpath(path)
    if not (_PYTHON_NAME.fullmatch(os.path.basename(path)) or _PYTHON_NAME.fullmatch(os.path.basename(real))):
        return False
    return not any(_under(p, root) for root in writable for p in (os.path.abspath(path), real))


def resolve(program, env_path, writable):
    """The absolute path ``program`` runs as, or None; a search through a writable folder is refused,
    as a file planted there later could run in its place."""
    if "/" in program:
        return os.path.abspath(program)
    for folder in (env_path or os.defpath).split(os.pathsep):
        folder = os.path.abspath(folder or ".")
        if any(_under(folder, root) for root in writable):
            return None
        candidate = os.path.join(folder, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def guarded_argv(argv, config, guard_source):
    """``argv`` rewritten so the guard is installed first; ``argv`` as is when it runs no code."""
    options, mode, target, args = parse_python_argv(argv)
    if mode == "info":
        return list(argv)
    return [argv[0], *options, "-c", guard_source, json.dumps(config), mode, target, *args]


def _under(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def install(config, guard_source):
    writable = list(config["writable"])
    no_net = not config["network"]
    realpath, fspath = os.path.realpath, os.fspath
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    path_events = {
        "os.remove": (0,),
        "os.rmdir": (0,),
        "os.mkdir": (0,),
        "os.rename": (0, 1),
        "os.replace": (0, 1),
        "os.symlink": (1,),
        "os.link": (1,),
        "os.chmod": (0,),
        "os.chown": (0,),
        "os.chflags": (0,),
        "os.truncate": (0,),
        "os.utime": (0,),
        "os.mkfifo": (0,),
        "os.mknod": (0,),
        "shutil.rmtree": (0,),
        "shutil.copyfile": (1,),
        "sqlite3.connect": (0,),
    }

    def refuse(what):
        raise PermissionError(f"promptkit sandbox: {what} refused")

    def check_path(event, path):
        if isinstance(path, int) or path is None or path in (":memory:", b":memory:", ""):
            return
        real = realpath(fspath(path))
        if not any(_under(real, root) for root in writable):
            refuse(f"{event} outside the workspace ({real})")

    def check_program(event, program, argv, env):
        env_path = (env or {}).get("PATH", os.environ.get("PATH")) if isinstance(env, dict) else None
        path = resolve(fspath(program), env_path or os.environ.get("PATH"), writable)
        if path is None or not is_python(path, writable):
            refuse(f"{event} of {fspath(program)!r} (only the Python interpreter runs under this guard)")
        try:
            options, mode, target, _ = parse_python_argv([fspath(a) for a in argv])
        except (Unguardable, TypeError) as exc:
            refuse(f"{event} of {fspath(program)!r}: {exc}")
        return mode == "info" or (mode == "code" and target == guard_source)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if (mode and any(c in mode for c in "wax+")) or (flags or 0) & write_flags:
                check_path(event, path)
        elif event in path_events:
            for index in path_events[event]:
                check_path(event, args[index])
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg") and no_net:
            family = getattr(args[0], "family", None)
            if family in (2, 10):
                refuse("network access (the sandbox has no network)")
            if family == 1:
                address = args[1] if event == "socket.connect" else None
                if not isinstance(address, (str, bytes)) or address[:1] in ("\0", b"\0"):
                    refuse("a connection to an abstract or unknown unix socket")
                check_path(event, address)
        elif event == "subprocess.Popen":
            program, argv, _, env = args
            if not isinstance(argv, list) or not argv:
                refuse(f"{event} of {program!r}")
            if not check_program(event, program, argv, env):
                # The list is the one Popen is about to run: a Python child gets the guard too.
                argv[:] = guarded_argv([fspath(a) for a in argv], config, guard_source)
        elif event in ("os.exec", "os.posix_spawn", "os.spawn"):
            program, argv = args[0], args[1]
            if not check_program(event, program, list(argv), args[2] if len(args) > 2 else None):
                refuse(f"{event} of an unguarded Python command (use subprocess)")
        elif event in ("os.system", "os.startfile", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata"):
            refuse(event)

    sys.addaudithook(hook)


def bootstrap(source):
    """The ``-c`` program: runs this file's source in its own namespace, so ``__main__`` stays the
    program's, as it would be without the guard."""
    return f"exec(compile({source!r}, {_NAME!r}, 'exec'), {{'__name__': {_NAME!r}}})"


def _trimmed(tb):
    """The traceback without the guard's frames, as the program would have shown it."""
    import types

    kept = []
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename not in (_NAME, _RUNPY, "<frozen runpy>"):
            kept.append(tb)
        tb = tb.tb_next
    out = None
    for entry in reversed(kept):
        out = types.TracebackType(out, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return out


def _main():
    global _RUNPY
    if not hasattr(sys, "addaudithook"):
        sys.stderr.write("promptkit sandbox: this Python has no audit hooks; refusing to run unguarded\n")
        sys.exit(126)
    # The -c program as the interpreter got it: a Python child is guarded only if it carries the same.
    _, _, stub, _ = parse_python_argv(sys.orig_argv)
    config, mode, target, args = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    import runpy

    _RUNPY = runpy.__file__
    install(config, stub)
    prepend = not (sys.flags.isolated or getattr(sys.flags, "safe_path", False))
    if prepend and sys.path and sys.path[0] == "":
        del sys.path[0]  # the entry -c added; the program's own comes next
    try:
        if mode == "script":
            sys.argv = [target, *args]
            if prepend:
                sys.path.insert(0, os.path.dirname(os.path.realpath(target)))
            runpy.run_path(target, run_name="__main__")
        elif mode == "module":
            sys.argv = ["-m", *args]
            if prepend:
                sys.path.insert(0, os.getcwd())
            runpy._run_module_as_main(target)
        else:
            if prepend:
                sys.path.insert(0, "")
            if mode == "stdin":
                sys.argv, code, name = [target, *args], sys.stdin.read(), "<stdin>"
            else:
                sys.argv, code, name = ["-c", *args], target, "<string>"
            exec(compile(code, name, "exec"), vars(sys.modules["__main__"]))
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - shown as the interpreter shows it, then exit 1
        tb = _trimmed(exc.__traceback__)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        sys.exit(1)


_NAME = "<promptkit-sandbox-guard>"
_RUNPY = ""
if __name__ == _NAME:
    _main()
