"""Suite-wide guards. Fixtures for a layer live in that layer's own tests/<layer>/conftest.py."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

# Must be set before litellm is first imported anywhere, or litellm fetches its price map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")


class NetworkBlocked(RuntimeError):
    """Raised by the guard when a test reaches for anything but loopback."""


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:
        return True  # AF_UNIX paths and the like never leave the machine
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a hostname other than localhost would need DNS: not allowed


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}; only loopback is allowed")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}; only loopback is allowed")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
    if host not in (None, "localhost") and not _is_loopback((host,)):
        raise NetworkBlocked(f"test tried to resolve {host!r}; only loopback is allowed")
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, scope="session")
def isolated_state(tmp_path_factory: pytest.TempPathFactory):
    """Caches, ledgers and converted models go to a session folder, never to a real project's .promptkit/."""
    previous = os.environ.get("PROMPTKIT_HOME")
    os.environ["PROMPTKIT_HOME"] = str(tmp_path_factory.mktemp("promptkit-home"))
    yield
    if previous is None:
        os.environ.pop("PROMPTKIT_HOME", None)
    else:
        os.environ["PROMPTKIT_HOME"] = previous


@pytest.fixture(autouse=True, scope="session")
def network_guard():
    """Any connection to a non-loopback address fails the test that made it."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _real_getaddrinfo  # type: ignore[assignment]


# --- local llama.cpp backend: a tiny random-weight model and an OpenAI-compatible server on it ---


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory):
    """Path to a tiny random-weight GGUF (random text; real llama.cpp loading, templates and grammars)."""
    from promptkit.backends import make_tiny_gguf

    return make_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf", n_ctx=4096)


@pytest.fixture(scope="session")
def llama_server(tiny_gguf):
    """A running ``promptkit.backends.llama_server`` serving ``tiny_gguf`` as model "tiny"; errors if it cannot start."""
    from promptkit.backends.llama_server import start_llama_server

    server = start_llama_server(
        tiny_gguf,
        alias="tiny",
        timeout=60,
        extra_args=["--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1"],
    )
    yield server
    server.stop()
