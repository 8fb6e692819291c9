"""The llama server launcher over real loopback HTTP."""

from __future__ import annotations

import json
import urllib.request

import pytest

from promptkit.backends.llama_server import free_port, start_llama_server
from promptkit.errors import BackendUnavailable

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _post(url: str, body: dict) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with _OPENER.open(request, timeout=30) as reply:
        return json.loads(reply.read())  # type: ignore[no-any-return]


def test_server_lists_its_alias(llama_server):
    assert llama_server.base_url == f"http://127.0.0.1:{llama_server.port}/v1"
    with _OPENER.open(f"{llama_server.base_url}/models", timeout=10) as reply:
        models = json.loads(reply.read())
    assert [m["id"] for m in models["data"]] == ["tiny"]
    assert llama_server.running()


def test_chat_completion_over_http(llama_server):
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "temperature": 0,
    }
    first = _post(f"{llama_server.base_url}/chat/completions", body)
    second = _post(f"{llama_server.base_url}/chat/completions", body)
    choice = first["choices"][0]
    assert choice["finish_reason"] == "length"
    assert first["usage"]["completion_tokens"] == 8 and first["usage"]["prompt_tokens"] > 0
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert second["choices"][0]["message"]["content"] == choice["message"]["content"]


def test_grammar_fix_is_live_inside_the_server(llama_server):
    # A huge bias towards "\n" (token 10, a byte token) puts raw newlines into JSON strings unless the server
    # process runs the fixed converter; the stock llama_cpp.server answers '{"a" :"\n\n\n..." }' here.
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 10}}, "required": ["a"]}
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "json"}],
        "max_tokens": 200,
        "temperature": 0,
        "response_format": {"type": "json_object", "schema": schema},
        "logit_bias": {"10": 50},
    }
    text = _post(f"{llama_server.base_url}/chat/completions", body)["choices"][0]["message"]["content"]
    assert "\n" not in text
    assert isinstance(json.loads(text)["a"], str)


def test_missing_model_is_refused_before_starting(tmp_path):
    with pytest.raises(BackendUnavailable, match="not found"):
        start_llama_server(tmp_path / "missing.gguf")


def test_server_that_dies_reports_its_log(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    with pytest.raises(BackendUnavailable) as info:
        start_llama_server(junk, timeout=60)
    message = str(info.value)
    assert "exited" in message and str(junk) in message


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
