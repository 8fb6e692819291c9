"""What every scorer shares: the interface (``Scorer``, ``Generation``, ``ScorerEnv``), the base of the built-in
scorers with their common options, and the small helpers they use to pick and compare values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from promptkit._plugins import import_ref
from promptkit.errors import EvalError
from promptkit.evals._dataset import Item, get_field
from promptkit.evals._eval_log import Score

__all__ = [
    "Generation",
    "Scorer",
    "ScorerEnv",
    "ScorerOptions",
    "MatchOptions",
    "BuiltinScorer",
    "TAIL",
    "verdict",
    "pick",
    "expected_value",
    "field_of",
    "as_text",
    "import_object",
]

TAIL = 600  # characters of a traceback kept in a Score's rationale


@dataclass(frozen=True)
class Generation:
    """One model answer and what it cost; what scorers see besides the item and the parsed output."""

    text: str
    model: str = ""
    variant: str = ""
    repeat: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False
    output_model: type[BaseModel] | None = None


@runtime_checkable
class Scorer(Protocol):
    name: str

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score: ...


@dataclass
class ScorerEnv:
    """What model-backed scorers (the judge) need from the run: backend overrides, cache and ledger."""

    backends: Mapping[str, Any] = field(default_factory=dict)
    cache: Any = True
    ledger: Any = True
    run_id: str | None = None
    base_dir: Path | None = None

    def model(self, spec: str) -> Any:
        return self.backends.get(spec, spec)


class ScorerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    name: str | None = None


class BuiltinScorer:
    """A built-in scorer: validated options, a name and the Score it builds."""

    Options: ClassVar[type[ScorerOptions]]
    kind: ClassVar[Literal["binary", "graded"]] = "binary"

    def __init__(self, options: Any, env: ScorerEnv) -> None:
        self.options = options
        self.env = env
        self.name: str = options.name or options.type

    def score(self, value: float, passed: bool | None, rationale: str | None = None, **meta: Any) -> Score:
        return Score(
            scorer=self.name, value=value, passed=passed, kind=self.kind, rationale=rationale, meta=meta
        )

    async def __call__(self, item: Item, output: Generation, parsed: Any) -> Score:  # pragma: no cover
        raise NotImplementedError


class MatchOptions(ScorerOptions):
    field: str | None = None  # a field of the structured output (and of a dict expected value)
    expected_field: str | None = None  # compare against this dataset column instead of `expected`
    threshold: float | None = 1.0


def verdict(value: float, threshold: float | None) -> bool | None:
    return None if threshold is None else value >= threshold


def pick(parsed: Any, text: str, name: str | None) -> Any:
    """The compared value: the whole text, or one field of the structured output."""
    if name is None:
        return text
    if isinstance(parsed, Mapping):
        try:
            return get_field(dict(parsed), name)
        except KeyError:
            return None
    return None


def expected_value(item: Item, expected_field: str | None, name: str | None) -> Any:
    if expected_field is not None:
        try:
            return get_field(item.row, expected_field)
        except KeyError:
            raise EvalError(f"the item has no field {expected_field!r}", location=item.location) from None
    value = item.expected
    if name is not None and isinstance(value, Mapping) and name in value:
        return value[name]
    return value


def field_of(output: Any, name: str) -> Any:
    return output[name] if isinstance(output, Mapping) else getattr(output, name)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def import_object(ref: str | None, what: str) -> Any:
    """The object a ``package.module:attr`` option names (an embedder...); an ``EvalError`` if it cannot."""
    return import_ref(ref or "", what=what, error=EvalError)
