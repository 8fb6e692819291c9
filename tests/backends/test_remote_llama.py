"""LiteLLMBackend against the real llama-cpp-python OpenAI-compatible server (tiny random model) over HTTP.

Random weights give random text, so these tests assert structure: shapes, token counts, schema validity.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from promptkit.backends import GenerateRequest, LiteLLMBackend
from promptkit.types import Message

pytest.importorskip("litellm")
pytest.importorskip("instructor")
pytest.importorskip("llama_cpp")


class Pet(BaseModel):
    """Bounded, so that random output cannot run on until max_tokens."""

    name: str = Field(max_length=12)
    legs: int
    tags: list[str] = Field(max_length=3)


@pytest.fixture
def backend(llama_server: Any) -> LiteLLMBackend:
    return LiteLLMBackend(
        f"openai/{llama_server.alias}", api_base=llama_server.base_url, api_key="sk-local", timeout_s=60
    )


def _req(**kw: Any) -> GenerateRequest:
    return GenerateRequest(
        messages=[
            Message(role="system", content="You answer briefly."),
            Message(role="user", content="Name a pet."),
        ],
        **kw,
    )


async def test_completion_over_http(backend: LiteLLMBackend) -> None:
    response = await backend.generate(_req(max_tokens=8, temperature=0.0))
    assert isinstance(response.text, str)
    assert response.usage.input_tokens > 0
    assert 1 <= response.usage.output_tokens <= 8
    assert response.finish_reason in {"stop", "length"}
    assert response.cost_usd is None  # a local alias has no price in litellm's map
    again = await backend.generate(_req(max_tokens=8, temperature=0.0))
    assert again.text == response.text  # temperature 0 is deterministic


async def test_streaming_over_http(backend: LiteLLMBackend) -> None:
    whole = await backend.generate(_req(max_tokens=12, temperature=0.0))
    chunks = [c async for c in backend.stream(_req(max_tokens=12, temperature=0.0))]
    assert len(chunks) >= 1
    assert "".join(chunks) == whole.text


async def test_structured_output_via_instructor_tools_is_schema_valid(backend: LiteLLMBackend) -> None:
    valid = 0
    for seed in range(10):
        response = await backend.generate(_req(output_model=Pet, max_tokens=160, temperature=0.8, seed=seed))
        Pet.model_validate_json(response.text)  # raises (and fails the test) on any invalid answer
        valid += 1
    assert valid == 10
