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


def test_env_secret_changes_are_seen_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "the value rotating-value-123 appears here"
    monkeypatch.delenv("ROTATING_API_KEY", raising=False)
    assert scrub_secrets(text) == text  # remembered as clean...
    monkeypatch.setenv("ROTATING_API_KEY", "rotating-value-123")
    assert "rotating-value-123" not in scrub_secrets(text)  # ...but not once the environment changes
    assert scrub_value({"k": [text]}) == {"k": ["the value *** appears here"]}
    monkeypatch.setenv("ROTATING_API_KEY", "another-value-456")
    assert scrub_secrets(text) == text


def test_the_quick_precheck_never_hides_a_pattern_match() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from promptkit.ledger._scrub import _MAYBE_SECRET, _PATTERNS

    pieces = st.sampled_from(
        ["sk-", "sk-ant-", "hf_", "ghp_", "gho_", "AIza", "AKIA", "xoxb-", "Bearer ", "basic ", "api_key",
         "API-KEY", "apikey", "Token", "secret", "PASSWD", "password", "credentials", "=", ": ", '"', "'", " "]
    )  # fmt: skip
    filler = st.text(alphabet="abcXYZ0129_-", min_size=0, max_size=24)

    @settings(max_examples=400, deadline=None)
    @given(st.lists(st.one_of(pieces, filler), max_size=8))
    def check(parts: list[str]) -> None:
        text = "".join(parts)
        if any(pattern.search(text) for pattern, _ in _PATTERNS):
            assert _MAYBE_SECRET.search(text) is not None, text

    check()
