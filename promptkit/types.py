"""Small value types shared by every layer: messages and token usage."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

__all__ = ["Role", "Message", "Usage", "Embedder"]

Role = Literal["system", "user", "assistant", "tool"]


class Message(BaseModel):
    """One chat message, as sent to a model."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str
    name: str | None = None


class Usage(BaseModel):
    """Tokens spent by one call (or, summed, by many)."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. Lexical, llama.cpp and litellm embedders all fit this."""

    def embed(self, texts: list[str]) -> list[list[float]]: ...
