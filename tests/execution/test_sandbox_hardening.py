"""Issue 16: every built-in command is contained in process mode, and namespaces show no host secrets."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import uuid
from pathlib import Path

import pytest

from promptkit.errors import SandboxError
from promptkit.evals import Generation, Item, build_scorer
from promptkit.execution import Limits, _sandbox, run_sandboxed
from promptkit.execution._verifiers import Command, JsonValid, Pytest, PythonCompile, Ruff
from tests.execution.conftest import HAS_NAMESPACES

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox tests inspect /proc")

ATTACK = """
import socket, subprocess, sys

def attempt(name, fn):
    try:
        fn()
        print(name, "DONE")
    except Exception as exc:
        print(name, "blocked", type(exc).__name__)

attempt("project", lambda: open({project!r}, "w").write("pwned"))
attempt("tmp", lambda: open({tmp!r}, "w").write("pwned"))
attempt("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2).close())
attempt("shell", lambda: subprocess.run(["sh", "-c", "echo pwned > {shell}"], check=True))
child = "open({child!r}, 'w').write('pwned')"
attempt("child", lambda: subprocess.run([sys.executable, "-I", "-S", "-c", child], check=True))
"""


class Target:
    """The attack's targets outside the workspace, and a listener no connection may reach."""

    def __init__(self, tmp_path: Path) -> None:
        self.project = tmp_path / "project"
        self.project.mkdir()
        self.workspace = self.project / "ws"
        self.workspace.mkdir()
        tag = uuid.uuid4().hex
        self.files = [self.project / "pwned", Path(f"/tmp/pk-tmp-{tag}"), Path(f"/tmp/pk-sh-{tag}")]
        self.files.append(Path(f"/tmp/pk-child-{tag}"))
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.setblocking(False)
        self.code = ATTACK.format(
            project=str(self.files[0]),
            tmp=str(self.files[1]),
            shell=str(self.files[2]),
            child=str(self.files[3]),
            port=self.server.getsockname()[1],
        )

    def assert_contained(self, output: str = "") -> None:
        assert not re.search(r"^(project|tmp|connect|shell|child) DONE", output, re.MULTILINE), output
        assert [f for f in self.files if f.exists()] == []
        with pytest.raises(BlockingIOError):
            self.server.accept()  # nothing connected

    def close(self) -> None:
        self.server.close()
        for f in self.files:
            f.unlink(missing_ok=True)


@pytest.fixture
def target(tmp_path: Path):
    t = Target(tmp_path)
    yield t
    t.close()


@pytest.fixture
def process_only(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], list[str]]]:
    """A host without namespaces ("auto" falls back to process mode); records every command run."""
    monkeypatch.setattr(_sandbox, "_probe_result", (False, False, "process: no namespaces (test)"))
    seen: list[tuple[list[str], list[str]]] = []
    real = _sandbox._execute

    def spy(cmd, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(cmd, *args, **kwargs)
        seen.append((list(cmd), list(result.isolation)))
        return result

    monkeypatch.setattr(_sandbox, "_execute", spy)
    yield seen
    # A result that claims the guard ran a command that carried it.
    for cmd, isolation in seen:
        if "fs-guard:python-only" in isolation:
            i = cmd.index("-c")
            assert cmd[i + 1] == _sandbox._GUARD, cmd


def test_code_scorer_is_contained(target: Target, process_only: list) -> None:
    scorer = build_scorer({"type": "code_exec", "entry_point_field": None})
    item = Item(id="x", inputs={}, row={"test": "raise SystemExit(1)"}, location="data.jsonl:1")
    score = asyncio.run(scorer(item, Generation(text=target.code), target.code))
    assert process_only and "-I" in process_only[0][0]  # the scorer's own flags still apply
    assert score.value == 0 and "promptkit sandbox:" in str(score.rationale), score
    target.assert_contained(str(score.rationale))


def test_pytest_verifier_is_contained(target: Target, process_only: list) -> None:
    body = "\n".join("    " + line for line in target.code.splitlines())
    (target.workspace / "test_attack.py").write_text(f"def test_attack():\n{body}\n    assert 0\n")
    result = asyncio.run(Pytest()(target.workspace))
    assert "1 failed" in result.summary, result.details
    assert result.details.count(" blocked ") == 5, result.details
    target.assert_contained(result.details)


@pytest.mark.parametrize("check", [PythonCompile(), JsonValid()], ids=["compile", "json-valid"])
def test_python_checkers_run_guarded(target: Target, process_only: list, check) -> None:
    (target.workspace / "attack.py").write_text(target.code)
    (target.workspace / "a.json").write_text("{}")
    result = asyncio.run(check(target.workspace))
    assert result.ok, result.details
    assert process_only and "fs-guard:python-only" in process_only[0][1]
    target.assert_contained()


def test_custom_python_command_is_contained(target: Target, process_only: list) -> None:
    (target.workspace / "attack.py").write_text(target.code)
    result = asyncio.run(Command([sys.executable, "-I", "-S", "attack.py"])(target.workspace))
    assert result.ok and result.details.count("blocked") == 5, result.details
    target.assert_contained(result.details)


@pytest.mark.parametrize(
    "check",
    [Ruff(), Command(["sh", "-c", "echo pwned > ../pwned"])],
    ids=["ruff", "custom-native"],
)
def test_native_commands_are_refused(target: Target, process_only: list, check) -> None:
    (target.workspace / "attack.py").write_text(target.code)
    with pytest.raises(SandboxError, match="process isolation cannot run .*other programs need namespace"):
        asyncio.run(check(target.workspace))
    assert process_only == []
    target.assert_contained()


@pytest.mark.parametrize(
    "flags",
    [["-I"], ["-S"], ["-E"], ["-IS"], ["-I", "-X", "dev", "-W", "ignore"], ["-P", "-u"], ["-m", "attack"]],
)
def test_the_guard_loads_whatever_the_flags(target: Target, flags: list[str]) -> None:
    (target.workspace / "attack.py").write_text(target.code)
    cmd = [sys.executable, *flags] + ([] if "-m" in flags else ["attack.py"])
    result = run_sandboxed(cmd, cwd=target.workspace, limits=Limits(isolation="process"))
    assert result.ok and result.stdout.count("blocked") == 5, (result.stdout, result.stderr)
    target.assert_contained(result.stdout)


def test_program_semantics_survive_the_guard(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "__init__.py").write_text("")
    (ws / "pkg" / "__main__.py").write_text("import sys; print('module', sys.argv[1:], __name__)")
    (ws / "prog.py").write_text("import sys; print('script', sys.argv, __name__, __file__)\n1/0\n")
    limits = Limits(isolation="process")
    module = run_sandboxed([sys.executable, "-m", "pkg", "a"], cwd=ws, limits=limits)
    assert module.stdout.strip() == "module ['a'] __main__", module.stderr
    script = run_sandboxed([sys.executable, "prog.py", "b"], cwd=ws, limits=limits)
    assert script.returncode == 1
    assert script.stdout.strip() == "script ['prog.py', 'b'] __main__ prog.py"
    # The traceback is the program's own: no frame of the guard.
    assert "prog.py" in script.stderr and "ZeroDivisionError" in script.stderr
    assert "promptkit-sandbox-guard" not in script.stderr and "runpy" not in script.stderr
    code = run_sandboxed([sys.executable, "-c", "import sys; print(sys.argv)", "x"], cwd=ws, limits=limits)
    assert code.stdout.strip() == "['-c', 'x']"


# --- namespaces: the host's secrets are not in the sandbox ------------------------------------------------

needs_ns = pytest.mark.skipif(not HAS_NAMESPACES, reason="namespaces are not available on this host")

PEEK = """
import os, pathlib
for path in {paths!r}:
    try:
        print(path, "READ", pathlib.Path(path).read_text())
    except Exception as exc:
        print(path, "unreadable", type(exc).__name__)
for folder in ("/root", "/home", {parent!r}):
    try:
        print(folder, "LIST", sorted(os.listdir(folder)))
    except Exception as exc:
        print(folder, "unlisted", type(exc).__name__)
print("uid", os.getuid(), os.geteuid())
"""


@pytest.fixture
def secrets(tmp_path: Path):
    """A secret beside the workspace, one in its state folder, and the host's /etc/shadow."""
    ws = tmp_path / "ws"
    (ws / ".promptkit").mkdir(parents=True)
    beside, state = f"beside-{uuid.uuid4().hex}", f"state-{uuid.uuid4().hex}"
    (tmp_path / "secret.txt").write_text(beside)
    (ws / ".promptkit" / "run.txt").write_text(state)
    texts = [beside, state]
    try:
        texts += [line for line in Path("/etc/shadow").read_text().splitlines() if line.strip()]
    except OSError:
        pass
    paths = [str(tmp_path / "secret.txt"), str(ws / ".promptkit" / "run.txt"), "/etc/shadow"]
    code = PEEK.format(paths=paths, parent=str(tmp_path))
    return ws, code, texts


def assert_secret_free(text: str, texts: list[str]) -> None:
    leaked = [t for t in texts if t in text]
    assert leaked == [], f"leaked {leaked[:2]} in {text[:2000]}"


@needs_ns
def test_namespace_shows_no_host_secrets(secrets) -> None:
    ws, code, texts = secrets
    result = run_sandboxed([sys.executable, "-c", code], cwd=ws)
    assert result.ok, result.stderr
    assert "READ" not in result.stdout, result.stdout
    assert_secret_free(result.stdout + result.stderr, texts)
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert "secret.txt" not in lines.get(str(ws.parent), "")
    assert "/home" not in lines or "LIST []" in f"/home {lines['/home']}" or "unlisted" in lines["/home"]
    assert "unprivileged-uid" in result.isolation and lines["uid"] == "1000 1000"


@needs_ns
def test_secrets_never_reach_a_score_or_a_verifier(secrets) -> None:
    ws, code, texts = secrets
    scorer = build_scorer({"type": "code_exec", "entry_point_field": None})
    item = Item(id="x", inputs={}, row={"test": "raise SystemExit(1)"}, location="data.jsonl:1")
    score = asyncio.run(scorer(item, Generation(text=code), code))
    assert_secret_free(repr(score), texts)
    (ws / "peek.py").write_text(code + "\nraise SystemExit(1)\n")
    result = asyncio.run(Command([sys.executable, "peek.py"])(ws))
    assert not result.ok and "uid 1000" in result.details
    assert_secret_free(repr(result), texts)


@needs_ns
def test_namespace_still_runs_python_tools(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "test_ok.py").write_text("import json, ssl, sqlite3, tempfile\ndef test_ok():\n    assert 1\n")
    result = asyncio.run(Pytest()(ws))
    assert result.ok, result.details
    out = run_sandboxed([sys.executable, "-c", "import os; print(os.path.expanduser('~'))"], cwd=ws)
    assert out.ok and out.stdout.strip() == os.path.join(out.stdout.strip().rsplit("/", 1)[0], "home")
