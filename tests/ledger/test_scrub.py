"""The secret scrubber: planted keys never survive, ordinary text does."""

from __future__ import annotations

import pytest

from promptkit.ledger import scrub_secrets, scrub_value


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: sk-proj-Abc123def456GHI789jkl", "Abc123def456GHI789jkl"),
        ("invalid x-api-key sk-ant-api03-QWERTYuiop1234567890", "QWERTYuiop1234567890"),
        ("openai key sk-1234567890abcdef was rejected", "1234567890abcdef"),
        ("headers={'Authorization': 'Bearer eyJhbGciOi.JIUzI1NiJ9.abc'}", "eyJhbGciOi"),
        ("GET /v1?api_key=live_9f8e7d6c5b4a&q=1", "live_9f8e7d6c5b4a"),
        ('{"api_key": "zz-top-secret-value"}', "zz-top-secret-value"),
        ("OPENAI_API_KEY=whatever-it-is-42", "whatever-it-is-42"),
        ("client_secret: hunter2hunter2", "hunter2hunter2"),
        ("hf token hf_abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
        ("repo ghp_1234567890abcdefghij", "1234567890abcdefghij"),
        ("aws AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE"),
    ],
)
def test_key_shaped_values_are_masked(text: str, secret: str):
    out = scrub_secrets(text, environ={})
    assert secret not in out
    assert "***" in out


def test_values_of_secret_environment_variables_are_masked_wherever_they_appear():
    env = {
        "MYCO_API_KEY": "plain-looking-value",
        "GITLAB_TOKEN": "glpat-0123456789",
        "SERVICE_SECRET": "s3cr3t-words",
        "HOME": "/root/home-dir",  # not a secret by name
        "SHORT_TOKEN": "abc",  # too short to mask everywhere
    }
    text = "sent plain-looking-value, then glpat-0123456789 and s3cr3t-words from /root/home-dir abc"
    out = scrub_secrets(text, environ=env)
    for secret in ("plain-looking-value", "glpat-0123456789", "s3cr3t-words"):
        assert secret not in out
    assert "/root/home-dir" in out and out.endswith(" abc")


def test_the_real_environment_is_used_by_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLANTED_API_KEY", "the-planted-key-0042")
    assert "the-planted-key-0042" not in scrub_secrets("error: key the-planted-key-0042 refused")
    monkeypatch.delenv("PLANTED_API_KEY")
    assert "the-planted-key-0042" in scrub_secrets("error: key the-planted-key-0042 refused")


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=512 exceeded the context of 4096 tokens",
        "input_tokens: 12, output_tokens: 3",
        "task-runner failed: disk full",
        "ask the model again",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str):
    assert scrub_secrets(text, environ={}) == text


def test_scrub_value_walks_nested_structures():
    env = {"X_API_KEY": "nested-secret-1"}
    value = {"a": ["nested-secret-1", {"b": "Bearer tok123456"}], "n": 3, "t": ("sk-abcdefghij",)}
    out = scrub_value(value, environ=env)
    assert out == {"a": ["***", {"b": "Bearer ***"}], "n": 3, "t": ["sk-***"]}
