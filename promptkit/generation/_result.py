"""What ``generate()`` returns."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from promptkit.routing import Attempt
from promptkit.types import Usage

__all__ = ["GenerateResult"]

OutputT = TypeVar("OutputT")


class GenerateResult(BaseModel, Generic[OutputT]):
    """The validated answer and everything it took to get it.

    ``output`` is an instance of the template's output model (or the text, for free-text templates); with
    ``generate(..., output=Invoice)`` it is an ``Invoice`` and the result a ``GenerateResult[Invoice]`` for
    type checkers (``list[Invoice]``, a ``Literal`` or an enum give that value, unwrapped);
    ``text`` the raw answer it was parsed from; ``attempts`` one record per attempt in order (re-asks,
    retries, fallbacks, escalations, cache hits); ``usage``/``cost_usd`` are summed over every attempt,
    and ``saved_usd`` is what a cache hit saved.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    output: OutputT
    text: str
    model: str
    tier: int | None = None
    tier_name: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    cached: bool = False
    run_id: str
    call_id: str
    template: str | None = None
    template_hash: str | None = None

    def summary(self) -> str:
        """One line: model, tier, tokens, cost, attempts, cached."""
        tier = self.tier_name if self.tier_name is not None else "-"
        line = (
            f"model={self.model} tier={tier} tokens={self.usage.input_tokens}+{self.usage.output_tokens} "
            f"cost=${self.cost_usd:.6f} attempts={len(self.attempts)} cached={'yes' if self.cached else 'no'}"
        )
        if self.saved_usd:
            line += f" saved=${self.saved_usd:.6f}"
        return line
