"""LiteLLMEmbedder over real loopback HTTP: llama-cpp-python's OpenAI-compatible server on the same GGUF."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from promptkit.embeddings import EmbeddingCache, LiteLLMEmbedder
from promptkit.errors import (
    BackendUnavailable,
    ConnectionFailed,
    ModelRequestError,
    RateLimited,
    ServerError,
)

SERVER_KEY = "sk-loopback-test-key-7f3a"  # the server ignores keys; the client must still send one
TEXTS = ["How do I reset my password?", "I forgot my password", "Glaciers retreat as the climate warms."]


@pytest.fixture(scope="module")
def embedding_server(minilm_gguf: Path):
    from promptkit.backends.llama_server import start_llama_server

    server = start_llama_server(
        minilm_gguf,
        alias="minilm",
        timeout=90,
        extra_args=[
            "--embedding",
            "true",
            "--n_ctx",
            "512",
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
        ],
    )
    yield server
    server.stop()


@pytest.fixture
def remote(embedding_server, monkeypatch: pytest.MonkeyPatch) -> LiteLLMEmbedder:
    monkeypatch.setenv("PK_TEST_EMBED_KEY", SERVER_KEY)
    return LiteLLMEmbedder(
        "openai/minilm", api_base=embedding_server.base_url, api_key_env="PK_TEST_EMBED_KEY"
    )


def test_same_vectors_as_the_in_process_embedder(remote: LiteLLMEmbedder, embedder):
    got, want = remote.embed_array(TEXTS), np.asarray(embedder.embed(TEXTS))
    assert got.shape == (3, 384) and got.dtype == np.float32
    assert np.all((got * want).sum(axis=1) >= 0.999)


def test_async_path_and_small_batches(remote: LiteLLMEmbedder, embedder):
    remote.batch_size = 2  # three texts: two requests, reassembled in order
    got = asyncio.run(remote.aembed(TEXTS))
    assert np.all((np.asarray(got) * np.asarray(embedder.embed(TEXTS))).sum(axis=1) >= 0.999)


def test_cache_spares_the_server(remote: LiteLLMEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import litellm

    requests: list[list[str]] = []
    real = litellm.embedding

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        requests.append(list(kwargs["input"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(litellm, "embedding", counting)
    remote.cache = EmbeddingCache(tmp_path / "e.sqlite")
    first = remote.embed(TEXTS)
    assert remote.embed(TEXTS) == first
    remote.embed([TEXTS[0], "only this one is new"])
    assert requests == [TEXTS, ["only this one is new"]]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, ModelRequestError), (404, ModelRequestError), (429, RateLimited), (503, ServerError)],
)
def test_provider_errors_map_to_the_tree_and_never_show_the_key(
    status: int, expected: type, monkeypatch: pytest.MonkeyPatch
):
    import httpx
    import litellm
    import openai

    secret = "sk-wrong-secret-value-91b2"
    monkeypatch.setenv("PK_TEST_EMBED_KEY", secret)
    request = httpx.Request("POST", "http://127.0.0.1:1/v1/embeddings")
    response = httpx.Response(status, request=request, headers={"retry-after": "7"})

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        cause = openai.APIStatusError(f"bad key {secret}", response=response, body=None)
        raise RuntimeError(f"wrapped: {secret}") from cause

    monkeypatch.setattr(litellm, "embedding", failing)
    embedder = LiteLLMEmbedder(
        "openai/minilm", api_base="http://127.0.0.1:1/v1", api_key_env="PK_TEST_EMBED_KEY"
    )
    with pytest.raises(expected) as caught:
        embedder.embed(["x"])
    error = caught.value
    assert secret not in str(error) and "***" in str(error) and "embedder openai/minilm" in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    if expected is RateLimited:
        assert error.retry_after == 7.0


def test_unset_key_variable_says_which(monkeypatch):
    monkeypatch.delenv("PK_TEST_EMBED_KEY", raising=False)
    with pytest.raises(BackendUnavailable, match="PK_TEST_EMBED_KEY"):
        LiteLLMEmbedder(
            "openai/minilm", api_base="http://127.0.0.1:9/v1", api_key_env="PK_TEST_EMBED_KEY"
        ).embed(["x"])


def test_nobody_listening_is_a_connection_failure():
    from promptkit.backends.llama_server import free_port

    remote = LiteLLMEmbedder("openai/minilm", api_base=f"http://127.0.0.1:{free_port()}/v1", timeout_s=5)
    with pytest.raises(ConnectionFailed, match="openai/minilm"):
        remote.embed(["x"])
