"""Verifiers: checks that a workspace is right (it compiles, lints, passes its tests, parses).

Each verifier runs its check inside the sandbox, since the code and files it looks at are untrusted.
Plans name verifiers as data, so they are built from specs::

    "pytest"                                  # defaults
    {"pytest": {"args": ["-k", "fast"]}}      # options
    {"command": ["make", "check"]}            # one positional argument
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar, runtime_checkable

from promptkit._plugins import Registry
from promptkit.errors import ConfigError
from promptkit.execution._sandbox import Limits, SandboxResult, arun_sandboxed

__all__ = [
    "Verifier",
    "VerifierResult",
    "VERIFIERS",
    "verifier",
    "get_verifier",
    "verifier_names",
    "verifier_from_spec",
    "run_verifiers",
    "PythonCompile",
    "Ruff",
    "Pytest",
    "JsonValid",
    "YamlValid",
    "Command",
    "DocstringExamplesVerifier",
    "TOOLS_HINT",
    "missing_tools",
]

_DETAILS_LIMIT = 8_000
_SKIP_DIRS = {"venv", "__pycache__", "node_modules"}  # besides every dot-folder
# The tools the ruff and pytest verifiers run come with this extra; said wherever one is missing.
TOOLS_HINT = "pip install 'promptkit[scaffold]'"


@dataclass(frozen=True)
class VerifierResult:
    """One verifier's verdict. ``summary`` is one line; ``details`` the (truncated) output behind it;
    ``counts`` what the check counted (``errors``, ``files``, ``passed``, ``failed``...)."""

    name: str
    ok: bool
    summary: str
    details: str = ""
    duration_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class Verifier(Protocol):
    """Anything that checks a workspace. It must not raise for a failed check: it returns ``ok=False``."""

    async def __call__(self, workspace: Path) -> VerifierResult: ...


_V = TypeVar("_V", bound=Callable[..., Verifier])


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "-")


# Plans name verifiers; third-party ones come through the `promptkit.verifiers` entry points or @verifier.
VERIFIERS: Registry[Callable[..., Verifier]] = Registry(
    "verifier",
    group="promptkit.verifiers",
    builtins={
        "python-compile": "promptkit.execution._verifiers:PythonCompile",
        "json-valid": "promptkit.execution._verifiers:JsonValid",
        "yaml-valid": "promptkit.execution._verifiers:YamlValid",
        "ruff": "promptkit.execution._verifiers:Ruff",
        "pytest": "promptkit.execution._verifiers:Pytest",
        "command": "promptkit.execution._verifiers:Command",
        "docstring-examples": "promptkit.execution._verifiers:DocstringExamplesVerifier",
        "stated-asserts": "promptkit.execution._verifiers:StatedAsserts",
    },
    error=ConfigError,
    normalize=_normal,
)


def verifier(name: str) -> Callable[[_V], _V]:
    """Register a verifier class (or factory) under ``name`` so that specs can refer to it."""

    def register(factory: _V) -> _V:
        return VERIFIERS.register(name, factory)  # type: ignore[return-value]

    return register


def verifier_names() -> list[str]:
    return VERIFIERS.names()


def get_verifier(name: str, *, location: str = "verifier spec") -> Callable[..., Verifier]:
    return VERIFIERS.get(name, location=location)


def verifier_from_spec(spec: str | Mapping[str, Any], *, location: str = "verifier spec") -> Verifier:
    """Build a verifier from a plan's spec: a name, or ``{name: options}`` (a mapping of keyword
    arguments, a single positional value, or null)."""
    if isinstance(spec, str):
        name, options = spec, None
    elif isinstance(spec, Mapping) and len(spec) == 1:
        ((name, options),) = spec.items()
    else:
        raise ConfigError(
            f"a verifier spec is a name or a one-key mapping {{name: options}}, got {spec!r}",
            location=location,
        )
    factory = get_verifier(name, location=location)
    try:
        if options is None:
            return factory()
        if isinstance(options, Mapping):
            return factory(**{str(k).replace("-", "_"): v for k, v in options.items()})
        return factory(options)
    except ConfigError as exc:
        raise ConfigError(exc.message, location=f"{location}: {name}") from None
    except TypeError as exc:
        raise ConfigError(f"bad options for verifier {name!r}: {exc}", location=location) from None


async def run_verifiers(
    workspace: Path,
    verifiers: Iterable[Verifier | str | Mapping[str, Any]],
    *,
    stop_on_failure: bool = False,
) -> list[VerifierResult]:
    """Run verifiers one after the other (they share the workspace); specs are built first, so a bad
    spec fails before anything runs."""
    built = [v if callable(v) else verifier_from_spec(v) for v in verifiers]  # type: ignore[arg-type]
    results: list[VerifierResult] = []
    for check in built:
        result = await check(Path(workspace))
        results.append(result)
        if stop_on_failure and not result.ok:
            break
    return results


def missing_tools(specs: Iterable[str | Mapping[str, Any]]) -> list[str]:
    """The tools these verifier specs run that this interpreter lacks (of ``ruff`` and ``pytest``), so that
    a caller can stop before its first step instead of failing every one."""
    names = {_normal(s if isinstance(s, str) else str(next(iter(s), ""))) for s in specs}
    have = {"ruff": Ruff._command() is not None, "pytest": Pytest.installed()}
    return [tool for tool, ok in have.items() if tool in names and not ok]


# --- helpers --------------------------------------------------------------------------------------------------


def _truncate(text: str, limit: int = _DETAILS_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… {len(text) - 2 * half} characters truncated …]\n{text[-half:]}"


def _output(result: SandboxResult) -> str:
    return "\n".join(part for part in (result.stdout.rstrip(), result.stderr.rstrip()) if part)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _killed(name: str, result: SandboxResult, limits: Limits) -> str:
    bound = {
        "wall-time": f"{limits.wall_s:g} s wall",
        "cpu-time": f"{limits.cpu_s:g} s CPU",
        "memory": f"{limits.memory_mb} MB",
        "output": f"{limits.max_output_bytes} bytes of output",
    }.get(result.killed_reason or "", "its limits")
    return f"{name}: stopped by the sandbox ({result.killed_reason}, limit {bound})"


def _relative_paths(paths: str | Sequence[str] | None, what: str) -> tuple[str, ...]:
    if paths is None:
        return ()
    items = (paths,) if isinstance(paths, str) else tuple(paths)
    for item in items:
        pure = PurePosixPath(str(item))
        if not isinstance(item, str) or not item or pure.is_absolute() or ".." in pure.parts:
            raise ConfigError(
                f"{what} must be relative paths inside the workspace, got {item!r}", location=what
            )
    return items


class _Sandboxed:
    """Shared plumbing: run a command in the sandbox and time it."""

    name = "verifier"
    default_limits = Limits()

    def __init__(self, limits: Limits | None = None, env: Mapping[str, str] | None = None) -> None:
        self.limits = limits or self.default_limits
        self.env = dict(env) if env else None

    async def _run(self, workspace: Path, cmd: list[str]) -> tuple[SandboxResult, float]:
        started = time.monotonic()
        result = await arun_sandboxed(cmd, cwd=workspace, limits=self.limits, env=self.env)
        return result, round(time.monotonic() - started, 4)

    def _result(self, ok: bool, summary: str, details: str, duration: float, **counts: int) -> VerifierResult:
        return VerifierResult(
            name=self.name,
            ok=ok,
            summary=summary,
            details=_truncate(details),
            duration_s=duration,
            counts=counts,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


# Scripts that run inside the sandbox print one finding per line: "path:line:col: Kind: message".
_COMPILE_SCRIPT = r"""
import os, sys
SKIP = {".git", ".hg", ".venv", "venv", "__pycache__", "node_modules", ".tox", ".nox"}
files = []
for root in sys.argv[1:] or ["."]:
    if os.path.isfile(root):
        files.append(root)
        continue
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
        files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".py")]
errors = 0
for path in files:
    rel = os.path.normpath(path)
    try:
        with open(path, "rb") as f:
            compile(f.read(), rel, "exec", dont_inherit=True)
    except SyntaxError as e:
        errors += 1
        print(f"{rel}:{e.lineno or 0}:{e.offset or 0}: {type(e).__name__}: {e.msg}")
    except (ValueError, OSError) as e:
        errors += 1
        print(f"{rel}:0:0: {type(e).__name__}: {e}")
print(f"#files={len(files)} errors={errors}")
sys.exit(1 if errors else 0)
"""

_PARSE_SCRIPT = r"""
import glob, json, sys
kind, patterns = sys.argv[1], sys.argv[2:]
files = sorted({p for pat in patterns for p in glob.glob(pat, recursive=True) if not p.endswith("/")})
import os
files = [f for f in files if os.path.isfile(f)]
errors = 0
for path in files:
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        if kind == "json":
            json.loads(text)
        else:
            import yaml
            for _ in yaml.safe_load_all(text):
                pass
    except UnicodeDecodeError as e:
        errors += 1
        print(f"{path}:0:0: UnicodeDecodeError: {e.reason} at byte {e.start}")
    except json.JSONDecodeError as e:
        errors += 1
        print(f"{path}:{e.lineno}:{e.colno}: JSONDecodeError: {e.msg}")
    except Exception as e:
        mark = getattr(e, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        errors += 1
        msg = " ".join(str(getattr(e, "problem", None) or e).split())
        print(f"{path}:{line}:{col}: {type(e).__name__}: {msg}")
print(f"#files={len(files)} errors={errors}")
sys.exit(1 if errors else 0)
"""

_TALLY = re.compile(r"^#files=(\d+) errors=(\d+)$", re.MULTILINE)
_FINDING = re.compile(r"^(?!#).+:\d+:\d+: .+$", re.MULTILINE)


def _finding_result(v: _Sandboxed, result: SandboxResult, duration: float, noun: str) -> VerifierResult:
    """Result for the in-sandbox scripts above."""
    details = _output(result)
    tally = _TALLY.search(result.stdout)
    if result.killed_reason or tally is None:
        summary = (
            _killed(v.name, result, v.limits)
            if result.killed_reason
            else f"{v.name}: checker failed (exit {result.returncode}): {_last_line(details)}"
        )
        return v._result(False, summary, details, duration)
    files, errors = int(tally.group(1)), int(tally.group(2))
    if files == 0:
        return v._result(False, f"{v.name}: no {noun} files found", details, duration, files=0, errors=0)
    if errors == 0:
        return v._result(
            True, f"{v.name}: {files} {noun} file(s) ok", details, duration, files=files, errors=0
        )
    first = _FINDING.search(result.stdout)
    summary = (
        f"{v.name}: {errors} error(s) in {files} {noun} file(s); first: {first.group(0) if first else '?'}"
    )
    return v._result(False, summary, details, duration, files=files, errors=errors)


# --- the verifiers -----------------------------------------------------------------------------------------


class PythonCompile(_Sandboxed):
    """Every ``.py`` file under ``paths`` (default: the whole workspace) compiles."""

    name = "python-compile"

    def __init__(
        self,
        paths: str | Sequence[str] | None = None,
        *,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(limits, env)
        self.paths = _relative_paths(paths, "python-compile.paths")

    async def __call__(self, workspace: Path) -> VerifierResult:
        result, duration = await self._run(
            workspace, [sys.executable, "-I", "-S", "-c", _COMPILE_SCRIPT, *self.paths]
        )
        return _finding_result(self, result, duration, "Python")


class JsonValid(_Sandboxed):
    """Every file matching ``glob`` (relative to the workspace; ``**`` recurses) is valid JSON."""

    name = "json-valid"

    def __init__(
        self,
        glob: str | Sequence[str] = "**/*.json",
        *,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(limits, env)
        self.globs = _relative_paths(glob, f"{self.name}.glob")

    async def __call__(self, workspace: Path) -> VerifierResult:
        cmd = [sys.executable, "-I", "-S", "-c", _PARSE_SCRIPT, "json", *self.globs]
        result, duration = await self._run(workspace, cmd)
        return _finding_result(self, result, duration, "JSON")


class YamlValid(_Sandboxed):
    """Every file matching ``glob`` is valid YAML (safe loader, every document of a stream)."""

    name = "yaml-valid"

    def __init__(
        self,
        glob: str | Sequence[str] = ("**/*.yaml", "**/*.yml"),
        *,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(limits, env)
        self.globs = _relative_paths(glob, f"{self.name}.glob")

    async def __call__(self, workspace: Path) -> VerifierResult:
        # Not -I/-S: PyYAML lives in site-packages. The sandbox env carries no PYTHON* surprises.
        cmd = [sys.executable, "-c", _PARSE_SCRIPT, "yaml", *self.globs]
        result, duration = await self._run(workspace, cmd)
        return _finding_result(self, result, duration, "YAML")


_RUFF_FINDING = re.compile(r"^.+?:\d+:\d+: \S.*$", re.MULTILINE)


class Ruff(_Sandboxed):
    """``ruff check`` passes on the workspace (its own ruff configuration applies)."""

    name = "ruff"

    def __init__(
        self,
        select: str | Sequence[str] | None = None,
        *,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(limits, env)
        if select is not None and not isinstance(select, str):
            select = ",".join(select)
        self.select = select

    @staticmethod
    def _command() -> list[str] | None:
        exe_dir = str(Path(sys.executable).parent)
        found = shutil.which("ruff", path=exe_dir) or shutil.which("ruff")
        if found:
            return [found]
        if importlib.util.find_spec("ruff") is not None:
            return [sys.executable, "-m", "ruff"]
        return None

    async def __call__(self, workspace: Path) -> VerifierResult:
        base = self._command()
        if base is None:
            return self._result(False, f"ruff: not installed ({TOOLS_HINT}); nothing was checked", "", 0.0)
        # .promptkit/ holds the executor's state and the files of failed attempts, not the project.
        cmd = [
            *base,
            "check",
            "--no-cache",
            "--output-format",
            "concise",
            "--no-fix",
            "--extend-exclude",
            ".promptkit",
        ]
        if self.select:
            cmd += ["--select", self.select]
        result, duration = await self._run(workspace, [*cmd, "."])
        details = _output(result)
        if result.killed_reason:
            return self._result(False, _killed(self.name, result, self.limits), details, duration)
        findings = _RUFF_FINDING.findall(result.stdout)
        if result.returncode == 0:
            return self._result(True, "ruff: no violations", details, duration, violations=0)
        if result.returncode == 1 and findings:
            summary = f"ruff: {len(findings)} violation(s); first: {findings[0]}"
            return self._result(False, summary, details, duration, violations=len(findings))
        return self._result(
            False, f"ruff: failed to run (exit {result.returncode}): {_last_line(details)}", details, duration
        )


_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)\b")
_PYTEST_SUMMARY = re.compile(
    r"^=*\s*(?:\d+ \w+(?:, )?)+.* in [\d.]+s.*$|^no tests ran in [\d.]+s.*$", re.MULTILINE
)
_PYTEST_EXIT = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}


# A frame of pytest's --tb=short listing: "path:line: in function", then its indented source lines.
_FRAME = re.compile(r"^(?P<path>\S[^:]*):\d+: in \S+$")


def pytest_frames(output: str) -> list[tuple[str, str]]:
    """Each frame of pytest's --tb=short listing in ``output``: its path and its first source line."""
    lines = output.splitlines()
    return [
        (frame["path"], lines[index + 1].strip())
        for index, line in enumerate(lines[:-1])
        if (frame := _FRAME.match(line)) is not None
    ]


def hide_library_frames(output: str) -> str:
    """pytest's output with the traceback frames of installed code (absolute paths: the standard library,
    site-packages) folded into one line each run. A failing request through a web framework is ~40 such
    frames; the repair prompt keeps only its first few thousand characters, which they would fill before the
    error itself. The project's own frames are relative to its root and stay."""
    out: list[str] = []
    hidden = 0
    skipping = False
    for line in output.splitlines():
        frame = _FRAME.match(line)
        if frame is not None:
            skipping = frame["path"].startswith("/") or "site-packages" in frame["path"]
            if skipping:
                hidden += 1
                continue
        elif skipping and line.startswith((" ", "\t")) and not line.lstrip().startswith("E "):
            continue
        if hidden:
            out.append(f"[… {hidden} frame(s) in installed libraries …]")
            hidden = 0
        skipping = False
        out.append(line)
    if hidden:
        out.append(f"[… {hidden} frame(s) in installed libraries …]")
    return "\n".join(out)


# A warning that installed code raised, as Python prints it on stderr: the "file:line: XWarning: text" line,
# its text, and the source line, ending in the `warnings.warn(...)` call.
_LIBRARY_WARNING = re.compile(
    r"^\S*(?:site-packages|/lib/python3)\S*:\d+: \w*Warning: .*?^\s+warnings\.warn\([^\n]*\n?",
    re.MULTILINE | re.DOTALL,
)


def hide_library_warnings(stderr: str) -> str:
    """stderr without the warnings that installed libraries print (pytest-asyncio's deprecation notice is
    600 characters of every failing run): they say nothing about the code under test."""
    return _LIBRARY_WARNING.sub("", stderr)


# One line of pytest's string diff: "E     - expected line" / "E     + actual line".
_DIFF_LINE = re.compile(r"^E\s+(?P<sign>[-+]) (?P<text>.*)$")


def point_out_spacing(output: str) -> str:
    """pytest's output with a note under each pair of diff lines that differ only in their spacing. pytest
    marks such a difference with ``?   - -`` under the line, which small models do not read: they repeat
    the one-space answer when the spec asks for two."""
    lines = output.splitlines()
    notes: dict[int, str] = {}
    for index, line in enumerate(lines):
        first = _DIFF_LINE.match(line)
        if first is None:
            continue
        # The other half of the pair, after pytest's "?" marker line when it has one.
        after = index + 1
        if after < len(lines) and lines[after][1:].lstrip().startswith("?"):
            after += 1
        second = _DIFF_LINE.match(lines[after]) if after < len(lines) else None
        if second is None or second["sign"] == first["sign"]:
            continue
        a, b = first["text"], second["text"]
        if a != b and a.split() == b.split() and a.strip():
            runs = {
                m["sign"]: ", ".join(str(len(r)) for r in re.findall(r"\s+", m["text"].strip())) or "no"
                for m in (first, second)
            }
            notes[after] = (
                f"E     (only the spacing differs: the - line, right of ==, has runs of {runs['-']} spaces; "
                f"the + line, left of ==, {runs['+']})"
            )
    out: list[str] = []
    for index, line in enumerate(lines):
        out.append(line)
        if index in notes:
            out.append(notes[index])
    return "\n".join(out)


class Pytest(_Sandboxed):
    """``python -m pytest -q -x -p no:cacheprovider [args] [tests]`` passes; the counts are parsed.

    ``expect="fail"`` checks tests written before the code they test ("red before green"): it passes only
    when every test runs and fails. A test that passes before the feature exists cannot tell whether the
    feature works, and one that errors (a syntax error, a missing fixture) tests nothing.
    """

    name = "pytest"
    default_limits = Limits(wall_s=120, cpu_s=120, memory_mb=1024)

    def __init__(
        self,
        args: Sequence[str] = (),
        tests: str | Sequence[str] | None = None,
        *,
        expect: str = "pass",
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(limits, env)
        if expect not in ("pass", "fail"):
            raise ConfigError(f"expect must be 'pass' or 'fail', got {expect!r}", location="pytest.expect")
        self.expect = expect
        if isinstance(args, str):
            args = shlex.split(args)
        if not all(isinstance(a, str) for a in args):
            raise ConfigError(f"args must be strings, got {args!r}", location="pytest.args")
        self.args = tuple(args)
        self.tests = _relative_paths(tests, "pytest.tests")

    @staticmethod
    def installed() -> bool:
        return importlib.util.find_spec("pytest") is not None

    @staticmethod
    def parse_counts(output: str) -> dict[str, int]:
        """Counts from pytest's final summary line (``1 failed, 2 passed in 0.1s``)."""
        lines = _PYTEST_SUMMARY.findall(output)
        if not lines:
            return {}
        counts: dict[str, int] = {}
        for number, kind in _PYTEST_COUNT.findall(lines[-1]):
            key = {"error": "errors", "warning": "warnings"}.get(kind, kind)
            counts[key] = counts.get(key, 0) + int(number)
        return counts

    async def __call__(self, workspace: Path) -> VerifierResult:
        if not self.installed():
            return self._result(False, f"pytest: not installed ({TOOLS_HINT}); nothing was checked", "", 0.0)
        # Red first runs every test (not -x) and lists each outcome (-rA): every one must fail.
        mode = ["-rA"] if self.expect == "fail" else ["-x"]
        cmd = [
            sys.executable, "-m", "pytest", "-q", *mode, "--tb=short", "-p", "no:cacheprovider",
            *self.args, *self.tests,
        ]  # fmt: skip
        result, duration = await self._run(workspace, cmd)
        details = "\n".join(
            part
            for part in (
                point_out_spacing(hide_library_frames(result.stdout)).rstrip(),
                hide_library_warnings(result.stderr).strip(),
            )
            if part
        )
        counts = self.parse_counts(result.stdout)
        if result.killed_reason:
            return self._result(False, _killed(self.name, result, self.limits), details, duration, **counts)
        if self.expect == "fail":
            return self._red(result, details, duration, counts)
        tally = ", ".join(f"{n} {k}" for k, n in counts.items() if k != "warnings") or "no tests ran"
        if result.returncode == 0:
            return self._result(True, f"pytest: {tally}", details, duration, **counts)
        first = next((ln for ln in result.stdout.splitlines() if ln.startswith(("FAILED ", "ERROR "))), "")
        why = _PYTEST_EXIT.get(result.returncode, f"exit {result.returncode}")
        summary = f"pytest: {tally}" + (f" ({why})" if result.returncode != 1 else "")
        if first:
            summary += f"; first: {first}"
        elif result.returncode not in (1, 5):
            summary += f": {_last_line(details)}"
        return self._result(False, summary, details, duration, **counts)

    def _red(
        self, result: SandboxResult, details: str, duration: float, counts: dict[str, int]
    ) -> VerifierResult:
        lines = result.stdout.splitlines()
        passed = [ln.split(" ", 1)[1] for ln in lines if ln.startswith("PASSED ")]
        errors = [ln for ln in lines if ln.startswith("ERROR ")]
        failed = counts.get("failed", 0)
        if passed:
            summary = (
                f"pytest (red first): {len(passed)} test(s) pass before the code they test exists, so they "
                f"check nothing it adds: {', '.join(passed[:5])}. Each test must call the new code itself "
                "and assert on what it returns or changes"
            )
            return self._result(False, summary, details, duration, **counts)
        if errors or counts.get("errors") or result.returncode not in (0, 1) or failed == 0:
            why = errors[0] if errors else _last_line(details) or f"exit {result.returncode}"
            summary = f"pytest (red first): the tests do not run as tests: {why}"
            return self._result(False, summary, details, duration, **counts)
        return self._result(
            True,
            f"pytest (red first): all {failed} test(s) fail before the code exists",
            details,
            duration,
            **counts,
        )


class Command(_Sandboxed):
    """Any command: passes when it exits 0. A string is split like a shell would (no shell runs)."""

    name = "command"

    def __init__(
        self, cmd: str | Sequence[str], *, limits: Limits | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(limits, env)
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ConfigError(f"must be a non-empty command, got {cmd!r}", location="command.cmd")
        self.cmd = argv

    async def __call__(self, workspace: Path) -> VerifierResult:
        result, duration = await self._run(workspace, self.cmd)
        details = _output(result)
        shown = shlex.join(self.cmd)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        if result.killed_reason:
            return self._result(False, _killed(f"command `{shown}`", result, self.limits), details, duration)
        if result.returncode == 0:
            return self._result(True, f"command `{shown}` passed", details, duration, returncode=0)
        last = _last_line(result.stderr) or _last_line(result.stdout)
        summary = f"command `{shown}` exited {result.returncode}" + (f": {last}" if last else "")
        return self._result(False, summary, details, duration, returncode=result.returncode)


def _python_files(workspace: Path, paths: Sequence[str]) -> list[Path]:
    """The ``.py`` files that ``paths`` (files or folders) name inside the workspace: nothing outside it, no
    hidden or tool folders, no link that leads out."""
    root = workspace.resolve()
    found: list[Path] = []
    for item in paths:
        path = (root / item).resolve()
        if not path.is_relative_to(root):
            continue
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*.py")
                if not any(part.startswith(".") or part in _SKIP_DIRS for part in p.relative_to(root).parts)
                and p.resolve().is_relative_to(root)
            )
    return found


class DocstringExamplesVerifier(_Sandboxed):
    """The examples in the docstrings of the top-level functions in ``paths`` (``.py`` files or folders;
    default: the whole workspace) hold: ``>>> f(1)`` / ``2`` and ``f(1) == 2`` forms, each module imported
    from its file. The files are only parsed here; their code runs in the sandbox."""

    name = "docstring-examples"

    def __init__(
        self,
        paths: str | Sequence[str] | None = None,
        *,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(limits, env)
        self.paths = _relative_paths(paths, "docstring-examples.paths") or (".",)

    async def __call__(self, workspace: Path) -> VerifierResult:
        from promptkit.execution._code_answers import file_examples, files_program

        root = workspace.resolve()
        files = []
        for path in _python_files(workspace, self.paths):
            examples = file_examples(path.read_text(encoding="utf-8", errors="replace"))
            if examples:
                files.append((path.relative_to(root).as_posix(), examples))
        count = sum(len(ex) for _, ex in files)
        if not files:
            return self._result(True, f"{self.name}: no docstring examples to check", "", 0.0, examples=0)
        result, duration = await self._run(
            workspace, [sys.executable, "-I", "-B", "-c", files_program(files)]
        )
        details = _output(result)
        if result.killed_reason:
            return self._result(False, _killed(self.name, result, self.limits), details, duration)
        tally = re.search(r"^#examples=(\d+) failed=(\d+)$", result.stdout, re.MULTILINE)
        if tally is None:
            summary = f"{self.name}: checker failed (exit {result.returncode}): {_last_line(details)}"
            return self._result(False, summary, details, duration)
        failed = int(tally.group(2))
        if failed == 0:
            summary = f"{self.name}: {count} example(s) in {len(files)} file(s) hold"
            return self._result(True, summary, details, duration, examples=count, failed=0)
        first = result.stdout.splitlines()[0] if result.stdout else "?"
        summary = f"{self.name}: {failed} of {count} example(s) fail; first: {first}"
        return self._result(False, summary, details, duration, examples=count, failed=failed)


class StatedAsserts(_Sandboxed):
    """Model-written tests assert only what their acceptance check states.

    A test-writing step gets each acceptance check as a test's docstring ("analyze('Hi there. How are you?')
    has 5 words and 2 sentences."). A small model often adds assertions of its own,
    ``report.characters == 15``: a value it worked out, wrong here (22), which no code can then meet, and the
    feature fails against its own test. This check refuses, in the tests of ``paths``, a comparison of a
    ``fields`` attribute (``variable.field``, where ``field`` is one of the spec's entity fields) that the test's
    docstring does not name. The files are only parsed (never imported or run).
    """

    name = "stated-asserts"

    def __init__(
        self,
        paths: str | Sequence[str] | None = None,
        *,
        fields: Sequence[str] = (),
    ) -> None:
        super().__init__()  # nothing runs in the sandbox: the files are only parsed
        self.paths = _relative_paths(paths, "stated-asserts.paths") or ("tests",)
        self.fields = frozenset(str(f) for f in fields)

    def _unstated(self, source: str, path: str) -> list[str]:
        tree = ast.parse(source, path)
        modules = {
            (alias.asname or alias.name).split(".")[0]
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        found: list[str] = []
        for test in tree.body:
            if not isinstance(test, ast.FunctionDef) or not test.name.startswith("test"):
                continue
            docstring = ast.get_docstring(test) or ""
            check = " ".join(docstring.lower().replace("_", " ").split())
            if not check:
                continue  # no check to hold the test to
            for node in ast.walk(test):
                if not isinstance(node, ast.Assert):
                    continue
                for compare in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                    for side in (compare.left, *compare.comparators):
                        field = _field_of(side, self.fields, modules)
                        if field is not None and not _named(field, check):
                            found.append(
                                f"{path}:{node.lineno}: {test.name} asserts `{ast.unparse(compare)}`, but its "
                                f'check ("{docstring}") says nothing about {field}'
                            )
        return found

    async def __call__(self, workspace: Path) -> VerifierResult:
        started = time.monotonic()
        root = workspace.resolve()
        found: list[str] = []
        sources = _python_files(workspace, self.paths)
        for source in sources:
            relative = source.relative_to(root).as_posix()
            try:
                found += self._unstated(source.read_text(encoding="utf-8", errors="replace"), relative)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue  # python-compile reports it
        files = len(sources)
        duration = round(time.monotonic() - started, 4)
        if not found:
            summary = f"{self.name}: the tests in {files} file(s) assert only what their checks state"
            return self._result(True, summary, "", duration, files=files, unstated=0)
        details = "\n".join(found) + (
            "\nAssert only what each check states: a value worked out by hand may be wrong, and then no code "
            "can pass the test. Remove those assertions (or assert only what the check says)."
        )
        summary = f"{self.name}: {len(found)} assertion(s) the checks do not state; first: {found[0]}"
        return self._result(False, summary, details, duration, files=files, unstated=len(found))


def _field_of(node: Any, fields: frozenset[str], modules: set[str]) -> str | None:
    """``field`` when ``node`` is ``variable.field`` (not a module's attribute) and ``field`` is an entity's."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id not in modules
        and node.attr in fields
    ):
        return str(node.attr)
    return None


def _named(field: str, check: str) -> bool:
    """Whether the check (lower-cased, underscores as spaces) names the field, singular or plural."""
    words = field.lower().replace("_", " ")
    forms = {words, words.removesuffix("s"), words.removesuffix("es")}
    return any(form and form in check for form in forms)
