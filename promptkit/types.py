"""Small value types shared by every layer: messages and token usage."""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

__all__ = ["Role", "Message", "Usage", "Embedder", "trusted_model"]

Role = Literal["system", "user", "assistant", "tool"]
M = TypeVar("M", bound=BaseModel)
_FIELD_COUNTS: dict[type[BaseModel], int] = {}


def trusted_model(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of ``cls`` from ``values`` that promptkit built itself, every field present and already
    of its type: no validation, and none of ``model_construct``'s per-field default handling (the hot path
    of every model call builds a few of these). Anything from outside goes through validation instead."""
    count = _FIELD_COUNTS.get(cls)
    if count is None:
        count = _FIELD_COUNTS[cls] = len(cls.model_fields)
    if len(values) != count:
        missing = sorted(set(cls.model_fields) - set(values))
        raise TypeError(f"{cls.__name__}: trusted_model needs every field; missing {missing}")
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


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
        return trusted_model(
            Usage,
            {
                "input_tokens": self.input_tokens + other.input_tokens,
                "output_tokens": self.output_tokens + other.output_tokens,
            },
        )


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. Lexical, llama.cpp and litellm embedders all fit this."""

    def embed(self, texts: list[str]) -> list[list[float]]: ...
