"""A remote model whose API key is nowhere fails before any request, as a ConfigError naming the variable."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from promptkit.backends import Fault, GenerateRequest, LiteLLMBackend, OpenAICompatBackend, StubOpenAIServer
from promptkit.backends._litellm import _import_litellm, missing_key_variables
from promptkit.errors import ConfigError, ModelRequestError
from promptkit.types import Message

KEY = "sk-test-PLANTED-keys-0123456789"
_PROVIDER_KEYS = ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "AZURE_API_KEY", "ANTHROPIC_API_KEY")


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROVIDER_KEYS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def stub() -> Iterator[StubOpenAIServer]:
    with StubOpenAIServer(reply=lambda body: "hello from the stub") as server:
        yield server


def _req() -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content="say hi")])


@pytest.fixture
def litellm_installed() -> None:
    pytest.importorskip("litellm")
    pytest.importorskip("instructor")


@pytest.mark.usefixtures("litellm_installed")
async def test_missing_provider_key_is_a_config_error_before_any_request(
    stub: StubOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.reset()
    backend = LiteLLMBackend("openai/stub", api_base=stub.base_url, timeout_s=10)
    _import_litellm()  # time the check, not litellm's import
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        await backend.generate(_req())
    assert time.perf_counter() - started < 1.0
    message = str(info.value)
    assert "OPENAI_API_KEY" in message and "no API key" in message and "api_key_env" in message
    assert info.value.location == "model 'openai/stub'"
    assert stub.request_count == 0
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):  # streaming checks the same way
        async for _ in backend.stream(_req()):
            pass
    assert stub.request_count == 0

    # Once the variable is set, the same backend calls (the check is not cached while it fails).
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    response = await backend.generate(_req())
    assert response.text == "hello from the stub" and stub.request_count == 1


@pytest.mark.usefixtures("litellm_installed")
async def test_a_provider_with_two_key_variables_names_both(stub: StubOpenAIServer) -> None:
    backend = LiteLLMBackend("gemini/gemini-1.5-flash", timeout_s=5)
    with pytest.raises(ConfigError, match="one of .*GOOGLE_API_KEY.*GEMINI_API_KEY|one of .*GEMINI.*GOOGLE"):
        await backend.generate(_req())


@pytest.mark.usefixtures("litellm_installed")
def test_only_key_variables_count(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = _import_litellm()
    assert missing_key_variables(litellm, "openai/gpt-4o-mini") == ("openai", ["OPENAI_API_KEY"])
    assert missing_key_variables(litellm, "anthropic/claude-3-5-haiku-latest") == (
        "anthropic",
        ["ANTHROPIC_API_KEY"],
    )
    # Ollama needs no key (litellm lists OLLAMA_API_BASE, an endpoint with a default); AWS credentials may
    # come from a profile or a role; an unknown provider cannot be judged: none of them is refused.
    assert missing_key_variables(litellm, "ollama/llama3") is None
    assert missing_key_variables(litellm, "bedrock/anthropic.claude-v2") is None
    assert missing_key_variables(litellm, "no-such-provider/model") is None
    # Azure's key is there; its endpoint and version may come from the alias (api_base), not the environment.
    monkeypatch.setenv("AZURE_API_KEY", KEY)
    assert missing_key_variables(litellm, "azure/my-deployment") is None
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    assert missing_key_variables(litellm, "gemini/gemini-1.5-flash") is None


@pytest.mark.usefixtures("litellm_installed")
def test_a_key_set_in_code_or_given_explicitly_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = _import_litellm()
    monkeypatch.setattr(litellm, "openai_key", KEY, raising=False)
    assert missing_key_variables(litellm, "openai/gpt-4o-mini") is None
    monkeypatch.setattr(litellm, "openai_key", None)
    backend = LiteLLMBackend("openai/gpt-4o-mini", api_key=KEY)
    assert backend._api_key_value(litellm) == KEY
    monkeypatch.setenv("MY_KEY", KEY)
    assert LiteLLMBackend("openai/gpt-4o-mini", api_key_env="MY_KEY")._api_key_value(litellm) == KEY


async def test_openai_compatible_server_asking_for_a_key_is_a_config_error(
    stub: StubOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("aiohttp")
    stub.reset()
    backend = OpenAICompatBackend(stub.base_url, "stub", timeout_s=5)
    stub.push_faults(Fault.client_error(401, "unauthorized"))
    with pytest.raises(ConfigError, match="HTTP 401.*api_key_env"):
        await backend.generate(_req())
    # With a key configured, a 401 is the server refusing that key: the provider's error, as before.
    keyed = OpenAICompatBackend(stub.base_url, "stub", timeout_s=5, api_key_env="PK_KEYS_TEST")
    monkeypatch.delenv("PK_KEYS_TEST", raising=False)
    with pytest.raises(ConfigError, match="PK_KEYS_TEST"):
        await keyed.generate(_req())
    assert stub.request_count == 1
    monkeypatch.setenv("PK_KEYS_TEST", KEY)
    stub.push_faults(Fault.client_error(401, "bad key"))
    with pytest.raises(ModelRequestError):
        await keyed.generate(_req())
    assert (await keyed.generate(_req())).text == "hello from the stub"
