"""The huggingface source against a real loopback HTTP server speaking the Hub's resolve protocol."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from promptkit.errors import BackendUnavailable
from promptkit.models import default_store

pytest.importorskip("huggingface_hub")

REPO = "test-org/tiny-test-GGUF"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Hub(ThreadingHTTPServer):
    daemon_threads = True
    body = b""
    requests: list[tuple[str, str]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Hub

    def _answer(self, with_body: bool) -> None:
        self.server.requests.append((self.command, self.path))
        if self.path != f"/{REPO}/resolve/main/tiny-test.gguf":
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.server.body
        self.send_response(200)
        # What huggingface_hub's get_hf_file_metadata reads from a HEAD /resolve answer.
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"tiny-test-etag"')
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(with_body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(with_body=True)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hub(monkeypatch):
    server = _Hub(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield server
    server.shutdown()
    server.server_close()


HF_SOURCE = {"kind": "huggingface", "repo": REPO, "filename": "tiny-test.gguf", "revision": "main"}


def test_download_installs(fake_model, hub):
    fake_model.write([HF_SOURCE])
    hub.body = fake_model.data
    store = default_store()
    result = store.pull("tiny-test", progress=False)
    assert result.source == f"huggingface {REPO}@main"
    assert store.path("tiny-test").read_bytes() == fake_model.data
    assert store.is_installed("tiny-test")
    assert ("GET", f"/{REPO}/resolve/main/tiny-test.gguf") in hub.requests
    assert not (store.root / ".hf").exists()  # hf's working folder is cleaned up after a success


def test_corrupted_download_is_refused(fake_model, hub):
    fake_model.write([HF_SOURCE])
    data = bytearray(fake_model.data)
    data[7] ^= 0xFF
    hub.body = bytes(data)
    store = default_store()
    lines: list[str] = []
    with pytest.raises(BackendUnavailable, match="wrong bytes"):
        store.pull("tiny-test", progress=False, report=lines.append)
    assert lines[0].startswith(f"tiny-test: huggingface {REPO}@main failed: wrong bytes")
    assert not store.path("tiny-test").exists()
    assert not (store.root / ".hf").exists()  # the wrong file is not kept for hf to hand back next time

    hub.body = fake_model.data  # the server is fixed: the next pull downloads again and succeeds
    assert store.pull("tiny-test", progress=False).source.startswith("huggingface")
    assert store.path("tiny-test").read_bytes() == fake_model.data


def test_missing_file_on_the_hub_is_a_source_failure(fake_model, hub):
    fake_model.write([{**HF_SOURCE, "filename": "other.gguf"}])
    with pytest.raises(BackendUnavailable, match="source unavailable"):
        default_store().pull("tiny-test", progress=False, report=lambda line: None)


def test_server_down_falls_through_to_the_next_source(fake_model, monkeypatch):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    fake_model.write([HF_SOURCE, {"kind": "file", "path": str(fake_model.original)}])
    lines: list[str] = []
    result = default_store().pull("tiny-test", progress=False, report=lines.append)
    assert result.source == f"file {fake_model.original}"
    assert len(lines) == 1
    assert lines[0].startswith(f"tiny-test: huggingface {REPO}@main failed: source unavailable: cannot reach")
    assert default_store().is_installed("tiny-test")
