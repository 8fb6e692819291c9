"""Run llama-cpp-python's OpenAI-compatible server with promptkit's JSON-grammar fix applied.

    python -m promptkit.backends.llama_server --model M --model_alias A --host 127.0.0.1 --port N

Every argument goes to ``llama_cpp.server`` unchanged. The fix (see ``promptkit.backends._grammar``) must run
inside the server process, because that is where schemas from ``response_format`` and forced tool calls become
grammars; that is all this launcher adds.

:func:`start_llama_server` starts one as a subprocess on a free loopback port and waits until it answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from promptkit.errors import BackendUnavailable

__all__ = ["main", "start_llama_server", "LlamaServerProcess", "free_port"]

# llama_cpp.server lets these environment variables override its command line.
_OVERRIDING_ENV = ("HOST", "PORT", "CONFIG_FILE")


def main(argv: Sequence[str] | None = None) -> None:
    """Apply the grammar fix, then hand the command line to ``llama_cpp.server``."""
    from promptkit.backends._grammar import apply_grammar_fix

    try:
        apply_grammar_fix()
        from llama_cpp.server import __main__ as server_main
    except BackendUnavailable as exc:
        sys.exit(f"error: {exc}")
    except ImportError as exc:
        sys.exit(f"error: the llama.cpp server needs its extras ({exc}): pip install 'promptkit[local]'")
    sys.argv = ["promptkit.backends.llama_server", *(sys.argv[1:] if argv is None else argv)]
    server_main.main()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it when we bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    # A loopback server must never be reached through an HTTP proxy from the environment.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LlamaServerProcess:
    """A running ``promptkit.backends.llama_server`` subprocess. Use as a context manager, or call :meth:`stop`."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        *,
        host: str,
        port: int,
        alias: str,
        model_path: Path,
        log_path: Path,
    ) -> None:
        self.process = process
        self.host = host
        self.port = port
        self.alias = alias
        self.model_path = model_path
        self.log_path = log_path

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, e.g. ``http://127.0.0.1:8123/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def __repr__(self) -> str:
        return f"LlamaServerProcess(base_url={self.base_url!r}, alias={self.alias!r}, pid={self.process.pid})"

    def log_tail(self, max_chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-max_chars:]
        except OSError:
            return ""

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (kill it if it does not stop in ``timeout`` s). Safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> LlamaServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def wait_ready(self, timeout: float) -> None:
        """Poll ``/v1/models`` until it lists our alias; raise ``BackendUnavailable`` on exit or timeout."""
        opener = _no_proxy_opener()
        deadline = time.monotonic() + timeout
        where = str(self.model_path)
        while True:
            if self.process.poll() is not None:
                raise BackendUnavailable(
                    f"llama server exited with code {self.process.returncode} before answering:\n{self.log_tail()}",
                    location=where,
                )
            try:
                with opener.open(f"{self.base_url}/models", timeout=1.0) as reply:
                    models = json.loads(reply.read())
                if any(item.get("id") == self.alias for item in models.get("data", [])):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass  # not listening yet
            if time.monotonic() > deadline:
                self.stop()
                raise BackendUnavailable(
                    f"llama server did not answer on {self.base_url} within {timeout} s:\n{self.log_tail()}",
                    location=where,
                )
            time.sleep(0.05)


def start_llama_server(
    model_path: str | os.PathLike[str],
    *,
    alias: str = "tiny",
    port: int | None = None,
    timeout: float = 30,
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
) -> LlamaServerProcess:
    """Start the fixed llama server on ``model_path`` and return once ``/v1/models`` answers.

    ``port=None`` picks a free one. ``extra_args`` go to ``llama_cpp.server`` (e.g. ``["--n_ctx", "2048"]``).
    Raises ``BackendUnavailable`` if the model is missing or the server exits or stays silent past ``timeout``.
    """
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise BackendUnavailable("model file not found", location=str(path))
    port = free_port(host) if port is None else port
    env = {k: v for k, v in os.environ.items() if k not in _OVERRIDING_ENV}
    # The child must import this very promptkit, installed or not.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    command = [
        sys.executable,
        "-m",
        "promptkit.backends.llama_server",
        "--model",
        str(path),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        *extra_args,
    ]
    log_fd, log_name = tempfile.mkstemp(prefix="promptkit-llama-server-", suffix=".log")
    with os.fdopen(log_fd, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    server = LlamaServerProcess(
        process, host=host, port=port, alias=alias, model_path=path, log_path=Path(log_name)
    )
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


if __name__ == "__main__":
    main()
